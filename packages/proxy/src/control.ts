/**
 * The started process's life after its configuration was read: the listeners, and what each
 * signal means (nginx's master loop). The same whether the sessions are served by workers
 * (`workers.ts`) or by this process (`main.ts`): both are a `Serving`.
 *
 * | signal         | meaning                                                                  |
 * | -------------- | ------------------------------------------------------------------------ |
 * | SIGHUP         | reload: re-read everything, check it whole, then switch (below)          |
 * | SIGUSR1        | reopen the log files (logrotate); passed to the workers                  |
 * | SIGUSR2        | hand the listening sockets to a new executable, then drain               |
 * | SIGQUIT        | drain: stop listening; sessions (piped or not) run to their end or DRAIN_DEADLINE_MS |
 * | SIGTERM/SIGINT | stop: stop listening, pre-login sessions told goodbye, the rest get SHUTDOWN_GRACE_MS; a second one closes all |
 *
 * Reload: the command line and the environment as at start, the config file, the vdmap, every
 * certificate, key, CA bundle, certmap and the spoof message are read again and a whole runtime
 * is built from them (`snapshot.ts`) before anything changes. A problem anywhere keeps the running
 * configuration and logs one record saying why. Otherwise new connections get the new runtime
 * (in every worker), sessions in flight keep theirs, piped sessions are not touched, and the
 * listeners follow the vdmap's addresses. A parameter that needs new processes or new main
 * listeners (`RESTART_PARAMETERS`: ListenPort, SSLListenPort…) keeps its running value and the
 * reload says it needs a restart.
 *
 * Hand-over (SIGUSR2, nginx's binary upgrade): this process starts its own executable again, with
 * the same arguments and environment, giving it every listening socket as an inherited descriptor
 * (`MMP_LISTENERS`) and its own pid (`MMP_REPLACES`). The new process reads its configuration
 * (the new package's code, the file as it is now), starts its workers, listens on the inherited
 * sockets, and only then sends SIGQUIT to this one, which stops accepting and drains. Both accept
 * on the same sockets meanwhile, so no connection is refused at any moment; a new process that
 * fails leaves this one serving. MetricsListen is not passed on (with workers, node:cluster's
 * primary holds it out of reach): the new process waits for the address (`takingOver`), and this
 * one closes it as its drain begins, so that the instance's /healthz is the new process's.
 */

import { spawn } from 'node:child_process';
import type { Protocol, Result } from '@mmp/config';
import { DRAIN_DEADLINE_MS } from './limits.js';
import {
  INHERITED_LISTENERS_ENV,
  type ListenerSink,
  Listeners,
  inheritedFds,
  listenersFor,
} from './listeners.js';
import type { Log } from './log.js';
import type { ProxyRuntime, RuntimeSources } from './proxyRuntime.js';
import {
  type ReadConfiguration,
  checkValues,
  keepRestartParameters,
  resolveValues,
} from './snapshot.js';

/** The environment variable with the pid of the process a new one replaces (SIGUSR2). */
export const REPLACES_ENV = 'MMP_REPLACES';

/** Whoever serves the sessions: the workers, or this process. */
export interface Serving {
  /** Ready to take connections (ok), or could not start (the reason). */
  readonly started: Promise<Result<void, string>>;
  /** Every session is over and nothing more will be served. */
  readonly gone: Promise<void>;
  /** Who accepts the listeners' connections (`listeners.ts`). */
  readonly sink: ListenerSink;
  /** Serve new connections with this configuration (checked already); problems, if any. */
  reload(next: ReadConfiguration): Promise<string[]>;
  reopenLogs(): void;
  stop(): void;
  abort(): void;
  /** `handedOver`: a new process took the listeners (SIGUSR2): MetricsListen goes to it now
   * rather than answering 503 until the sessions are gone. */
  drain(deadlineMs: number, handedOver: boolean): void;
}

export async function control(o: {
  program: string;
  protocol: Protocol;
  argv: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
  log: Log;
  say: (text: string) => void;
  first: ReadConfiguration;
  serving: Serving;
  /** What a reload's runtime is built with (`previous`: the one in force, in this process). */
  sources: (running: ProxyRuntime) => Omit<RuntimeSources, 'read' | 'warn'>;
  /** Told to the operator once listening, e.g. `(2 workers)`. */
  detail: string;
}): Promise<number> {
  const { program, protocol, argv, log, say, serving } = o;
  let current = o.first;
  // Read once: the workers (forked with process.env), a reload and a later hand-over must not
  // see these again.
  const inherited = inheritedFds(o.env);
  const replaces = Number(o.env[REPLACES_ENV]);
  const env = { ...o.env };
  for (const name of [INHERITED_LISTENERS_ENV, REPLACES_ENV]) {
    delete env[name];
    delete process.env[name];
  }

  const started = await serving.started;
  if (!started.ok) {
    say(started.error);
    serving.stop();
    await serving.gone;
    return 1;
  }
  const listeners = new Listeners(serving.sink, log, inherited);
  const opened = await listeners.follow(listenersFor(current.runtime));
  if (!opened.ok) {
    log.error('start', 'cannot listen', { error: opened.error });
    say(opened.error);
    listeners.close();
    serving.stop();
    await serving.gone;
    return 1;
  }
  const bound = listeners.address();
  log.at('lifecycle', 'start', `${program} listening`, {
    listeners: listeners.keys.join(' '),
    ...(inherited.size > 0 ? { inherited: inherited.size } : {}),
  });
  for (const key of listeners.keys.slice(1)) say(`listening on ${key}`);
  say(`listening on ${bound?.host ?? '?'}:${bound?.port ?? '?'}${o.detail}`);
  if (Number.isInteger(replaces) && replaces > 1) {
    // The sockets are served here now: the old process may stop accepting.
    log.at('lifecycle', 'start', 'took over the listeners: the old process drains', {
      oldPid: replaces,
    });
    try {
      process.kill(replaces, 'SIGQUIT');
    } catch {
      // Gone already.
    }
  }

  let successor: number | undefined;
  let reloading: Promise<void> = Promise.resolve();
  let ending: 'stop' | 'drain' | undefined;

  const reload = async (): Promise<void> => {
    const refuse = (problems: readonly string[]): void => {
      // One record for one refused reload, however many problems.
      log.error('reload', 'configuration refused, keeping the running one', {
        problems: problems.join('; '),
      });
      say(`SIGHUP: configuration refused, keeping the running one: ${problems.join('; ')}`);
    };
    const resolved = resolveValues(protocol, argv, env);
    if (!resolved.ok) return refuse(resolved.error);
    const kept = keepRestartParameters(current.snapshot.values, resolved.value.values);
    const checked = checkValues(protocol, kept.values, o.sources(current.runtime));
    if (!checked.ok) return refuse(checked.error);
    const problems = await serving.reload(checked.value);
    if (problems.length > 0) {
      // Checked here first, so this is a worker's environment (memory?), not the configuration.
      log.error('reload', 'a worker kept its configuration', { problems: problems.join('; ') });
    }
    current = checked.value;
    const follow = await listeners.follow(listenersFor(current.runtime));
    if (!follow.ok) log.error('reload', 'cannot listen', { error: follow.error });
    const restart = kept.changed.join(' ');
    log.at('lifecycle', 'reload', 'configuration reloaded', {
      listeners: listeners.keys.join(' '),
      ...(restart === '' ? {} : { needsRestart: restart }),
    });
    for (const w of [...resolved.value.warnings, ...checked.value.warnings]) say(`SIGHUP: ${w}`);
    say(
      restart === ''
        ? 'SIGHUP: configuration reloaded'
        : `SIGHUP: configuration reloaded; ${restart} changed and need a restart (kept as running)`,
    );
  };

  const handOver = (): void => {
    if (ending !== undefined || successor !== undefined) return;
    const fds = listeners.descriptors();
    const names = fds.map((f, i) => `${f.key}=${3 + i}`).join('\t');
    try {
      const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
        stdio: ['ignore', 'inherit', 'inherit', ...fds.map((f) => f.fd)],
        env: {
          ...env,
          [INHERITED_LISTENERS_ENV]: names,
          [REPLACES_ENV]: String(process.pid),
        },
      });
      const pid = child.pid;
      successor = pid;
      log.at('lifecycle', 'handover', 'SIGUSR2: started a new process on the listeners', {
        newPid: pid ?? null,
        listeners: fds.map((f) => f.key).join(' '),
      });
      child.once('exit', (code, signal) => {
        if (successor !== pid) return;
        successor = undefined;
        if (ending === undefined) {
          log.error('handover', 'the new process ended before taking over: still serving', {
            code,
            signal: signal ?? null,
          });
          say(`SIGUSR2: the new process ended (exit ${code ?? signal ?? '?'}): still serving`);
        }
      });
      child.unref();
    } catch (e) {
      log.error('handover', 'cannot start a new process', { error: (e as Error).message });
    }
  };

  const drain = (): void => {
    if (ending !== undefined) return;
    ending = 'drain';
    if (successor !== undefined) say(`handed over to pid ${successor}; draining`);
    else say('SIGQUIT: draining');
    log.at('lifecycle', 'drain', 'not listening any more; sessions run to their end', {
      ...(successor === undefined ? {} : { newPid: successor }),
      deadlineMs: DRAIN_DEADLINE_MS,
    });
    listeners.close();
    serving.drain(DRAIN_DEADLINE_MS, successor !== undefined);
  };

  let stops = 0;
  const stop = (signal: NodeJS.Signals): void => {
    stops++;
    log.at('lifecycle', 'stop', `${signal}: stopping`, { second: stops > 1 });
    if (stops > 1) return serving.abort();
    ending = 'stop';
    listeners.close();
    serving.stop();
  };

  const handlers: [NodeJS.Signals, () => void][] = [
    ['SIGHUP', () => (reloading = reloading.then(reload))],
    ['SIGUSR1', () => serving.reopenLogs()],
    ['SIGUSR2', handOver],
    ['SIGQUIT', drain],
    ['SIGTERM', () => stop('SIGTERM')],
    ['SIGINT', () => stop('SIGINT')],
  ];
  for (const [s, h] of handlers) process.on(s, h);
  await serving.gone;
  await reloading;
  for (const [s, h] of handlers) process.off(s, h);
  log.at('lifecycle', 'stop', `${program} stopped`);
  // The start script's supervisor reads this to tell a stop from a crash in a process that is
  // not its child (the one a hand-over started).
  say(`stopped (pid ${process.pid})`);
  return 0;
}
