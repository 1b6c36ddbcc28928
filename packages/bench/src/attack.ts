// `--attack` (issue 13, "How it is shown"): one proxy on the test bed, legitimate clients logging
// in and fetching (from 127.0.8.x) while attackers run (from 127.0.7.x): first without attackers,
// then each attacker kind alone, then all together. Each phase starts a fresh proxy, so that one
// phase's damage (memory, a crash) is not carried into the next. The proxy's RSS is sampled every
// 250 ms. The parameters live in attackParams.ts.
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Testbed } from '@mmp/testbed';
import { ATTACKS, type AttackKind, LEGIT, legitJob } from './attackParams.js';
import {
  type AttackPhase,
  type AttackReport,
  type LegitFigures,
  type PhaseCpu,
  legitFigures,
} from './attackTable.js';
import { startBenchBed } from './bedSetup.js';
import { commit, loadAverage, machine } from './machine.js';
import type { AttackJob, AttackSummary } from './load/hostile.js';
import type { AnyJob, AnyResult } from './load/jobs.js';
import { runJobs } from './load/pool.js';
import type { Account, Endpoint } from './load/scenarios.js';
import type { SteadyResult } from './load/steady.js';
import { type Backend, type Running, startMmp, startNginx } from './peers/targets.js';
import { rssBytes } from './procs.js';
import {
  type CpuGroups,
  type CpuSample,
  clockTicksPerSecond,
  cpuBetween,
  sampleCpu,
} from './cpu.js';
import { defined, dovecotGroup, slapdGroup } from './bedProcs.js';
import { type Pinning, describePinning, pinGroups, pinTarget } from './pin.js';
import { TARGET_LABELS, type TargetId } from './table.js';

export type AttackTarget = Extract<TargetId, 'mmp0' | 'mmp2' | 'nginx'>;
export const ATTACK_TARGETS: readonly AttackTarget[] = ['mmp0', 'mmp2', 'nginx'];

export interface AttackOptions {
  target: AttackTarget;
  /** seconds the legitimate clients are measured per phase */
  phaseSeconds: number;
  /** seconds the attackers run before the legitimate clients start (ramp-up) */
  leadSeconds: number;
  kinds: readonly AttackKind[];
  /**
   * --pin: the load processes (legitimate clients and attackers) on `load`, the server side on
   * the others, so that the ratio is what the attackers cost the server's fixed CPU budget, not
   * what the attackers' own processes take from it on a shared box.
   */
  pin?: Pinning;
  log: (line: string) => void;
}

/**
 * The attackers' load processes run at this nice value. Attackers come from other machines: their
 * CPU is not the proxy's. On the benchmark's one box, at the default priority, the five attacker
 * processes took their share of two cores from the proxy, Dovecot and the legitimate clients alike
 * (all together: the legitimate clients' process fell from 15 % to 7 % of a core, Dovecot from 45 %
 * to 9 %), which measured the scheduler. Niced, they get the CPU the others leave; the proxy's own
 * work for them still counts in full.
 */
export const ATTACKER_NICE = 19;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The attacker jobs of one kind (slowloris spread over processes: 20,000 descriptors each). */
export function attackJobs(
  kind: AttackKind,
  endpoint: { host: string; port: number },
  durationMs: number,
  user: string,
): AttackJob[] {
  const base = {
    kind: 'attack' as const,
    attack: kind,
    ...endpoint,
    durationMs,
    params: ATTACKS,
    user,
  };
  if (kind !== 'slowloris') return [base];
  const { connections, perProcess } = ATTACKS.slowloris;
  const processes = Math.max(1, Math.ceil(connections / perProcess));
  return Array.from({ length: processes }, (_, i) => ({
    ...base,
    connections: Math.min(perProcess, connections - i * perProcess),
  }));
}

/** Several load processes' summaries of one attacker kind as one. */
export function mergeSummaries(parts: readonly AttackSummary[]): AttackSummary | undefined {
  const [first, ...rest] = parts;
  if (first === undefined) return undefined;
  const m: AttackSummary = {
    ...first,
    closedAfterMs: [...first.closedAfterMs],
    answerDelayMs: [...first.answerDelayMs],
    greetingDelayMs: [...first.greetingDelayMs],
    answers: [...first.answers],
    errors: [...first.errors],
  };
  for (const s of rest) {
    m.connections += s.connections;
    m.refusedAtConnect += s.refusedAtConnect;
    m.pendingAtConnect += s.pendingAtConnect;
    m.greetingDelayMs.push(...s.greetingDelayMs);
    m.notGreeted += s.notGreeted;
    m.cpuMicros += s.cpuMicros;
    m.elapsedMs = Math.max(m.elapsedMs, s.elapsedMs);
    m.greetingRefused += s.greetingRefused;
    m.closedByServer += s.closedByServer;
    m.closedAfterMs.push(...s.closedAfterMs);
    m.stillOpen += s.stillOpen;
    m.stalled += s.stalled;
    m.answerDelayMs.push(...s.answerDelayMs);
    m.unanswered += s.unanswered;
    m.bytesSent += s.bytesSent;
    m.bytesReceived += s.bytesReceived;
    m.reflected += s.reflected;
    for (const a of s.answers)
      if (m.answers.length < 4 && !m.answers.includes(a)) m.answers.push(a);
    for (const e of s.errors) if (m.errors.length < 3 && !m.errors.includes(e)) m.errors.push(e);
  }
  return m;
}

async function startTarget(id: AttackTarget, dir: string, b: Backend): Promise<Running> {
  await mkdir(dir, { recursive: true });
  await chmod(dir, 0o777);
  switch (id) {
    case 'mmp0':
      return startMmp(dir, b, 0);
    case 'mmp2':
      return startMmp(dir, b, 2);
    case 'nginx':
      return startNginx(dir, b, 2, undefined);
  }
}

/**
 * The phases in the order they run: each attacker phase between two phases without attackers,
 * its baselines. On a machine shared with other work the rate the box allows drifts by a factor of
 * two within minutes; a baseline taken once at the start compared later phases with another
 * machine, not with the attack's absence. Even on a quiet machine back-to-back baselines differ
 * by ±10 %, and the drift has a direction (the stores' caches and files grow): one baseline on
 * each side cancels a steady drift, which one before cannot.
 */
export function attackPhaseOrder(kinds: readonly AttackKind[]): AttackPhase['phase'][] {
  const attacked: AttackPhase['phase'][] = [
    ...kinds,
    ...(kinds.length > 1 ? ['all' as const] : []),
  ];
  return [...attacked.flatMap((k) => ['none' as const, k]), 'none'];
}

/** Microseconds per part over `ms` as % of one core. */
function windowPercents(micros: CpuSample, ms: number): PhaseCpu {
  const pct = (m: number | undefined): number | undefined =>
    m === undefined || ms <= 0 ? undefined : (m / 1000 / ms) * 100;
  const out: PhaseCpu = {};
  const proxy = pct(micros.proxy);
  const slapd = pct(micros.directory);
  const dovecot = pct(micros.stores);
  if (proxy !== undefined) out.proxy = proxy;
  if (slapd !== undefined) out.slapd = slapd;
  if (dovecot !== undefined) out.dovecot = dovecot;
  return out;
}

export async function runAttackBench(o: AttackOptions): Promise<AttackReport> {
  const log = o.log;
  const started = new Date();
  const loadAtStart = loadAverage();
  const dir = await mkdtemp(join(tmpdir(), 'mmp-attack-'));
  await chmod(dir, 0o755);
  let bed: Testbed | undefined;
  let current: Running | undefined;
  const phases: AttackPhase[] = [];
  try {
    log('starting the test bed (slapd, two Dovecot stores)…');
    const bb = await startBenchBed(200);
    bed = bb.bed;
    const ldapConfig = bb.bed.ldap.configFile;
    const storeConfigs = bb.bed.stores.map((s) => s.configFile);
    const accounts = bb.accounts;
    const victim = accounts[0] as Account;
    const longAccounts = Array.from(
      { length: LEGIT.longSessions },
      (_, i) => accounts[(i * 7 + 1) % accounts.length] as Account,
    );
    const place = (r: Running): void => {
      if (o.pin !== undefined) pinTarget(r.groups, o.pin);
    };
    if (o.pin !== undefined) {
      pinGroups(defined(storeConfigs.map(dovecotGroup)), o.pin.stores);
      pinGroups(defined([slapdGroup(ldapConfig)]), o.pin.aux);
      log(`pinned: ${describePinning(o.pin)} (the attackers with the load generator)`);
    }
    const phaseNames = attackPhaseOrder(o.kinds);
    // The first phase (no attackers, the baseline) would otherwise meet a cold test bed: Dovecot's
    // processes and caches, slapd's, filled by whichever phase comes first.
    log('warm-up: legitimate clients only, not measured');
    current = await startTarget(o.target, join(dir, 'warm-up'), bb.backend);
    place(current);
    const warm = current.endpoints.imap;
    if (warm !== undefined) {
      const warmUp = legitJob({ protocol: 'imap', ...warm }, accounts, {
        durationMs: o.leadSeconds * 1000,
      });
      await runJobs<AnyResult>([warmUp], o.leadSeconds * 1000 + LEGIT.timeoutMs + 60_000, {
        cpus: o.pin?.load,
      });
    }
    await current.stop();
    current = undefined;
    for (const phase of phaseNames) {
      log(`phase: ${phase === 'none' ? 'no attackers' : phase}`);
      current = await startTarget(o.target, join(dir, `${phases.length}-${phase}`), bb.backend);
      place(current);
      const e = current.endpoints.imap;
      if (e === undefined)
        throw new Error(`${TARGET_LABELS[o.target]}: ${current.missing.imap ?? 'no IMAP'}`);
      const endpoint: Endpoint = { protocol: 'imap', ...e };
      await sleep(500);
      const target = current;
      const pidsBefore = new Set(current.pids('imap'));
      const groups: CpuGroups = {
        proxy: () => target.groups.proxy(),
        directory: () => defined([slapdGroup(ldapConfig)]),
        stores: () => defined(storeConfigs.map(dovecotGroup)),
      };
      const cpuBefore = sampleCpu({ proxy: groups.proxy });
      const cpuT0 = Date.now();
      const rssStart = rssBytes([...pidsBefore]);
      let rssPeak = rssStart;
      const sampler = setInterval(() => {
        rssPeak = Math.max(rssPeak, rssBytes(target.pids('imap')));
      }, 250);
      const leadMs = o.leadSeconds * 1000;
      const phaseMs = o.phaseSeconds * 1000;
      const kinds = phase === 'none' ? [] : phase === 'all' ? o.kinds : [phase];
      const legit = legitJob(endpoint, accounts, {
        delayMs: kinds.length === 0 ? 0 : leadMs,
        durationMs: phaseMs,
        longAccounts,
      });
      const attackers = kinds.flatMap((k) =>
        attackJobs(k, e, leadMs + phaseMs + 1000, victim.user),
      );
      const jobs: AnyJob[] = [legit, ...attackers];
      // every part's CPU over the legitimate clients' window (from their start, after the lead)
      let windowStart: { at: number; cpu: CpuSample } | undefined;
      let windowEnd: { at: number; cpu: CpuSample } | undefined;
      const windowTimers = [
        setTimeout(() => (windowStart = { at: Date.now(), cpu: sampleCpu(groups) }), legit.delayMs),
        setTimeout(
          () => (windowEnd = { at: Date.now(), cpu: sampleCpu(groups) }),
          legit.delayMs + phaseMs,
        ),
      ];
      let results: AnyResult[];
      try {
        results = await runJobs<AnyResult>(jobs, leadMs + phaseMs + LEGIT.timeoutMs + 60_000, {
          cpus: o.pin?.load,
          niceOf: (job) => (job.kind === 'attack' ? ATTACKER_NICE : undefined),
        });
      } finally {
        clearInterval(sampler);
        for (const timer of windowTimers) clearTimeout(timer);
      }
      const spent = cpuBetween(
        cpuBefore,
        sampleCpu({ proxy: groups.proxy }),
        clockTicksPerSecond(),
      ).proxy;
      const proxyCpuPercent =
        spent === undefined ? undefined : (spent / 1000 / (Date.now() - cpuT0)) * 100;
      const rssEnd = rssBytes(current.pids('imap'));
      const pidsAfter = current.pids('imap');
      const gone = [...pidsBefore].filter((p) => !pidsAfter.includes(p)).length;
      const steady = results[0] as SteadyResult;
      const figures: LegitFigures = legitFigures(steady, phaseMs / 1000);
      const byKind = new Map<AttackKind, AttackSummary[]>();
      for (const r of results.slice(1) as AttackSummary[]) {
        byKind.set(r.attack, [...(byKind.get(r.attack) ?? []), r]);
      }
      const attackerSummaries = kinds
        .map((k) => mergeSummaries(byKind.get(k) ?? []))
        .filter((s): s is AttackSummary => s !== undefined);
      const windowCpu =
        windowStart === undefined || windowEnd === undefined
          ? undefined
          : windowPercents(
              cpuBetween(windowStart.cpu, windowEnd.cpu, clockTicksPerSecond()),
              windowEnd.at - windowStart.at,
            );
      const attackerMicros = attackerSummaries.reduce((sum, a) => sum + a.cpuMicros, 0);
      const attackerMs = Math.max(0, ...attackerSummaries.map((a) => a.elapsedMs));
      phases.push({
        phase,
        legit: figures,
        rssStartMiB: rssStart / 1024 ** 2,
        rssPeakMiB: rssPeak / 1024 ** 2,
        rssEndMiB: rssEnd / 1024 ** 2,
        proxyCpuPercent,
        cpu: {
          ...windowCpu,
          legit: (steady.cpuMicros / 1000 / Math.max(1, steady.ended - steady.started)) * 100,
          ...(attackerSummaries.length > 0 && attackerMs > 0
            ? { attackers: (attackerMicros / 1000 / attackerMs) * 100 }
            : {}),
        },
        proxyProcessesGone: pidsAfter.length === 0 ? 'all' : gone,
        attackers: attackerSummaries,
        sampleErrors: steady.sampleErrors.slice(0, 3),
      });
      log(
        `  legit ${figures.loginsPerSecond.toFixed(1)} logins/s, ${figures.failed} failed, ${figures.dropped} dropped; RSS peak ${(rssPeak / 1024 ** 2).toFixed(0)} MiB`,
      );
      await current.stop();
      current = undefined;
    }
  } finally {
    await current?.stop().catch(() => undefined);
    await bed?.stop();
    if (process.env.MMP_BENCH_KEEP === '1') log(`kept ${dir}`);
    else await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
  return {
    date: started.toISOString(),
    machine: await machine(),
    commit: await commit(),
    load: `${loadAtStart} at the start, ${loadAverage()} at the end`,
    target: TARGET_LABELS[o.target],
    ...(o.pin === undefined ? {} : { pinned: describePinning(o.pin) }),
    phaseSeconds: o.phaseSeconds,
    leadSeconds: o.leadSeconds,
    params: ATTACKS,
    legitParams: LEGIT,
    phases,
  };
}
