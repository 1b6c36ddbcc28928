// One benchmark run: the test bed (slapd + two tuned Dovecot stores), the targets (Dovecot
// direct, mmp N=0 and N=2, two mmp behind HAProxy, perdition, nginx, socat) all started on loopback, the same load
// against each, repetitions interleaved across targets (so that noise from the machine spreads
// evenly), the CPU each part of a target spent over each measured window, then the idle-session
// ramp target by target. Everything is stopped in `finally`.
import { cpus } from 'node:os';
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Testbed } from '@mmp/testbed';
import { startBenchBed } from './bedSetup.js';
import { commit, loadAverage, machine } from './machine.js';
import { median } from './stats.js';
import { summarizeLatencies } from './stats.js';
import {
  type Cell,
  type CpuOpId,
  type CpuResults,
  type MetricId,
  type Results,
  TARGET_LABELS,
  type TargetId,
} from './table.js';
import { IdleFleet, runJobs } from './load/pool.js';
import type {
  Account,
  Endpoint,
  FetchResult,
  IdleJob,
  LoginsResult,
  NoopResult,
  Protocol,
} from './load/scenarios.js';
import type { AnyJob, AnyResult } from './load/jobs.js';
import {
  CPU_PARTS,
  type CpuGroups,
  type CpuSample,
  clockTicksPerSecond,
  cpuBetween,
  perOperation,
  sampleCpu,
} from './cpu.js';
import { defined, dovecotGroup, slapdGroup } from './bedProcs.js';
import { type Pinning, describePinning, pinGroups, pinTarget } from './pin.js';
import {
  type Running,
  direct,
  startMmp,
  startMmpBehindHaproxy,
  startNginx,
  startPerdition,
  startSocat,
} from './peers/targets.js';
import { memAvailable, pssBytes, rssBytes } from './procs.js';
import { widenLocalPorts } from './localPorts.js';
import { raiseBacklog, softnetDrops } from './loopback.js';

export interface BenchOptions {
  quick: boolean;
  reps: number;
  loginSeconds: number;
  fetchSeconds: number;
  noopCount: number;
  concurrency: number;
  sessions: number;
  idleSeconds: number;
  /**
   * Seconds the ramp's sessions are then held without traffic before their memory is read a second
   * time (0: not): the first reading, 2 s after the ramp, also counts what the logins left for
   * the collector and the heap growth they caused, which V8 gives back once the process is idle.
   */
  idleSettleSeconds: number;
  /** mmp N=2's NumThreads for its idle ramp (default: sized to the session count) */
  idleThreads?: number;
  targets: TargetId[];
  idle: boolean;
  /** run the login, fetch and NOOP measurements (false: idle sessions only) */
  throughput: boolean;
  /** stop a ramp once the machine's available memory dropped by this much (bytes) */
  maxMemoryDrop: number;
  nginxProxyBuffer: string | undefined;
  /** place the load generator, the proxies and the stores on these cores (taskset) */
  pin?: Pinning;
  log: (line: string) => void;
}

/** 127.0.1.1 … : source addresses for the load generator (loopback routes all of 127/8). */
/** Targets whose proxy caches directory lookups (LdapCacheTTL): filled before each login run. */
const CACHES_LOOKUPS: readonly TargetId[] = ['mmp0', 'mmp2', 'mmpHa'];
/** Targets measured for their logins only (the cache makes no difference to a piped session). */
const LOGINS_ONLY: readonly TargetId[] = ['mmp0nc'];
/**
 * Unmeasured fetches before each fetch run's window, every target alike: mmp's first hundreds of
 * MiB ran while V8 compiled its relay path (about 1.1 ms/MiB instead of 0.7 for a fresh ImapProxy,
 * a quarter of it on V8's compiler threads), one-off work that a 5 s window at a slow load
 * generator's 26 MiB/s counted per MiB (README, "CPU per MiB").
 */
const FETCH_WARMUP_MS = 3_000;

export function localAddresses(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `127.0.1.${i + 1}`);
}

const SESSIONS_PER_LOAD_WORKER = 12_000;
/** below the ≈ 9,872 clients a process with 20,000 descriptors takes (2 per session) */
const SESSIONS_PER_PROXY_WORKER = 9_000;

/**
 * NumThreads for a target's idle ramp. mmp N=0 keeps its one worker (its ceiling is part of
 * what the ramp shows); mmp N=2 and nginx get enough workers for `sessions` (at least 2), as an
 * operator sizing for that many would: one process cannot hold 50,000 sessions' descriptors.
 * `asked` (--idle-threads) overrides for mmp N=2. perdition forks per connection: none.
 */
export function idleWorkers(id: TargetId, sessions: number, asked?: number): number {
  if (id === 'mmp0' || id === 'perdition') return 0;
  if (id === 'mmp2' && asked !== undefined) return asked;
  return Math.max(2, Math.ceil(sessions / SESSIONS_PER_PROXY_WORKER));
}
const MIN_FREE_MEMORY = 3 * 1024 ** 3;

type Figures = Partial<Record<MetricId, number[]>>;

export async function runBench(o: BenchOptions): Promise<Results> {
  const log = o.log;
  const started = new Date();
  const loadAtStart = loadAverage();
  const dir = await mkdtemp(join(tmpdir(), 'mmp-bench-'));
  // perdition and nginx workers run as nobody and write below it
  await chmod(dir, 0o755);
  const running = new Map<TargetId, Running>();
  const missing = new Map<TargetId, string>();
  /** protocols a target does not offer yet (mmp POP3, NumThreads), with the reason */
  const protocolMissing = new Map<TargetId, Partial<Record<Protocol, string>>>();
  const figures = new Map<TargetId, Figures>();
  const cells: Results['cells'] = {};
  const cpu: CpuResults = {};
  const hz = clockTicksPerSecond();
  const notes: string[] = [];
  const caveats: string[] = [];
  let bed: Testbed | undefined;
  let restorePorts: (() => void) | undefined;
  let restoreBacklog: (() => void) | undefined;
  try {
    log('starting the test bed (slapd, two Dovecot stores)…');
    const benchBed = await startBenchBed(o.quick ? 200 : 1000);
    bed = benchBed.bed;
    const b = benchBed.backend;
    const accounts = benchBed.accounts;
    const one = accounts[0];
    if (one === undefined) throw new Error('no bulk users in the test bed');
    const sources = localAddresses(16);
    const ldapConfig = bed.ldap.configFile;
    const storeConfigs = bed.stores.map((s) => s.configFile);
    const storeGroups = (): number[] => defined(storeConfigs.map(dovecotGroup));
    const slapdGroups = (): number[] => defined([slapdGroup(ldapConfig)]);
    if (o.pin !== undefined) {
      pinGroups(storeGroups(), o.pin.stores);
      pinGroups(slapdGroups(), o.pin.aux);
      log(`pinned: ${describePinning(o.pin)}`);
    }

    const start = async (id: TargetId, idleWorkers?: number): Promise<Running> => {
      const sub = join(dir, `${id}${idleWorkers === undefined ? '' : '-idle'}`);
      await mkdir(sub, { recursive: true });
      await chmod(sub, 0o777);
      switch (id) {
        case 'direct':
          return direct(b);
        case 'mmp0':
          return startMmp(sub, b, idleWorkers ?? 0);
        case 'mmp0nc':
          // every login a directory search: the cost of a cache miss (issue 18)
          return startMmp(sub, b, 0, { LdapCacheTTL: '0' });
        case 'mmp2':
          return startMmp(sub, b, idleWorkers ?? 2);
        case 'mmpHa':
          return startMmpBehindHaproxy(sub, b);
        case 'perdition':
          return startPerdition(sub, b);
        case 'nginx':
          return startNginx(sub, b, idleWorkers ?? cpus().length, o.nginxProxyBuffer);
        case 'socat':
          return startSocat(sub, b, one.host ?? '127.0.0.2');
      }
    };
    const place = (r: Running): void => {
      if (o.pin !== undefined) pinTarget(r.groups, o.pin);
    };
    /** The process groups of every part a target needs, for its CPU figures. */
    const cpuGroups = (r: Running, id: TargetId): CpuGroups => ({
      ...(id === 'direct' ? {} : { proxy: r.groups.proxy }),
      ...(r.groups.auth === undefined ? {} : { auth: r.groups.auth }),
      ...(r.groups.balancer === undefined ? {} : { balancer: r.groups.balancer }),
      ...(r.usesDirectory ? { directory: slapdGroups } : {}),
      stores: storeGroups,
    });
    const recordCpu = (id: TargetId, op: CpuOpId, perOp: CpuSample | undefined): void => {
      if (perOp === undefined) return;
      const byOp = (cpu[id] ??= {});
      const runs = (byOp[op] ??= {});
      for (const part of CPU_PARTS) {
        const v = perOp[part];
        if (v !== undefined) (runs[part] ??= []).push(v);
      }
    };
    /**
     * Run load jobs against one target and sample its parts' CPU when the first job's measured
     * window begins and when the last one's ends.
     */
    const measured = async <R extends AnyResult>(
      id: TargetId,
      jobs: AnyJob[],
      timeoutMs: number,
    ): Promise<{ results: R[]; cpu: CpuSample | undefined }> => {
      const r = running.get(id);
      const groups: CpuGroups = r === undefined ? {} : cpuGroups(r, id);
      let before: CpuSample | undefined;
      let after: CpuSample | undefined;
      let started = 0;
      let ended = 0;
      const results = await runJobs<R>(jobs, timeoutMs, {
        cpus: o.pin?.load,
        onMark: (_, name) => {
          if (name === 'start' && started++ === 0) before = sampleCpu(groups);
          if (name === 'end' && ++ended === jobs.length) after = sampleCpu(groups);
        },
      });
      return {
        results,
        cpu:
          before === undefined || after === undefined ? undefined : cpuBetween(before, after, hz),
      };
    };

    for (const id of o.targets) {
      try {
        log(`starting ${TARGET_LABELS[id]}…`);
        const r = await start(id);
        place(r);
        running.set(id, r);
        figures.set(id, {});
        protocolMissing.set(id, r.missing);
        for (const [p, why] of Object.entries(r.missing))
          log(`  ${TARGET_LABELS[id]} ${p}: ${why}`);
        if (r.note !== undefined && Object.keys(r.endpoints).length > 0) {
          notes.push(`${TARGET_LABELS[id]}: ${r.note}.`);
        }
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        log(`  cannot start ${TARGET_LABELS[id]}: ${message}`);
        missing.set(id, `not started`);
        notes.push(`${TARGET_LABELS[id]} did not start: ${message.split('\n')[0]}`);
      }
    }

    const record = (id: TargetId, metric: MetricId, value: number): void => {
      const f = figures.get(id);
      if (f === undefined) return;
      (f[metric] ??= []).push(value);
    };
    const endpointOf = (id: TargetId, protocol: Protocol): Endpoint | undefined => {
      const e = running.get(id)?.endpoints[protocol];
      return e === undefined ? undefined : { protocol, ...e };
    };
    const safely = async (what: string, f: () => Promise<void>): Promise<void> => {
      try {
        await f();
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        log(`  ${what}: ${message}`);
        if (!notes.some((n) => n.startsWith(`${what}:`)))
          notes.push(`${what}: ${message.split('\n')[0]}`);
      }
    };

    const loadWorkers = Math.max(1, Math.min(cpus().length, o.concurrency));
    /**
     * Log in once with every account, unmeasured, so that the login run that follows measures
     * cache hits: with random picks from 1,000 accounts the first repetition was mostly misses
     * and the later ones mostly hits. Before every run: LdapCacheTTL (900 s) may end within one.
     */
    const fillLookupCache = async (endpoint: Endpoint, concurrency: number): Promise<void> => {
      const results = await runJobs<LoginsResult>(
        Array.from({ length: loadWorkers }, (_, i) => ({
          kind: 'logins' as const,
          endpoint,
          accounts: accounts.filter((_, j) => j % loadWorkers === i),
          concurrency,
          warmupMs: 0,
          durationMs: 0,
          localAddresses: sources.filter((_, j) => j % loadWorkers === i),
          timeoutMs: 10_000,
          eachAccountOnce: true,
        })),
        120_000,
        { cpus: o.pin?.load },
      );
      const errors = results.reduce((n, r) => n + r.errors, 0);
      if (errors > 0) log(`  filling the lookup cache: ${errors} logins failed`);
    };
    for (let rep = 1; o.throughput && rep <= o.reps; rep++) {
      log(`repetition ${rep} of ${o.reps}`);
      for (const protocol of ['imap', 'pop3'] as const) {
        const metric: MetricId = protocol === 'imap' ? 'imapLogins' : 'popLogins';
        for (const id of o.targets) {
          const endpoint = endpointOf(id, protocol);
          if (endpoint === undefined || running.get(id)?.routesLogins === false) continue;
          await safely(`${TARGET_LABELS[id]} ${protocol} logins`, async () => {
            const per = Math.ceil(o.concurrency / loadWorkers);
            if (CACHES_LOOKUPS.includes(id)) await fillLookupCache(endpoint, per);
            const { results, cpu: spent } = await measured<LoginsResult>(
              id,
              Array.from({ length: loadWorkers }, (_, i) => ({
                kind: 'logins' as const,
                endpoint,
                accounts,
                concurrency: Math.min(per, o.concurrency - i * per),
                warmupMs: 1000,
                durationMs: o.loginSeconds * 1000,
                localAddresses: sources.filter((_, j) => j % loadWorkers === i),
                timeoutMs: 10_000,
              })),
              o.loginSeconds * 1000 + 60_000,
            );
            const rate = results.reduce((s, r) => s + r.perSecond, 0);
            const errors = results.reduce((s, r) => s + r.errors, 0);
            const cycles = results.reduce((s, r) => s + r.cycles, 0);
            if (errors > 0) {
              const sample = results.flatMap((r) => r.sampleErrors)[0] ?? '';
              log(`  ${TARGET_LABELS[id]} ${protocol}: ${errors} errors (${sample})`);
            }
            if (cycles === 0)
              throw new Error(results.flatMap((r) => r.sampleErrors)[0] ?? 'no cycle completed');
            log(`  ${TARGET_LABELS[id]} ${protocol} login+logout: ${rate.toFixed(0)}/s`);
            record(id, metric, rate);
            const windowCycles = results.reduce((s, r) => s + r.windowCycles, 0);
            if (spent !== undefined) {
              recordCpu(
                id,
                protocol === 'imap' ? 'imapLogin' : 'popLogin',
                perOperation(spent, windowCycles),
              );
            }
          });
        }
      }
      for (const protocol of ['imap', 'pop3'] as const) {
        const metric: MetricId = protocol === 'imap' ? 'imapFetch' : 'popFetch';
        for (const id of o.targets) {
          const endpoint = endpointOf(id, protocol);
          if (endpoint === undefined || LOGINS_ONLY.includes(id)) continue;
          await safely(`${TARGET_LABELS[id]} ${protocol} fetch`, async () => {
            const {
              results: [r],
              cpu: spent,
            } = await measured<FetchResult>(
              id,
              [
                {
                  kind: 'fetch',
                  endpoint,
                  account: one,
                  message: bed?.bigMessage.number ?? 3,
                  messageSize: bed?.bigMessage.size ?? 1048576,
                  warmupMs: FETCH_WARMUP_MS,
                  durationMs: o.fetchSeconds * 1000,
                  timeoutMs: 30_000,
                },
              ],
              FETCH_WARMUP_MS + o.fetchSeconds * 1000 + 60_000,
            );
            if (r === undefined) throw new Error('no result');
            log(
              `  ${TARGET_LABELS[id]} ${protocol} 1 MiB fetch: ${r.mibPerSecond.toFixed(0)} MiB/s`,
            );
            record(id, metric, r.mibPerSecond);
            if (spent !== undefined) {
              recordCpu(
                id,
                protocol === 'imap' ? 'imapMiB' : 'popMiB',
                perOperation(spent, r.bytes / 1048576),
              );
            }
          });
        }
      }
      for (const id of o.targets) {
        const endpoint = endpointOf(id, 'imap');
        if (endpoint === undefined || LOGINS_ONLY.includes(id)) continue;
        await safely(`${TARGET_LABELS[id]} NOOP`, async () => {
          const {
            results: [r],
            cpu: spent,
          } = await measured<NoopResult>(
            id,
            [
              {
                kind: 'noop',
                endpoint,
                account: one,
                warmup: Math.min(200, o.noopCount),
                count: o.noopCount,
                timeoutMs: 10_000,
              },
            ],
            120_000,
          );
          if (r === undefined) throw new Error('no result');
          const s = summarizeLatencies(r.micros);
          log(
            `  ${TARGET_LABELS[id]} NOOP: median ${s.median.toFixed(0)} µs, p99 ${s.p99.toFixed(0)} µs`,
          );
          record(id, 'noopMedian', s.median);
          record(id, 'noopP99', s.p99);
          if (spent !== undefined)
            recordCpu(id, 'noop1000', perOperation(spent, r.micros.length, 1000));
        });
      }
    }

    // Idle sessions, one target at a time (each restarted with enough workers).
    if (o.idle) {
      const ports = widenLocalPorts();
      if ('restore' in ports) {
        restorePorts = ports.restore;
        log(`local port range widened to ${ports.value.low}–${ports.value.high} for the ramps`);
      } else log(`local port range left as it is (${ports.unchanged})`);
      const backlog = raiseBacklog();
      if ('restore' in backlog) {
        restoreBacklog = backlog.restore;
        log(`loopback backlog (netdev_max_backlog) raised to ${backlog.value} for the ramps`);
      } else log(`loopback backlog left as it is (${backlog.unchanged})`);
      for (const id of o.targets) {
        // socat holds a process per session: no idle ramp (and nothing to learn from one); the
        // balancer's hop costs per login and per byte, not per idle session (and the test bed's
        // HAProxy holds 4,096 connections)
        if (id === 'direct' || id === 'socat' || id === 'mmpHa' || LOGINS_ONLY.includes(id))
          continue;
        const current = running.get(id);
        if (current === undefined) continue;
        await current.stop();
        running.delete(id);
        await safely(`${TARGET_LABELS[id]} idle sessions`, async () => {
          const workers = idleWorkers(id, o.sessions, o.idleThreads);
          const target = await start(id, workers);
          place(target);
          if (id === 'mmp2' && target.endpoints.imap === undefined) {
            await target.stop();
            throw new Error(target.missing.imap ?? 'not available');
          }
          running.set(id, target);
          const endpoint = endpointOf(id, 'imap');
          if (endpoint === undefined) throw new Error(target.missing.imap ?? 'no IMAP endpoint');
          const m = await idleRamp(endpoint, target, accounts, sources, o);
          cells[id] = {
            ...cells[id],
            // the column's name says N=2; the ramp's own worker count and processes are shown
            idleSessions: {
              value: m.held,
              note: `${m.stopReason}${workers > 0 ? `, NumThreads ${workers}` : ''}, ${m.processes} proc.`,
            },
            kibPerSession: m.held > 0 ? { value: m.bytesPerSession / 1024 } : { missing: '—' },
          };
          notes.push(idleNote(TARGET_LABELS[id], m, workers));
          await target.stop();
          running.delete(id);
        }).then(() => {
          if (cells[id]?.idleSessions === undefined) {
            const note = notes.find((n) => n.startsWith(`${TARGET_LABELS[id]} idle sessions:`));
            const why = note?.includes('not implemented') ? 'NumThreads not implemented' : 'failed';
            cells[id] = {
              ...cells[id],
              idleSessions: { missing: why },
              kibPerSession: { missing: why },
            };
          }
        });
      }
    }

    for (const id of o.targets) {
      const f = figures.get(id);
      const own: Partial<Record<MetricId, Cell>> = { ...cells[id] };
      if (f === undefined) {
        const why = missing.get(id) ?? 'not run';
        for (const metric of [
          'imapLogins',
          'popLogins',
          'imapFetch',
          'popFetch',
          'noopMedian',
          'noopP99',
        ] as const) {
          own[metric] ??= { missing: why };
        }
      } else {
        for (const [metric, values] of Object.entries(f) as [MetricId, number[]][]) {
          own[metric] = { value: median(values), runs: values };
        }
        if (id === 'mmpHa') {
          own.idleSessions ??= { missing: '—' };
          own.kibPerSession ??= { missing: '—' };
        }
        if (LOGINS_ONLY.includes(id)) {
          for (const metric of [
            'imapFetch',
            'popFetch',
            'noopMedian',
            'noopP99',
            'idleSessions',
            'kibPerSession',
          ] as const)
            own[metric] ??= { missing: 'as mmp N=0' };
        }
        if (running.get(id)?.routesLogins === false || id === 'socat') {
          own.imapLogins ??= { missing: 'no directory' };
          own.popLogins ??= { missing: 'no directory' };
          own.idleSessions ??= { missing: '—' };
          own.kibPerSession ??= { missing: '—' };
        }
        const pm = protocolMissing.get(id) ?? {};
        const byProtocol: Record<Protocol, MetricId[]> = {
          imap: [
            'imapLogins',
            'imapFetch',
            'noopMedian',
            'noopP99',
            'idleSessions',
            'kibPerSession',
          ],
          pop3: ['popLogins', 'popFetch'],
        };
        for (const protocol of ['imap', 'pop3'] as const) {
          const why = pm[protocol];
          if (why === undefined) continue;
          for (const metric of byProtocol[protocol]) own[metric] ??= { missing: why };
        }
      }
      cells[id] = own;
    }
  } finally {
    restorePorts?.();
    restoreBacklog?.();
    for (const [id, r] of running) {
      await r.stop().catch((e: unknown) => log(`stopping ${id}: ${String(e)}`));
    }
    await bed?.stop();
    if (process.env.MMP_BENCH_KEEP === '1') log(`kept ${dir}`);
    else await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
  if (o.throughput) {
    caveats.push(
      `${o.reps} repetition(s), medians shown; login runs ${o.loginSeconds} s with ${o.concurrency} clients, fetch runs ${o.fetchSeconds} s after ${FETCH_WARMUP_MS / 1000} s of unmeasured fetches in the same session, ${o.noopCount} NOOPs per run.`,
    );
  }
  if (o.idle) {
    caveats.push(
      `Idle ramp: aiming for ${o.sessions.toLocaleString('en')} sessions within ${o.idleSeconds} s per target, each restarted with the NumThreads its cell names (mmp N=0 stays one worker); per-session memory is RSS growth of all the proxy's processes (primary and workers) ÷ sessions, read 2 s after the ramp (PSS in the notes)${o.idleSettleSeconds > 0 ? `, and again after the sessions were held ${o.idleSettleSeconds} s without traffic (notes)` : ''}.`,
    );
  }
  caveats.push(
    process.env.MMP_BENCH_LOG_LEVEL === undefined
      ? "mmp runs with an operator's defaults (issue 18): started by root with RunAsUser (nobody), as an installed instance is, so a root primary and its workers (one for N=0), every limit and check on, LogLevel 1 (a record per connection and login) written to a log file, the start scripts' Node flags; only the addresses, directory and stores are set."
      : `mmp runs with LogLevel ${process.env.MMP_BENCH_LOG_LEVEL} (MMP_BENCH_LOG_LEVEL), otherwise an operator's defaults.`,
    'Load generator, proxies, slapd and Dovecot share the same 2 cores: absolute figures are lower than on separate machines; the ratios are the point.',
    `Machine load average (1 / 5 / 15 min) at the start ${loadAtStart}, at the end ${loadAverage()}.`,
  );
  if (o.throughput) {
    caveats.push(
      `CPU from /proc/PID/stat in ticks of 1/${hz} s, sampled when each run's measured window begins and ends; socat relays to one store and has no directory, so it has no login figures.`,
    );
  }
  return {
    date: started.toISOString(),
    machine: await machine(),
    commit: await commit(),
    quick: o.quick,
    pinned: o.pin === undefined ? undefined : describePinning(o.pin),
    caveats,
    targets: o.targets,
    cells,
    cpu,
    notes,
  };
}

/**
 * How long the idle ramp's sessions are held without traffic before memory is read again
 * (--idle-settle). An idle worker gives back what its logins left only once V8's memory reducer
 * has run: the 50,000-session ramp (6 workers, 2026-12-03) read 6.4 KiB per session after 30 s and
 * 4.9 KiB after 120 s, in two ramps each.
 */
export const IDLE_SETTLE_SECONDS = { full: 120, quick: 5 } as const;

export interface IdleMeasure {
  held: number;
  seconds: number;
  stopReason: string;
  baseline: number;
  rss: number;
  bytesPerSession: number;
  pssPerSession: number;
  processes: number;
  errors: string[];
  /** The second reading, after the sessions were held idle for `seconds` (--idle-settle). */
  settled?: { seconds: number; held: number; bytesPerSession: number; pssPerSession: number };
  /** Packets the kernel dropped at the loopback backlog from the ramp's start to its last reading. */
  droppedPackets?: number;
}

/** The notes' line for a target's idle ramp. */
export function idleNote(label: string, m: IdleMeasure, workers: number): string {
  const kib = (bytes: number): string => (bytes / 1024).toFixed(1);
  const settled =
    m.settled === undefined
      ? ''
      : `; after ${m.settled.seconds} s idle ${m.settled.held.toLocaleString('en')} sessions,` +
        ` ${kib(m.settled.bytesPerSession)} KiB RSS and ${kib(m.settled.pssPerSession)} KiB PSS per session`;
  return (
    `${label} idle: ${m.held.toLocaleString('en')} sessions in ${m.seconds.toFixed(0)} s` +
    ` (${m.stopReason}), ${m.processes} proxy process(es)${workers > 0 ? ` (${workers} workers asked)` : ''},` +
    ` RSS ${(m.baseline / 1024 ** 2).toFixed(0)} → ${(m.rss / 1024 ** 2).toFixed(0)} MiB,` +
    ` PSS ${kib(m.pssPerSession)} KiB/session` +
    settled +
    (m.droppedPackets === undefined
      ? ''
      : `; ${m.droppedPackets.toLocaleString('en')} loopback packets dropped (softnet_stat)`) +
    (m.errors.length > 0 ? `; first error: ${m.errors[0]}` : '')
  );
}

async function idleRamp(
  endpoint: Endpoint,
  target: Running,
  accounts: Account[],
  sources: string[],
  o: BenchOptions,
): Promise<IdleMeasure> {
  const log = o.log;
  await new Promise((r) => setTimeout(r, 500));
  const basePids = target.pids('imap');
  const baseline = rssBytes(basePids);
  const basePss = pssBytes(basePids);
  const dropsBefore = softnetDrops();
  const workers = Math.max(1, Math.ceil(o.sessions / SESSIONS_PER_LOAD_WORKER));
  const jobs: IdleJob[] = Array.from({ length: workers }, (_, i) => ({
    kind: 'idle',
    endpoint,
    accounts,
    quota: Math.ceil(o.sessions / workers),
    inFlight: 48,
    localAddresses: sources.filter(
      (_, j) => j % workers === i % sources.length || workers > sources.length,
    ),
    timeoutMs: 20_000,
    maxMs: o.idleSeconds * 1000,
    maxConsecutiveFailures: 200,
  }));
  const availableBefore = memAvailable();
  const fleet = new IdleFleet(jobs);
  const t0 = Date.now();
  let stopReason = 'target reached';
  let lastHeld = 0;
  let lastGrowth = Date.now();
  let lastLog = 0;
  try {
    for (;;) {
      await new Promise((r) => setTimeout(r, 250));
      const held = fleet.held;
      if (held > lastHeld) {
        lastHeld = held;
        lastGrowth = Date.now();
      }
      if (Date.now() - lastLog > 5000) {
        lastLog = Date.now();
        log(`  ${held.toLocaleString('en')} sessions held, ${fleet.failed} failed logins`);
      }
      if (!fleet.opening) {
        if (held < o.sessions) {
          stopReason = Date.now() - t0 >= o.idleSeconds * 1000 ? 'time limit' : 'logins failing';
        }
        break;
      }
      if (Date.now() - t0 > o.idleSeconds * 1000 + 5000) {
        stopReason = 'time limit';
        break;
      }
      if (Date.now() - lastGrowth > 15_000) {
        stopReason = 'stalled';
        break;
      }
      const available = memAvailable();
      if (available < MIN_FREE_MEMORY || availableBefore - available > o.maxMemoryDrop) {
        stopReason = 'memory bound';
        break;
      }
    }
    fleet.stopOpening();
    // let in-flight logins land and memory settle
    await new Promise((r) => setTimeout(r, 2000));
    const held = fleet.held;
    const pids = target.pids('imap');
    const rss = rssBytes(pids);
    const pss = pssBytes(pids);
    log(
      `  held ${held.toLocaleString('en')} (${stopReason}); proxy RSS ${(rss / 1024 ** 2).toFixed(0)} MiB in ${pids.length} process(es)`,
    );
    const measure: IdleMeasure = {
      held,
      seconds: (Date.now() - t0) / 1000,
      stopReason,
      baseline,
      rss,
      bytesPerSession: held > 0 ? (rss - baseline) / held : Number.NaN,
      pssPerSession: held > 0 ? (pss - basePss) / held : Number.NaN,
      processes: pids.length,
      errors: fleet.sampleErrors,
    };
    if (o.idleSettleSeconds > 0 && held > 0) {
      await new Promise((r) => setTimeout(r, o.idleSettleSeconds * 1000));
      const still = fleet.held;
      const now = target.pids('imap');
      const rssThen = rssBytes(now);
      measure.settled = {
        seconds: o.idleSettleSeconds,
        held: still,
        bytesPerSession: still > 0 ? (rssThen - baseline) / still : Number.NaN,
        pssPerSession: still > 0 ? (pssBytes(now) - basePss) / still : Number.NaN,
      };
      log(
        `  after ${o.idleSettleSeconds} s idle: held ${still.toLocaleString('en')}; proxy RSS ${(rssThen / 1024 ** 2).toFixed(0)} MiB`,
      );
    }
    const dropsAfter = softnetDrops();
    if (dropsBefore !== undefined && dropsAfter !== undefined)
      measure.droppedPackets = dropsAfter - dropsBefore;
    return measure;
  } finally {
    await fleet.release();
  }
}
