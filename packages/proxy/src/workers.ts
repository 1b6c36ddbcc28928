/**
 * The primary and its workers (nginx's master and workers). The primary is the process that was
 * started: it reads the configuration and every file it names (`snapshot.ts`), opens every
 * listener (`listeners.ts`) and shares each listening socket with every worker, which accepts on
 * it, and serves no client itself. When it was started by root it stays root — so that a reload
 * can still read root-only keys and a 0600 config file and open a vdmap's new privileged address —
 * while every worker becomes RunAsUser before it holds a client (`privileges.ts`).
 *
 * When there is a primary: always when started by root with a RunAsUser to become (NumThreads 0
 * then means one worker), and with NumThreads N > 0 (N workers). Otherwise the one process does
 * everything (`main.ts`), with the same listeners, reload and hand-over (`control.ts`).
 *
 * A worker runs `main.ts` again, which finds it is a cluster worker and comes here (`runWorker`):
 * it asks the primary for the snapshot (the configuration and the files' bytes, `SNAPSHOT`),
 * opens its log file, drops privileges, builds its runtime from the snapshot (it reads nothing
 * from the disk), and says it is ready. The primary then sends it every listening socket
 * (`mmp-listen`, the bound socket as the message's handle; `listeners.ts`): the worker listens on
 * it and accepts its own connections, which the kernel spreads over the workers waiting on the
 * socket; `mmp-unlisten` (a reload dropped the address) and a stop or drain close its copy. On
 * SIGHUP the primary sends every worker the new snapshot (`RELOAD`): each builds a new runtime and
 * gives it to new connections; sessions in flight keep theirs.
 *
 * How to pick N: Node runs a process's JavaScript on one core, so one worker per core (2 on these
 * 2-core machines), or one less when the directory or stores share the machine. Workers also raise
 * the descriptor ceiling: one process may hold at most 20,000 open files and each session holds 2
 * (client and store), so one process carries about 9,500 sessions; N workers carry N times that.
 *
 * Logs: every process opens the day's log file in append mode (O_APPEND writes of whole records
 * do not interleave within a record) and every record carries its pid.
 *
 * Signals to the primary (`control.ts` decides what they mean): SIGHUP reload, SIGUSR1 reopen the
 * logs (passed on), SIGQUIT drain, SIGUSR2 hand the listeners to a new executable, SIGTERM/SIGINT
 * stop (a second one: abort). The primary passes its decisions to the workers as requests over
 * the channel rather than signals: a terminal's Ctrl-C or systemd's stop signals the whole process
 * group, and counting that and the primary's request as two signals would cut every session
 * without its grace period (see onWorkerStop).
 *
 * A worker that dies is replaced; one that dies soon after starting is replaced after a delay that
 * doubles each time (up to WORKER_RESTART_MAX_DELAY_MS), so a crash loop does not spin a core.
 * A worker that fails before the first start completed stops the whole start: that is a
 * configuration or environment error, and retrying it forever would hide it.
 */

import cluster, { type Worker } from 'node:cluster';
import { closeSync, fstatSync, readdirSync } from 'node:fs';
import { type Server, createServer } from 'node:net';
import { type Result, err, ok } from '@mmp/config';
import {
  ClusterPrimary,
  ClusterWorker,
  type PrimaryChannel,
  ipcErrorText,
  messageKind,
  primaryEndpoint,
  withServicesHere,
  workerEndpoint,
} from './ipc.js';
import { CLIENT_LIMIT_KINDS, clientLimitsService } from './clientLimits.js';
import { installProcessGuards } from './crash.js';
import type { BoundSocket } from './listeners.js';
import { type Log, openLogFile } from './log.js';
import { type Account, dropPrivileges, logOpener } from './privileges.js';
import { withNodeFlags } from './runtime.js';
import { serveMetrics } from './metrics/listener.js';
import { ProxyServer, type StartSession } from './server.js';
import { type Snapshot, runtimeFromSnapshot } from './snapshot.js';
import {
  DRAIN_DEADLINE_MS,
  IPC_REPLY_TIMEOUT_MS,
  WORKER_RESTART_FIRST_DELAY_MS,
  WORKER_RESTART_MAX_DELAY_MS,
  WORKER_STABLE_AFTER_MS,
} from './limits.js';

/** What a worker asks first: the configuration to serve and whom to serve it as. */
export const SNAPSHOT = messageKind<
  null,
  {
    snapshot: Snapshot;
    account: Account | undefined;
    /** The primary replaces another process (SIGUSR2) that may still hold MetricsListen. */
    takingOver: boolean;
    /** How many workers the primary keeps: one holds the server's client limits itself. */
    workers: number;
  }
>('workers.snapshot', (v): v is null => v === null);

/** The primary's reload: a new snapshot (already checked there); the worker's problems, if any. */
export const RELOAD = messageKind<Snapshot, string[]>(
  'workers.reload',
  (v): v is Snapshot => typeof v === 'object' && v !== null && 'values' in v,
);

/** Messages outside `ipc.ts`'s requests: plain notes, and the one that carries a socket. */
type Note =
  | { kind: 'mmp-ready' }
  | { kind: 'mmp-stop' }
  | { kind: 'mmp-abort' }
  /** `handedOver`: a new process took the listeners (SIGUSR2); MetricsListen is its now. */
  | { kind: 'mmp-drain'; deadlineMs: number; handedOver: boolean }
  /** A listening socket to accept on (the message's handle), named by its `listenerKey`. */
  | { kind: 'mmp-listen'; key: string; tls: boolean }
  | { kind: 'mmp-unlisten'; key: string }
  /** A worker's answer to `mmp-listen`: it accepts on `key` now, or why it cannot. */
  | { kind: 'mmp-listening'; key: string; error?: string };

function kindOf(m: unknown): unknown {
  return typeof m === 'object' && m !== null ? (m as { kind?: unknown }).kind : undefined;
}

/** Delay before restarting a worker that died after `livedMs`, its slot's `crashes` counting
 * earlier quick deaths (updated and returned). */
export function restartDelay(
  livedMs: number,
  crashes: number,
): { delayMs: number; crashes: number } {
  if (livedMs >= WORKER_STABLE_AFTER_MS) return { delayMs: 0, crashes: 0 };
  const next = crashes + 1;
  const delayMs = Math.min(
    WORKER_RESTART_MAX_DELAY_MS,
    WORKER_RESTART_FIRST_DELAY_MS * 2 ** Math.min(next - 1, 20),
  );
  return { delayMs, crashes: next };
}

interface Slot {
  worker: Worker | undefined;
  ready: boolean;
  startedAt: number;
  crashes: number;
  timer: NodeJS.Timeout | undefined;
}

/** The primary's workers, as `control.ts` drives them. */
export interface WorkerPool {
  /** Resolves once every worker is ready (ok), or when one failed to start (its reason). */
  readonly started: Promise<Result<void, string>>;
  /** Resolves when the last worker has exited. */
  readonly gone: Promise<void>;
  /** Have every worker accept on this socket, now and after a restart; ok once each ready one
   * listens (a worker's failure: its reason). */
  share(key: string, socket: BoundSocket, tls: boolean): Promise<Result<void, string>>;
  /** Have every worker stop accepting on `key`. */
  unshare(key: string): void;
  /** Send every worker a checked snapshot; each worker's problems. */
  reload(snapshot: Snapshot): Promise<string[]>;
  /** Pass SIGUSR1 on (reopen the logs). */
  reopenLogs(): void;
  /** Finish (first stop signal), abort (second), drain (SIGQUIT or after a hand-over). */
  stop(): void;
  abort(): void;
  /** `handedOver`: a new process took the listeners (SIGUSR2), MetricsListen included. */
  drain(deadlineMs: number, handedOver: boolean): void;
}

/** Start `count` workers that serve `current()` as `account`. */
export function startWorkers(o: {
  count: number;
  log: Log;
  current: () => Snapshot;
  account: Account | undefined;
  /** This process replaces another (SIGUSR2): its workers wait for MetricsListen to be free. */
  takingOver?: boolean;
  /** Registers the primary's services (`ipc.ts`) on its channel to the workers. */
  services: (primary: PrimaryChannel) => void;
}): WorkerPool {
  const { count, log } = o;
  // 'advanced': structured clone on the channel, so that bytes cross as bytes (ipc.ts).
  cluster.setupPrimary({
    execArgv: withNodeFlags(process.execArgv),
    serialization: 'advanced',
  });
  const channel = new ClusterPrimary((peer, reason) =>
    log.error('workers', 'bad message from a worker', { pid: peer.pid, reason }),
  );
  channel.handle(SNAPSHOT, () => ({
    snapshot: o.current(),
    account: o.account,
    takingOver: o.takingOver === true,
    workers: count,
  }));
  o.services(channel);
  const slots: Slot[] = Array.from({ length: count }, () => ({
    worker: undefined,
    ready: false,
    startedAt: 0,
    crashes: 0,
    timer: undefined,
  }));
  let started = false;
  let stopping: Note | undefined;
  /** The listening sockets every worker accepts on, by key (`listeners.ts`). */
  const shared = new Map<string, { socket: BoundSocket; tls: boolean }>();
  /** Answers to `mmp-listen` still awaited, by key: the workers' pids not yet answered. */
  const awaited = new Map<string, { pids: Set<number>; done: (r: Result<void, string>) => void }>();
  let settleStarted: (r: Result<void, string>) => void = () => undefined;
  const startedP = new Promise<Result<void, string>>((r) => (settleStarted = r));
  let settleGone: () => void = () => undefined;
  const gone = new Promise<void>((r) => (settleGone = r));

  const live = (): Worker[] => slots.flatMap((s) => (s.worker === undefined ? [] : [s.worker]));
  const send = (w: Worker, note: Note, handle?: BoundSocket): boolean => {
    if (!w.isConnected()) return false;
    try {
      // `send` returning false only says the channel is backed up: the message is queued.
      // node:child_process sends a bare TCP handle as it sends a server (its 'net.Native' kind);
      // its types know only the wrapped ones.
      if (handle === undefined) w.send(note);
      else w.send(note, handle as unknown as Server);
      return true;
    } catch {
      return false;
    }
  };
  const listenIn = (w: Worker, key: string, l: { socket: BoundSocket; tls: boolean }): boolean =>
    send(w, { kind: 'mmp-listen', key, tls: l.tls }, l.socket);
  /** A worker's answer to `mmp-listen`; one that exits counts as answered (`error` undefined):
   * its replacement gets every shared socket once ready. */
  const answered = (pid: number, key: string, error: string | undefined): void => {
    const wait = awaited.get(key);
    if (wait === undefined || !wait.pids.delete(pid)) return;
    if (error !== undefined) {
      awaited.delete(key);
      wait.done(err(error));
    } else if (wait.pids.size === 0) {
      awaited.delete(key);
      wait.done(ok(undefined));
    }
  };
  const share = (key: string, socket: BoundSocket, tls: boolean): Promise<Result<void, string>> => {
    const l = { socket, tls };
    shared.set(key, l);
    const pids = new Set<number>();
    for (const s of slots) {
      const w = s.worker;
      if (s.ready && w !== undefined && listenIn(w, key, l)) pids.add(w.process.pid ?? 0);
    }
    if (pids.size === 0) return Promise.resolve(ok(undefined));
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        awaited.delete(key);
        resolve(err(`a worker did not listen within ${IPC_REPLY_TIMEOUT_MS} ms`));
      }, IPC_REPLY_TIMEOUT_MS);
      awaited.set(key, {
        pids,
        done: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
      });
    });
  };
  const unshare = (key: string): void => {
    shared.delete(key);
    for (const w of live()) send(w, { kind: 'mmp-unlisten', key });
  };
  const finishIfDone = (): void => {
    if (stopping === undefined || live().length > 0) return;
    settleGone();
  };
  const fork = (slot: Slot, index: number): void => {
    slot.timer = undefined;
    if (stopping !== undefined) return;
    const worker = cluster.fork();
    slot.worker = worker;
    slot.ready = false;
    slot.startedAt = Date.now();
    const peer = { id: worker.id, pid: worker.process.pid ?? 0 };
    channel.attach(peer, workerEndpoint(worker));
    worker.once('disconnect', () => channel.detach(peer));
    worker.on('message', (m: unknown) => {
      const kind = kindOf(m);
      if (kind === 'mmp-listening') {
        const { key, error } = m as { key?: unknown; error?: unknown };
        if (typeof key === 'string')
          answered(peer.pid, key, typeof error === 'string' ? error : undefined);
        return;
      }
      if (kind !== 'mmp-ready') return;
      slot.ready = true;
      // Every socket shared so far (a worker replaced, or the first ones at start).
      for (const [key, l] of shared) listenIn(worker, key, l);
      if (started)
        log.at('lifecycle', 'workers', 'worker replaced', { worker: index, pid: peer.pid });
      else if (slots.every((s) => s.ready)) {
        started = true;
        settleStarted(ok(undefined));
      }
    });
    worker.on('exit', (code, signal) => {
      channel.detach(peer);
      // Its replacement gets every shared socket when ready: no answer to wait for from it.
      for (const key of [...awaited.keys()]) answered(peer.pid, key, undefined);
      slot.worker = undefined;
      slot.ready = false;
      if (stopping !== undefined) return finishIfDone();
      if (!started) {
        log.error('workers', 'a worker could not start', { code, signal: signal ?? null });
        settleStarted(err(`a worker could not start (exit ${code ?? signal ?? '?'})`));
        return stopAll({ kind: 'mmp-stop' });
      }
      const delay = restartDelay(Date.now() - slot.startedAt, slot.crashes);
      slot.crashes = delay.crashes;
      log.error('workers', 'worker died, restarting it', {
        worker: index,
        pid: peer.pid,
        code,
        signal: signal ?? null,
        delayMs: delay.delayMs,
      });
      slot.timer = setTimeout(() => fork(slot, index), delay.delayMs);
    });
  };
  const stopAll = (note: Note): void => {
    stopping ??= note;
    for (const s of slots) {
      if (s.timer !== undefined) clearTimeout(s.timer);
      s.timer = undefined;
    }
    for (const s of slots) {
      const w = s.worker;
      if (w === undefined) continue;
      // One still starting has no sessions and no handlers yet: SIGTERM's default action ends it.
      if (!s.ready || !send(w, note)) w.process.kill('SIGTERM');
    }
    finishIfDone();
  };
  slots.forEach((slot, i) => fork(slot, i));
  return {
    started: startedP,
    gone,
    share,
    unshare,
    async reload(snapshot) {
      const replies = await channel.askWorkers(RELOAD, snapshot);
      return replies.flatMap((r) => (r.ok ? r.value : [ipcErrorText(r.error)]));
    },
    reopenLogs() {
      // Only ready workers: one still loading could not yet keep Node's inspector shut.
      for (const s of slots) if (s.ready) s.worker?.process.kill('SIGUSR1');
    },
    stop: () => stopAll({ kind: 'mmp-stop' }),
    abort() {
      stopping = { kind: 'mmp-abort' };
      for (const w of live()) if (!send(w, { kind: 'mmp-abort' })) w.process.kill('SIGKILL');
    },
    drain: (deadlineMs, handedOver) => stopAll({ kind: 'mmp-drain', deadlineMs, handedOver }),
  };
}

/**
 * In a worker: SIGTERM, SIGINT and the primary's stop request all mean "finish" (see the module
 * comment); the primary's abort request closes every session at once; its drain request lets
 * every session run to its end or the deadline. The signal handlers stay installed, so that a
 * late signal never kills the worker by its default action.
 */
function onWorkerRequests(
  server: ProxyServer,
  log: Log,
  /** A hand-over's drain: let the new process have MetricsListen now. */
  releaseMetrics: () => void,
): Promise<void> {
  /** The primary's listening sockets this worker accepts on, by key. */
  const listening = new Map<string, Server>();
  let ending = false;
  const unlisten = (key: string): void => {
    listening.get(key)?.close();
    listening.delete(key);
  };
  const closeListeners = (): void => {
    ending = true;
    for (const key of [...listening.keys()]) unlisten(key);
  };
  const listen = (key: string, tls: boolean, socket: unknown): void => {
    const answer = (error?: string): void =>
      void process.send?.({
        kind: 'mmp-listening',
        key,
        ...(error === undefined ? {} : { error }),
      } satisfies Note);
    unlisten(key);
    if (ending) {
      // Sent before the stop was: this copy of the socket is not needed.
      (socket as { close?: () => void }).close?.();
      return answer('stopping');
    }
    const accepting = createServer({ allowHalfOpen: true, noDelay: true }, (s) =>
      server.adopt(s, tls),
    );
    accepting.once('error', (e) => answer(e.message));
    // net.Server takes a bare TCP handle as its listening socket (and listens on it here).
    accepting.listen(socket, () => {
      accepting.removeAllListeners('error');
      accepting.on('error', (e) =>
        log.error('listener', 'listener error', { listener: key, error: e.message }),
      );
      listening.set(key, accepting);
      answer();
    });
  };
  return new Promise((resolve) => {
    const stop = (why: string): void => {
      closeListeners();
      log.at('lifecycle', 'stop', `${why}: stopping`, { sessions: server.sessionCount });
      void server.stop().then(resolve);
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    // A signal to the whole process group (a terminal) must not end a draining worker.
    process.on('SIGQUIT', () => undefined);
    process.on('SIGHUP', () => undefined);
    process.on('SIGUSR2', () => undefined);
    process.on('message', (m: unknown, handle: unknown) => {
      const kind = kindOf(m);
      if (kind === 'mmp-listen' && handle !== undefined && handle !== null) {
        const { key, tls } = m as { key?: unknown; tls?: unknown };
        if (typeof key === 'string') listen(key, tls === true, handle);
      } else if (kind === 'mmp-unlisten') {
        const { key } = m as { key?: unknown };
        if (typeof key === 'string') unlisten(key);
      } else if (kind === 'mmp-stop') stop('stop requested');
      else if (kind === 'mmp-abort') {
        log.at('lifecycle', 'stop', 'second signal: closing every session now');
        closeListeners();
        server.abortAll();
        stop('abort requested');
      } else if (kind === 'mmp-drain') {
        const d = (m as { deadlineMs?: unknown }).deadlineMs;
        const deadlineMs = typeof d === 'number' ? d : DRAIN_DEADLINE_MS;
        if ((m as { handedOver?: unknown }).handedOver === true) releaseMetrics();
        closeListeners();
        log.at('lifecycle', 'drain', 'draining: no new clients, sessions run to their end', {
          sessions: server.sessionCount,
          deadlineMs,
        });
        void server.drain(deadlineMs).then(resolve);
      }
    });
  });
}

/**
 * Listening sockets a primary inherited from the process it replaced (SIGUSR2) are open in its
 * workers too (an inherited descriptor is not close-on-exec). A worker never accepts on them;
 * holding one would keep it open after the primary closed it (drain), and connections queued on
 * it would wait forever. At a worker's start its only socket is its channel to the primary.
 */
function closeInheritedSockets(): void {
  // The channel's descriptor (Node removes NODE_CHANNEL_FD from the environment at start-up).
  const channel = (process.channel as { fd?: unknown } | undefined)?.fd;
  if (typeof channel !== 'number') return;
  let fds: number[];
  try {
    fds = readdirSync('/proc/self/fd').map(Number);
  } catch {
    return; // no /proc: nothing inherited can be found, nothing to do
  }
  for (const fd of fds) {
    if (!(fd > 2) || fd === channel) continue;
    try {
      if (fstatSync(fd).isSocket()) closeSync(fd);
    } catch {
      // The descriptor of the directory listing itself, closed by now.
    }
  }
}

/** A cluster worker's whole life; the exit code. */
export async function runWorker(
  startSession: StartSession,
  say: (text: string) => void,
): Promise<number> {
  closeInheritedSockets();
  const self = { id: cluster.worker?.id ?? 0, pid: process.pid };
  const fleet = new ClusterWorker(primaryEndpoint(), self);
  process.once('disconnect', () => fleet.closed());
  const asked = await fleet.request(SNAPSHOT, null);
  if (!asked.ok) {
    say(`worker: no configuration from the primary: ${ipcErrorText(asked.error)}`);
    return 1;
  }
  const { snapshot, account, takingOver, workers } = asked.value;
  const { values, protocol } = snapshot;
  // The log is opened while still root (in the run-as user's directory, owned by that user).
  const logFile = openLogFile({
    dir: values.LogDir,
    level: values.LogLevel,
    format: values.LogFormat === 'json' ? 'json' : 'text',
    protocol,
    warn: (m) => say(`warning: ${m}`),
    ...logOpener(account === undefined ? { kind: 'root' } : { kind: 'drop', account }),
  });
  process.on('SIGUSR1', () => logFile.reopen());
  // A bug that escapes every session's guard: logged with its stack, exit (the primary replaces
  // the worker).
  installProcessGuards(logFile.log, () => logFile.close());
  const log = logFile.log;
  try {
    if (account !== undefined) {
      const dropped = dropPrivileges(account);
      if (!dropped.ok) {
        say(dropped.error);
        return 1;
      }
      log.at('lifecycle', 'start', 'serving clients as RunAsUser', {
        user: account.user,
        uid: account.uid,
        gid: account.gid,
      });
    }
    // The only worker holds every client connection: its counts and failed-login penalties are
    // the server's, kept here without a message to the primary per login (issue 18). Several
    // workers ask the primary, which sees them all.
    const limitsFleet =
      workers === 1
        ? withServicesHere(fleet, CLIENT_LIMIT_KINDS, (primary) =>
            clientLimitsService(primary, { log, values: () => snapshot.values }),
          )
        : fleet;
    const built = runtimeFromSnapshot(snapshot, { fleet: limitsFleet });
    if (!built.ok) {
      for (const m of built.error) say(m);
      return 1;
    }
    const server = new ProxyServer({ protocol, runtime: built.value, log, startSession });
    fleet.answer(RELOAD, (next) => {
      const r = runtimeFromSnapshot(next, { fleet: limitsFleet, previous: server.runtime });
      if (!r.ok) return r.error;
      server.use(r.value);
      log.at('lifecycle', 'reload', 'new connections get the new configuration');
      return [];
    });
    // MetricsListen, shared by the workers through node:cluster (the primary binds it).
    const program = protocol === 'imap' ? 'ImapProxy' : 'PopProxy';
    const metrics =
      built.value.global.settings.metricsListen === undefined
        ? undefined
        : await serveMetrics(program, server, log, { takingOver });
    if (metrics?.ok === false) {
      say(metrics.error);
      return 1;
    }
    const done = onWorkerRequests(server, log, () => {
      if (metrics?.ok === true) void metrics.value();
    });
    process.send?.({ kind: 'mmp-ready' } satisfies Note);
    await done;
    if (metrics?.ok === true) await metrics.value();
    await server.runtime.shared.directories.close();
    await server.runtime.shared.preAuthPool.close();
    log.at('lifecycle', 'stop', 'worker stopped');
    return 0;
  } finally {
    await logFile.close();
  }
}
