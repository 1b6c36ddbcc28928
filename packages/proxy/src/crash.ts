/**
 * Bugs (issue 14, point 1). A thrown exception in one session's code ends that session only
 * (`session.ts` runs each of its steps through a guard); one that escapes every guard reaches the
 * process-level handler here, which logs it with its stack and exits non-zero, so that whatever
 * supervises the process starts it again: the primary for a NumThreads worker (`workers.ts`), the
 * systemd unit's `Restart=on-failure`, the start script's `start`.
 *
 * A test-only hook, `MMP_TEST_FAULT`, makes a login as one name throw, as a bug would:
 * `session:NAME` inside that session's guard, `process:NAME` outside every guard. Unset (always,
 * outside tests) it costs one comparison per login.
 */

import type { Log, LogFields } from './log.js';

/** An exception as log fields: its message and its stack (no user data is in a stack). */
export function errorFields(e: unknown): LogFields {
  if (e instanceof Error) return { error: e.message, stack: e.stack ?? null };
  return { error: String(e), stack: null };
}

export type InjectedFault = 'session' | 'process';

/** What the test hook asks for a login as `user`, if anything. */
export function injectedFault(
  user: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): InjectedFault | undefined {
  const spec = env['MMP_TEST_FAULT'];
  if (spec === undefined || spec === '') return undefined;
  if (spec === `session:${user}`) return 'session';
  if (spec === `process:${user}`) return 'process';
  return undefined;
}

/** Throw as the hook asked: inside the caller's guard, or from a fresh task outside all of them. */
export function throwInjected(fault: InjectedFault): void {
  const e = new Error(`injected fault (MMP_TEST_FAULT, ${fault})`);
  if (fault === 'session') throw e;
  setImmediate(() => {
    throw e;
  });
}

/**
 * The process-level handlers. An uncaught exception leaves the process in an unknown state (a
 * half-run handler of some socket): log it with its stack, let the log flush, exit with
 * EXIT_CRASHED for the supervisor. A rejected promise nobody awaited is logged and the process
 * goes on: no handler was cut half-way.
 */
export const EXIT_CRASHED = 70; // EX_SOFTWARE (sysexits.h)

export function installProcessGuards(log: Log, flush: () => Promise<void>): void {
  let crashing = false;
  process.on('uncaughtException', (e) => {
    if (crashing) return;
    crashing = true;
    log.error('process', 'uncaught exception: exiting for the supervisor to restart', {
      ...errorFields(e),
      exitCode: EXIT_CRASHED,
    });
    void flush().finally(() => process.exit(EXIT_CRASHED));
  });
  process.on('unhandledRejection', (reason) => {
    log.error('process', 'unhandled promise rejection', errorFields(reason));
  });
}
