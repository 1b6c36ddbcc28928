/**
 * NumThreads (the guide's worker count): with N > 0 the process started by the operator becomes a
 * primary that runs N worker processes (node:cluster) and does no session work itself. Each
 * worker is a whole multiplexor (`main.ts` run again with the same arguments and environment):
 * it opens the listeners — shared through the primary, which hands each new connection to the
 * workers in turn (cluster's round-robin, so the load spreads evenly even when one worker is
 * busy) — its own directory connections, lookup cache and store attempt counts.
 *
 * How to pick N: Node runs a process's JavaScript on one core, so one worker per core (2 on these
 * 2-core machines), or one less when the directory or stores share the machine. 0 on a single
 * core: a worker would only add a hop. Workers also raise the descriptor ceiling: one process may
 * hold at most 20,000 open files and each session holds 2 (client and store), so one process
 * carries about 9,500 sessions; N workers carry N times that.
 *
 * Logs: every process (primary and workers) opens the day's log file in append mode (O_APPEND
 * writes of whole records do not interleave within a record) and every record carries its pid.
 *
 * Signals: SIGHUP is passed to every worker (each reloads its vdmap), SIGUSR1 too (each reopens
 * its log file); SIGTERM or SIGINT is passed
 * on as a stop request over the cluster channel (each worker stops accepting and lets its sessions
 * finish within the grace period), and the primary exits when the last worker has; a second
 * signal becomes an abort request (workers then close every session at once). Requests rather
 * than signals: see onWorkerStop.
 *
 * A worker that dies is replaced; one that dies soon after starting is replaced after a delay that
 * doubles each time (up to WORKER_RESTART_MAX_DELAY_MS), so a crash loop does not spin a core.
 * A worker that fails before the first start completed (cannot listen…) stops the whole start:
 * that is a configuration error, and retrying it forever would hide it.
 */

import cluster, { type Worker } from 'node:cluster';
import { ClusterPrimary, type PrimaryChannel, workerEndpoint } from './ipc.js';
import type { Log } from './log.js';
import { withNodeFlags } from './runtime.js';
import {
  WORKER_RESTART_FIRST_DELAY_MS,
  WORKER_RESTART_MAX_DELAY_MS,
  WORKER_STABLE_AFTER_MS,
} from './limits.js';

/** What a worker tells the primary once its listeners are open. */
export interface WorkerListening {
  kind: 'mmp-listening';
  host: string;
  port: number;
}

/** The primary's requests to a worker: finish (first signal), close every session (second). */
export type WorkerRequest = { kind: 'mmp-stop' } | { kind: 'mmp-abort' };

function kindOf(m: unknown): unknown {
  return typeof m === 'object' && m !== null ? (m as { kind?: unknown }).kind : undefined;
}

function isListening(m: unknown): m is WorkerListening {
  return kindOf(m) === 'mmp-listening';
}

/**
 * In a worker: SIGTERM, SIGINT and the primary's stop request all mean "finish" (a terminal's
 * Ctrl-C or systemd's stop signals the whole process group, and the primary passes the stop on
 * too: counting both as two signals would cut every session without its grace period); only the
 * primary's abort request (the operator's second signal) closes every session at once. The signal
 * handlers stay installed, so that a late signal never kills the worker by its default action.
 */
export function onWorkerStop(stop: (signal: NodeJS.Signals) => void, abort: () => void): void {
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('message', (m: unknown) => {
    if (kindOf(m) === 'mmp-stop') stop('SIGTERM');
    else if (kindOf(m) === 'mmp-abort') abort();
  });
}

/** Send a request to a running worker; one still starting (no handlers yet, no sessions) or
 * unreachable is ended by SIGTERM's default action instead. */
function request(worker: Worker, running: boolean, r: WorkerRequest): void {
  if (running && worker.isConnected()) worker.send(r);
  else worker.process.kill('SIGTERM');
}

/** In a worker: tell the primary the listeners are open. */
export function announceListening(address: { host: string; port: number }): void {
  const message: WorkerListening = { kind: 'mmp-listening', ...address };
  process.send?.(message);
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
  startedAt: number;
  crashes: number;
  timer: NodeJS.Timeout | undefined;
}

/** Run as the primary of `count` workers; resolves with the exit code once all are gone. */
export function runPrimary(o: {
  program: string;
  count: number;
  log: Log;
  stderr: (text: string) => void;
  /** Registers the primary's services (`ipc.ts`) on its channel to the workers. */
  services: (primary: PrimaryChannel) => void;
}): Promise<number> {
  const { program, count, log, stderr } = o;
  // 'advanced': structured clone on the channel, so that Buffers cross as Buffers (ipc.ts).
  cluster.setupPrimary({
    execArgv: withNodeFlags(process.execArgv),
    serialization: 'advanced',
  });
  const channel = new ClusterPrimary((peer, reason) =>
    log.error('workers', 'bad message from a worker', { pid: peer.pid, reason }),
  );
  o.services(channel);
  const slots: Slot[] = Array.from({ length: count }, () => ({
    worker: undefined,
    startedAt: 0,
    crashes: 0,
    timer: undefined,
  }));
  let started = false;
  let ready = 0;
  /** Workers whose listeners are open (and whose signal handlers are installed). */
  const listening = new Set<Worker>();
  let stopping = false;
  let failed = false;

  return new Promise<number>((resolve) => {
    const live = (): Worker[] => slots.flatMap((s) => (s.worker === undefined ? [] : [s.worker]));
    const finishIfDone = (): void => {
      if (!stopping || live().length > 0) return;
      for (const s of ['SIGHUP', 'SIGUSR1', 'SIGTERM', 'SIGINT'] as const) process.off(s, onSignal);
      log.at('lifecycle', 'stop', `${program} stopped (all workers gone)`);
      resolve(failed ? 1 : 0);
    };
    const stopAll = (): void => {
      stopping = true;
      for (const s of slots) {
        if (s.timer !== undefined) clearTimeout(s.timer);
        s.timer = undefined;
      }
      for (const w of live()) request(w, listening.has(w), { kind: 'mmp-stop' });
      finishIfDone();
    };
    const fork = (slot: Slot, index: number): void => {
      slot.timer = undefined;
      if (stopping) return;
      const worker = cluster.fork();
      slot.worker = worker;
      slot.startedAt = Date.now();
      const peer = { id: worker.id, pid: worker.process.pid ?? 0 };
      channel.attach(peer, workerEndpoint(worker));
      worker.once('disconnect', () => channel.detach(peer));
      worker.on('message', (m: unknown) => {
        if (!isListening(m)) return;
        listening.add(worker);
        if (started) {
          log.at('lifecycle', 'workers', 'worker replaced', {
            worker: index,
            pid: worker.process.pid,
          });
          return;
        }
        if (++ready === count) {
          started = true;
          log.at('lifecycle', 'start', `${program} listening with ${count} workers`, {
            address: m.host,
            port: m.port,
          });
          stderr(`${program}: listening on ${m.host}:${m.port} (${count} workers)`);
        }
      });
      worker.on('exit', (code, signal) => {
        channel.detach(peer);
        slot.worker = undefined;
        listening.delete(worker);
        const lived = Date.now() - slot.startedAt;
        if (stopping) return finishIfDone();
        if (!started) {
          // Not even the first start completed: a configuration or environment problem.
          failed = true;
          stderr(`${program}: a worker could not start (exit ${code ?? signal ?? '?'}): stopping`);
          log.error('workers', 'a worker could not start', { code, signal: signal ?? null });
          return stopAll();
        }
        const next = restartDelay(lived, slot.crashes);
        slot.crashes = next.crashes;
        log.error('workers', 'worker died, restarting it', {
          worker: index,
          pid: worker.process.pid,
          code,
          signal: signal ?? null,
          delayMs: next.delayMs,
        });
        slot.timer = setTimeout(() => fork(slot, index), next.delayMs);
      });
    };
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (signal === 'SIGHUP') {
        // A worker still starting reads the vdmap as it is now, and has no SIGHUP handler yet
        // (the signal would kill it): only running workers get it.
        log.at('lifecycle', 'signal', 'SIGHUP: passed to every running worker', {
          workers: listening.size,
        });
        for (const w of listening) w.process.kill('SIGHUP');
        return;
      }
      if (signal === 'SIGUSR1') {
        // logrotate signals the pid file's process: the workers reopen their logs too. Only
        // running ones: a worker still loading could not yet keep Node's inspector shut.
        for (const w of listening) w.process.kill('SIGUSR1');
        return;
      }
      signals++;
      log.at('lifecycle', 'stop', `${signal}: stopping the workers`, { second: signals > 1 });
      if (signals === 1) stopAll();
      // A second signal: the workers close every session now (main.ts).
      else for (const w of live()) request(w, listening.has(w), { kind: 'mmp-abort' });
    };
    for (const s of ['SIGHUP', 'SIGUSR1', 'SIGTERM', 'SIGINT'] as const) process.on(s, onSignal);
    slots.forEach((slot, i) => fork(slot, i));
  });
}
