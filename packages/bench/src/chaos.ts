// `--chaos` (issue 14, "How it is shown"): a steady login+fetch load with long sessions on both
// stores while, in turn, slapd is killed and restarted, store A is SIGSTOPped then SIGCONTed, and
// one of the proxy's workers is SIGKILLed. slapd and the store are faulted through the test bed's
// own controls (kill / start, pause / resume: signals to their process groups); the worker by a
// signal to its pid; which worker holds which session is read from `ss` at the moment of the kill.
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Testbed } from '@mmp/testbed';
import { LEGIT, legitJob } from './attackParams.js';
import { startBenchBed } from './bedSetup.js';
import {
  type ChaosReport,
  FAULT_LABELS,
  type FaultKind,
  type FaultResult,
  faultResult,
  sessionOwners,
} from './chaosTable.js';
import { groupMembers, readAllStats } from './cpu.js';
import { commit, loadAverage, machine } from './machine.js';
import { runJobs } from './load/pool.js';
import type { Account } from './load/scenarios.js';
import type { LongSession, SteadyResult } from './load/steady.js';
import { type Running, startMmp } from './peers/targets.js';

export interface ChaosOptions {
  /** NumThreads of the proxy (≥ 1 for the worker fault) */
  threads: number;
  faults: readonly FaultKind[];
  /** steady load before the fault */
  preSeconds: number;
  /** steady load after the fault ended */
  postSeconds: number;
  /** how long slapd stays dead */
  slapdDownSeconds: number;
  /** how long store A stays stopped */
  storeStopSeconds: number;
  concurrency: number;
  longSessions: number;
  log: (line: string) => void;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The proxy's worker processes: members of its group other than the leader (the primary). */
function workersOf(primary: number): number[] {
  return groupMembers(readAllStats(), [primary])
    .filter((s) => s.pid !== primary && s.state !== 'Z')
    .map((s) => s.pid);
}

export async function runChaosBench(o: ChaosOptions): Promise<ChaosReport> {
  const log = o.log;
  const started = new Date();
  const loadAtStart = loadAverage();
  const dir = await mkdtemp(join(tmpdir(), 'mmp-chaos-'));
  await chmod(dir, 0o755);
  let bed: Testbed | undefined;
  let current: Running | undefined;
  const faults: FaultResult[] = [];
  try {
    log('starting the test bed (slapd, two Dovecot stores)…');
    const bb = await startBenchBed(200);
    bed = bb.bed;
    const storeA = bed.store('A');
    const accounts = bb.accounts;
    const onA = accounts.filter((a) => a.host === storeA.host);
    const notA = accounts.filter((a) => a.host !== storeA.host);
    const longAccounts: Account[] = Array.from({ length: o.longSessions }, (_, i) => {
      const pool = i % 2 === 0 ? onA : notA;
      return pool[(i >> 1) % pool.length] as Account;
    });
    for (const fault of o.faults) {
      log(`fault: ${FAULT_LABELS[fault]}`);
      const sub = join(dir, fault);
      await mkdir(sub, { recursive: true });
      await chmod(sub, 0o777);
      current = await startMmp(sub, bb.backend, o.threads);
      const e = current.endpoints.imap;
      if (e === undefined) throw new Error(`mmp: ${current.missing.imap ?? 'no IMAP'}`);
      const primary = current.groups.proxy().find((pid) => current?.pids('imap').includes(pid));
      if (primary === undefined) throw new Error('mmp: no IMAP process');
      if (fault === 'worker' && workersOf(primary).length === 0) {
        throw new Error('the worker fault needs NumThreads ≥ 1 (--chaos-threads)');
      }
      const faultMs =
        fault === 'slapd'
          ? o.slapdDownSeconds * 1000
          : fault === 'store'
            ? o.storeStopSeconds * 1000
            : 0;
      const job = legitJob({ protocol: 'imap', ...e }, accounts, {
        concurrency: o.concurrency,
        durationMs: (o.preSeconds + o.postSeconds) * 1000 + faultMs + 3000,
        longAccounts,
      });
      const running = runJobs<SteadyResult>([job], job.durationMs + LEGIT.timeoutMs + 60_000);
      // a rejection is awaited below; keep it from counting as unhandled meanwhile
      running.catch(() => undefined);
      await sleep(o.preSeconds * 1000);
      const notes: string[] = [];
      let faultStart = Date.now();
      let faultEnd = faultStart;
      let onFaultyPart: (s: LongSession) => boolean = () => false;
      let faultyStore: string | undefined;
      if (fault === 'slapd') {
        faultStart = Date.now();
        await bed.ldap.kill();
        await sleep(Math.max(0, faultStart + faultMs - Date.now()));
        await bed.ldap.start();
        faultEnd = Date.now();
        notes.push(
          `slapd SIGKILLed, started again after ${o.slapdDownSeconds} s (up ${((faultEnd - faultStart) / 1000).toFixed(1)} s after the kill)`,
        );
      } else if (fault === 'store') {
        faultStart = Date.now();
        storeA.pause();
        try {
          await sleep(faultMs);
        } finally {
          storeA.resume();
        }
        faultEnd = Date.now();
        faultyStore = storeA.host;
        onFaultyPart = (s) => s.store === storeA.host;
        notes.push(
          `every Dovecot process of store A (${storeA.host}) stopped for ${o.storeStopSeconds} s`,
        );
      } else {
        const workers = workersOf(primary);
        const owners = sessionOwners(
          execFileSync('ss', ['-tnpH', 'state', 'established'], { encoding: 'utf8' }),
          e.port,
        );
        const victim = workers[0] as number;
        faultStart = Date.now();
        process.kill(victim, 'SIGKILL');
        faultEnd = faultStart;
        onFaultyPart = (s) => owners.get(s.local) === victim;
        let replaced: number | undefined;
        for (let i = 0; i < 400; i++) {
          const now = workersOf(primary).filter((p) => p !== victim);
          if (now.length >= workers.length) {
            replaced = Date.now() - faultStart;
            break;
          }
          await sleep(25);
        }
        const held = [...owners.values()];
        notes.push(
          `worker ${victim} of ${workers.length} killed, holding ${held.filter((p) => p === victim).length} of ${held.length} client connections; ` +
            (replaced === undefined
              ? 'not replaced within 10 s'
              : `replaced after ${(replaced / 1000).toFixed(1)} s`),
        );
      }
      const [result] = await running;
      if (result === undefined) throw new Error('no result from the load');
      if (result.sampleErrors.length > 0)
        notes.push(`first errors: ${result.sampleErrors.slice(0, 3).join(' | ')}`);
      const r = faultResult({
        fault,
        faultStart,
        faultEnd,
        attempts: result.attempts,
        longSessions: result.longSessions,
        faultyStore,
        onFaultyPart,
        notes,
      });
      faults.push(r);
      log(
        `  ${r.ok}/${r.attempts} logins ok, lost healthy ${r.lostHealthy}, faulty ${r.lostFaulty}, ` +
          ('notRecovered' in r.recovery
            ? 'not recovered'
            : `full service after ${(r.recovery.ms / 1000).toFixed(1)} s`),
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
    target: 'mmp',
    threads: o.threads,
    preSeconds: o.preSeconds,
    postSeconds: o.postSeconds,
    concurrency: o.concurrency,
    longSessions: o.longSessions,
    faults,
  };
}
