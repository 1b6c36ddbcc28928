/** The real, built `dist/bin/ImapProxy.js`, started as a child process for end-to-end tests. */

import { readFile, readdir } from 'node:fs/promises';
import { type Socket, connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ResultPromise, execa } from 'execa';
import { type Testbed, freePort } from '@mmp/testbed';
import { tempDir } from './tempDirs.js';

export const IMAP_PROXY = fileURLToPath(new URL('../../dist/bin/ImapProxy.js', import.meta.url));
export const POP_PROXY = fileURLToPath(new URL('../../dist/bin/PopProxy.js', import.meta.url));

/**
 * The environment a test proxy starts with: PATH, and, when the tests run as root (CI does),
 * RunAsUser=root, the explicit opt-in without which a root proxy refuses to start
 * (privileges.ts; privileges.e2e.test.ts starts proxies that drop to another user).
 */
export function proxyEnv(env: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    ...(process.getuid?.() === 0 ? { RunAsUser: 'root' } : {}),
    ...TEST_LIMITS,
    ...env,
  };
}

/**
 * What every test proxy changes in the per-address protections, because every test client comes
 * from 127.0.0.1: no failed-login delay (a test of wrong passwords would otherwise wait 2, 4, 8 s)
 * and 127.0.0.1 exempt from the per-address cap (scale tests hold hundreds of sessions). The
 * tests of these protections (`bin/hostile.e2e.test.ts`) set them back and use other addresses.
 */
export const TEST_LIMITS: Record<string, string> = {
  AuthFailureDelay: '0',
  ConnectionLimitExempt: '127.0.0.1',
};

export interface ProxyProcess {
  port: number;
  logDir: string;
  child: ResultPromise<{ reject: false; all: true; buffer: true }>;
  /** Everything the process wrote on stdout and stderr so far. */
  output(): string;
  /** Send SIGTERM (unless `signal()` did) and wait for the exit code. */
  stop(): Promise<number | undefined>;
  /** Send SIGTERM without waiting. */
  signal(): void;
  /** The contents of every log file written in LogDir, as far as written yet (see waitForLog). */
  logs(): Promise<string>;
  /** The log once it holds `match` (waitForLog). */
  waitForLog(match: LogMatch, timeoutMs?: number): Promise<string>;
}

/** What a test waits for in a log: text it contains, a pattern, or a test of the whole text. */
export type LogMatch = string | RegExp | ((text: string) => boolean);

/**
 * The log's text once it holds `match`, read again every 50 ms; throws after `timeoutMs`. A record
 * is not on disk when the client has its answer: the proxy writes the records of a short window
 * together (log.ts), so a test that expects a record must wait for it, and one that reads the log
 * at once may find it missing (or, asserting an absence, pass without having looked).
 */
export async function waitForLog(
  read: () => Promise<string>,
  match: LogMatch,
  timeoutMs = 10_000,
): Promise<string> {
  const holds = (text: string): boolean =>
    typeof match === 'string'
      ? text.includes(match)
      : match instanceof RegExp
        ? match.test(text)
        : match(text);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await read();
    if (holds(text)) return text;
    if (Date.now() > deadline) {
      throw new Error(
        `no log record matching ${String(match)} within ${timeoutMs} ms; the log ends:\n${text.slice(-2000)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The log with every record the proxy made before this call, for a test that asserts something is
 * absent from it while the proxy keeps serving: a connection of our own is logged (LogLevel 1 and
 * up) by the same process after those records, and records reach the file in the order they were
 * made, so once its record is there the earlier ones are too. Needs one serving process
 * (NumThreads 0) and a plain listener at `host`:`port`. A test that can stop the proxy reads the
 * log after stop() instead: everything is written by then.
 */
export async function logsUpToNow(
  p: { port: number; logs(): Promise<string> },
  host = '127.0.0.1',
): Promise<string> {
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = connect(p.port, host, () => resolve(s));
    s.once('error', reject);
  });
  try {
    return await waitForLog(() => p.logs(), `${socket.localAddress}:${socket.localPort}`);
  } finally {
    socket.destroy();
  }
}

/**
 * Start `program` on a free port of 127.0.0.1 (or, with `bareListenPort`, on that port of every
 * address, dual-stack, as `ListenPort 143` does) with a fresh LogDir.
 *
 * Records are JSON here (`jsonLogs`, default true) unless `env` says otherwise: these tests look
 * for fields in them. What an operator reads by default, the text format, has its own tests
 * (`log.test.ts`, `bin/logs.e2e.test.ts`, which passes `jsonLogs: false`).
 */
export async function startProxyProcess(
  args: readonly string[],
  env: Record<string, string> = {},
  program: string = IMAP_PROXY,
  options: {
    bareListenPort?: boolean;
    jsonLogs?: boolean;
    /** LogDir (default a fresh temporary directory). */
    logDir?: string;
    /** The descriptor limit (`ulimit -n`) the proxy starts with. */
    maxFiles?: number;
  } = {},
): Promise<ProxyProcess> {
  const port = await freePort('127.0.0.1');
  const logDir = options.logDir ?? (await tempDir('mmp-proxy-log-'));
  const listen = options.bareListenPort === true ? String(port) : `127.0.0.1:${port}`;
  const argv = [program, '-p', listen, '-o', logDir, ...args];
  // prlimit sets the limit and execs node: the pid is the proxy's own.
  const child = execa(
    options.maxFiles === undefined ? 'node' : 'prlimit',
    options.maxFiles === undefined ? argv : [`--nofile=${options.maxFiles}`, 'node', ...argv],
    {
      reject: false,
      all: true,
      buffer: true,
      // Only what we give: the test runner's environment must not configure the proxy.
      extendEnv: false,
      env: proxyEnv({ ...(options.jsonLogs === false ? {} : { LogFormat: 'json' }), ...env }),
    },
  );
  let out = '';
  let signalled = false;
  child.all.on('data', (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + 15_000;
  while (!out.includes('listening on')) {
    if (child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`${program} did not start: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const logs = async (): Promise<string> => {
    const files = (await readdir(logDir)).filter((f) => /^MMP_\d{8}\.log$/.test(f));
    const texts = await Promise.all(files.map((f) => readFile(join(logDir, f), 'utf8')));
    return texts.join('');
  };
  return {
    port,
    logDir,
    child,
    output: () => out,
    signal() {
      signalled = true;
      child.kill('SIGTERM');
    },
    async stop() {
      // One SIGTERM only: a second one means "close now" (see main.ts).
      if (child.exitCode === null && child.signalCode === null && !signalled) {
        signalled = true;
        child.kill('SIGTERM');
      }
      const r = await child;
      return r.exitCode;
    },
    logs,
    waitForLog: (match, timeoutMs) => waitForLog(logs, match, timeoutMs),
  };
}

/**
 * Flags pointing a proxy at the test bed: its directory (bound as the service DN unless `bind` is
 * false), its stores on `backsidePort`, and optionally a LogLevel.
 */
export function testbedArgs(
  bed: Testbed,
  backsidePort: number,
  opts: { bind?: boolean; logLevel?: number } = {},
): string[] {
  const args = ['-h', `${bed.ldap.host}:${bed.ldap.port}`, '-b', bed.ldap.baseDn];
  if (opts.bind !== false) args.push('-D', bed.ldap.bindDn, '-w', bed.ldap.bindPassword);
  args.push('-c', String(backsidePort));
  if (opts.logLevel !== undefined) args.push('-v', String(opts.logLevel));
  return args;
}
