/**
 * What the executables do, protocol by protocol: resolve the configuration (`@mmp/config`'s
 * `cliAction`), then list (`-h`), print install lines, fail with exit code 2, or read the
 * configuration and every file it names and check it by building a runtime (`snapshot.ts`), and
 * serve until stopped (`control.ts`: listeners and signals). The sessions are served by workers
 * (`workers.ts`) when this process was started by root (it stays root and serves no client) or
 * NumThreads > 0; otherwise by this process. A NumThreads worker runs this function too and goes
 * to `runWorker`. User errors are one clear line on stderr, never a stack trace.
 */

import cluster from 'node:cluster';
import { type Protocol, cliAction, formatProblem } from '@mmp/config';
import { clientLimitsService } from './clientLimits.js';
import { REPLACES_ENV, control, type Serving } from './control.js';
import { startImapSession } from './imap/dialect.js';
import { installProcessGuards } from './crash.js';
import { type PrimaryService, localFleet } from './ipc.js';
import { openLogFile } from './log.js';
import { metricsService } from './metrics/cluster.js';
import { serveMetrics } from './metrics/listener.js';
import { startPopSession } from './pop3/dialect.js';
import { logOpener, privilegesFor } from './privileges.js';
import { ProxyServer, type StartSession } from './server.js';
import { checkValues } from './snapshot.js';
import { runWorker, startWorkers } from './workers.js';

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
const PRIMARY_SERVICES: readonly PrimaryService[] = [clientLimitsService, metricsService];

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
  // A worker reads nothing itself: the primary sends it the configuration (workers.ts).
  if (cluster.isWorker) return runWorker(SESSIONS[protocol], say);
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
  // RunAsUser (privileges.ts): whom clients are served as, decided before anything is opened
  // (said after the configuration's own problems, which the operator fixes first).
  const privileges = privilegesFor(values.RunAsUser);
  const account =
    privileges.ok && privileges.value.kind === 'drop' ? privileges.value.account : undefined;
  const workers = account !== undefined ? Math.max(1, values.NumThreads) : values.NumThreads;
  // With no workers this process serves, and the primary's services answer it in-process.
  const local = workers === 0 ? localFleet() : undefined;
  const first = checkValues(protocol, values, local === undefined ? {} : { fleet: local.worker });
  if (!first.ok) {
    for (const m of first.error) say(m);
    return 2;
  }
  if (!privileges.ok) {
    say(privileges.error);
    return 2;
  }
  if (privileges.value.kind === 'unprivileged' && privileges.value.ignored !== undefined)
    say(`warning: RunAsUser ${privileges.value.ignored} ignored: not started as root`);
  for (const w of first.value.warnings) say(w);
  const { logDir, logLevel, logFormat } = first.value.runtime.global.settings;
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
  const log = logFile.log;
  let current = first.value;
  const context = { log, values: () => current.snapshot.values };
  // Started by a SIGUSR2 hand-over: the old process holds MetricsListen until it drains.
  const takingOver = Number(env[REPLACES_ENV]) > 1;
  const startServices = (primary: Parameters<PrimaryService>[0]): void => {
    for (const start of PRIMARY_SERVICES) start(primary, context);
  };
  try {
    let serving: Serving;
    if (local === undefined) {
      const pool = startWorkers({
        count: workers,
        log,
        current: () => current.snapshot,
        account,
        takingOver,
        services: startServices,
      });
      serving = {
        ...pool,
        sink: { kind: 'share', share: pool.share, unshare: pool.unshare },
        reload: (next) => pool.reload(next.snapshot),
      };
    } else {
      startServices(local.primary);
      serving = serveHere(protocol, first.value.runtime, log, program, takingOver);
    }
    return await control({
      program,
      protocol,
      argv,
      env,
      log,
      say,
      first: first.value,
      serving: {
        ...serving,
        async reload(next) {
          current = next;
          return serving.reload(next);
        },
      },
      // This process's own runtime is the running one (its shared state is kept); a primary's
      // check runtime only checks.
      sources: (running) => (local === undefined ? {} : { fleet: local.worker, previous: running }),
      detail: workers > 0 ? ` (${workers} worker${workers === 1 ? '' : 's'})` : '',
    });
  } finally {
    await logFile.close();
  }
}

/** No workers: this process serves the sessions itself. */
function serveHere(
  protocol: Protocol,
  runtime: Parameters<typeof ProxyServer.prototype.use>[0],
  log: ReturnType<typeof openLogFile>['log'],
  program: string,
  takingOver: boolean,
): Serving {
  const server = new ProxyServer({ protocol, runtime, log, startSession: SESSIONS[protocol] });
  let settle: () => void = () => undefined;
  const gone = new Promise<void>((r) => (settle = r));
  // MetricsListen: open until the sessions are gone, so that /healthz says 503 while they drain
  // (but a hand-over's successor takes it at once).
  const metrics = serveMetrics(program, server, log, { takingOver });
  const end = (p: Promise<void>): void =>
    void p.then(async () => {
      const m = await metrics;
      if (m.ok) await m.value();
      await server.runtime.shared.directories.close();
      await server.runtime.shared.preAuthPool.close();
      settle();
    });
  return {
    started: metrics.then((m) => (m.ok ? { ok: true, value: undefined } : m)),
    gone,
    sink: { kind: 'accept', onConnection: (socket, tls) => server.adopt(socket, tls) },
    reload(next) {
      server.use(next.runtime);
      return Promise.resolve([]);
    },
    reopenLogs: () => undefined,
    stop: () => end(server.stop()),
    abort() {
      log.at('lifecycle', 'stop', 'second signal: closing every session now');
      server.abortAll();
    },
    drain: (deadlineMs, handedOver) => {
      if (handedOver) void metrics.then((m) => (m.ok ? m.value() : undefined));
      end(server.drain(deadlineMs));
    },
  };
}
