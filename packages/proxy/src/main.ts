/**
 * What the executables do, protocol by protocol: resolve the configuration (`@mmp/config`'s
 * `cliAction`), then list (`-h`), print install lines, fail with exit code 2, or build the runtime
 * (`proxyRuntime.ts`: every file read and checked before anything listens) and serve until
 * SIGTERM/SIGINT. User errors are one clear line on stderr, never a stack trace.
 */

import cluster from 'node:cluster';
import {
  type ConfigValues,
  type Protocol,
  type Result,
  cliAction,
  formatProblem,
} from '@mmp/config';
import { installProcessGuards } from './crash.js';
import { startImapSession } from './imap/dialect.js';
import { type Log, openLogFile } from './log.js';
import { startPopSession } from './pop3/dialect.js';
import { type Privileges, logOpener, privilegesFor, serving } from './privileges.js';
import { type ProxyRuntime, type RuntimeInput, buildRuntime } from './proxyRuntime.js';
import { ProxyServer, type StartSession } from './server.js';
import { listenForDomains, loadVdmap, reloadVirtualDomains } from './vdomain/table.js';
import { announceListening, onWorkerStop, runPrimary } from './workers.js';
import {
  ClusterWorker,
  type PrimaryService,
  type WorkerChannel,
  localFleet,
  primaryEndpoint,
} from './ipc.js';

const PROGRAM: Record<Protocol, string> = { imap: 'ImapProxy', pop3: 'PopProxy' };

const SESSIONS: Record<Protocol, StartSession> = {
  imap: startImapSession,
  pop3: startPopSession,
};

/**
 * What the primary runs for the serving processes (`ipc.ts`): state that must be one across
 * NumThreads workers registers its handlers here, and is then answered in the primary, or in the
 * one process when there is no primary.
 */
const PRIMARY_SERVICES: readonly PrimaryService[] = [];

export interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const processIo: Io = {
  stdout: (t) => process.stdout.write(t.endsWith('\n') ? t : `${t}\n`),
  stderr: (t) => process.stderr.write(t.endsWith('\n') ? t : `${t}\n`),
};

/** Run an executable; resolves with the exit code once it should exit. */
export async function main(
  protocol: Protocol,
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  io: Io = processIo,
): Promise<number> {
  const program = PROGRAM[protocol];
  const say = (text: string): void => io.stderr(`${program}: ${text}`);
  const action = cliAction(protocol, argv, env);
  switch (action.kind) {
    case 'list':
    case 'install':
      io.stdout(action.text);
      return 0;
    case 'fail':
      say(action.message);
      return action.exitCode;
    case 'apply': {
      // `install -n NAME`: the installer's writer, loaded only for this (setup/src/options.ts).
      const { applyOptions } = await import('@mmp/setup');
      return applyOptions({ protocol, ...action }, { env, cwd: process.cwd(), ...io });
    }
    case 'run':
      break;
  }
  for (const w of action.warnings) say(`warning: ${formatProblem(w)}`);
  const values = action.config.values;
  // This process's end of the channel to the primary: across processes in a NumThreads worker,
  // in-process when there is no primary (its services start below, once the log is open).
  const local = cluster.isWorker ? undefined : localFleet();
  const fleet: WorkerChannel = local?.worker ?? workerChannel();
  const runtime = loadRuntime(protocol, values, fleet, say);
  if (runtime === undefined) return 2;
  // RunAsUser (privileges.ts): whom clients are served as, decided before anything is opened.
  const privileges = privilegesFor(action.config.values.RunAsUser);
  if (!privileges.ok) {
    say(privileges.error);
    return 2;
  }
  if (privileges.value.kind === 'unprivileged' && privileges.value.ignored !== undefined)
    say(`warning: RunAsUser ${privileges.value.ignored} ignored: not started as root`);
  const { logDir, logLevel, logFormat, numThreads } = runtime.global.settings;
  const logFile = openLogFile({
    dir: logDir,
    level: logLevel,
    format: logFormat,
    protocol,
    warn: (m) => say(`warning: ${m}`),
    ...logOpener(privileges.value),
  });
  // SIGUSR1 reopens the log (logrotate); a listener also keeps Node's inspector shut (bin/).
  process.on('SIGUSR1', () => logFile.reopen());
  // A bug that escapes every session's guard: logged with its stack, exit for the supervisor.
  installProcessGuards(logFile.log, () => logFile.close());
  try {
    // NumThreads: this process only watches the workers (workers.ts), which run this function
    // again, with the same arguments and environment, as workers.
    const context = { log: logFile.log, values: () => values };
    if (numThreads > 0 && cluster.isPrimary)
      return await runPrimary({
        program,
        count: numThreads,
        log: logFile.log,
        stderr: io.stderr,
        services: (primary) => PRIMARY_SERVICES.forEach((start) => start(primary, context)),
      });
    if (local !== undefined) for (const start of PRIMARY_SERVICES) start(local.primary, context);
    return await serve(program, runtime, privileges.value, logFile.log, say);
  } finally {
    await logFile.close();
  }
}

/** The vdmap and the runtime, every problem said; undefined when there was one (exit 2). */
function loadRuntime(
  protocol: Protocol,
  values: ConfigValues,
  fleet: WorkerChannel,
  say: (text: string) => void,
): ProxyRuntime | undefined {
  const path = values.VirtualDomainFile;
  let vdmap: RuntimeInput['vdmap'];
  if (path !== undefined && path !== '') {
    const loaded = loadVdmap(path);
    if (!loaded.ok) {
      for (const p of loaded.error) say(formatProblem(p));
      return undefined;
    }
    for (const w of loaded.value.warnings) say(`warning: ${formatProblem(w)}`);
    vdmap = { path, domains: loaded.value.domains };
  }
  const runtime = buildRuntime(
    { protocol, values, vdmap },
    { warn: (m) => say(`warning: ${m}`), fleet },
  );
  if (!runtime.ok) {
    for (const m of runtime.error) say(m);
    return undefined;
  }
  return runtime.value;
}

/** In a NumThreads worker: the channel to the primary; requests in flight fail when it closes. */
function workerChannel(): WorkerChannel {
  const self = { id: cluster.worker?.id ?? 0, pid: process.pid };
  const channel = new ClusterWorker(primaryEndpoint(), self);
  process.once('disconnect', () => channel.closed());
  return channel;
}

/** Listen, serve until a stop signal, let sessions finish; the exit code. */
async function serve(
  program: string,
  runtime: ProxyRuntime,
  privileges: Privileges,
  log: Log,
  say: (text: string) => void,
): Promise<number> {
  const served = serving(privileges, SESSIONS[runtime.protocol], {
    isWorker: cluster.isWorker,
    log,
  });
  const server = new ProxyServer({
    protocol: runtime.protocol,
    runtime,
    log,
    startSession: served.start,
  });
  const before = served.beforeListen();
  if (!before.ok) {
    say(before.error);
    return 1;
  }
  if (!(await startListening(program, server, log, say, () => served.afterListen()))) return 1;

  let stopped = false;
  const abortAll = (): void => {
    if (stopped) return; // the log is closed
    log.at('lifecycle', 'stop', 'second signal: closing every session now');
    server.abortAll();
  };
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    if (cluster.isWorker)
      // NumThreads: a signal (also sent to the whole process group by a terminal or systemd) or
      // the primary's request stops a worker; only the primary's second request aborts sessions.
      onWorkerStop(resolve, () => {
        resolve('SIGTERM');
        abortAll();
      });
    else {
      process.once('SIGTERM', () => resolve('SIGTERM'));
      process.once('SIGINT', () => resolve('SIGINT'));
    }
    process.on('SIGHUP', () => reload(server, log, say));
  });
  log.at('lifecycle', 'stop', `${signal}: stopping`, { sessions: server.sessionCount });
  // A second signal does not wait for the grace period.
  if (!cluster.isWorker) {
    process.once('SIGTERM', abortAll);
    process.once('SIGINT', abortAll);
  }
  await server.stop();
  stopped = true;
  await server.runtime.shared.directories.close();
  await server.runtime.shared.preAuthPool.close();
  log.at('lifecycle', 'stop', `${program} stopped`);
  return 0;
}

/** ListenPort, SSLListenPort and the vdmap's addresses; false (and said why) when one failed. */
async function startListening(
  program: string,
  server: ProxyServer,
  log: Log,
  say: (text: string) => void,
  /** Every listener is open: drop privileges (privileges.ts). */
  listened: () => Result<unknown, string>,
): Promise<boolean> {
  try {
    const bound = await server.listen();
    const tlsBound = await server.listenTls();
    if (tlsBound !== undefined)
      say(`listening for TLS clients on ${tlsBound.host}:${tlsBound.port}`);
    const extra = await listenForDomains(server, server.runtime, log);
    if (!extra.ok) {
      // The main listener is up: close it, or the process would not exit.
      log.error('start', 'cannot listen on a vdmap address', { error: extra.error });
      say(`cannot listen on a vdmap address: ${extra.error}`);
      await server.stop();
      return false;
    }
    const dropped = listened();
    if (!dropped.ok) {
      say(dropped.error);
      await server.stop();
      return false;
    }
    log.at('lifecycle', 'start', `${program} listening`, { address: bound.host, port: bound.port });
    // A worker tells the primary, which says "listening" once every worker is.
    if (cluster.isWorker) announceListening(bound);
    else say(`listening on ${bound.host}:${bound.port}`);
    return true;
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    log.error('start', 'cannot listen', { error: message });
    say(`cannot listen on ListenPort: ${message}`);
    return false;
  }
}

/** SIGHUP refreshes the virtual domains (vdomain/table.ts); without them it is ignored rather
 * than fatal, as the default action would be. */
function reload(server: ProxyServer, log: Log, say: (text: string) => void): void {
  const path = server.runtime.values.VirtualDomainFile;
  if (path === undefined || path === '') {
    log.at('lifecycle', 'signal', 'SIGHUP ignored (no vdmap)');
    return;
  }
  void reloadVirtualDomains(server, path, log).then((r) => {
    if (r.ok) say(`SIGHUP: ${path} reloaded`);
    else for (const p of r.error) say(`SIGHUP: ${formatProblem(p)} (kept the previous vdmap)`);
  });
}
