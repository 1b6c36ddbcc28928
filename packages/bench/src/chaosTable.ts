// The `--chaos` report (issue 14): per fault, the failed logins by what the client saw, the
// sessions lost that were not on the faulty part (goal 0) and those that were, and the time to
// full service after the fault ended. Pure functions (unit-tested).
import type { Attempt, LongSession } from './load/steady.js';
import type { LoginOutcome } from './load/outcome.js';
import { formatNumber, markdownTable } from './table.js';

export const FAULT_KINDS = ['slapd', 'store', 'worker'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export const FAULT_LABELS: Record<FaultKind, string> = {
  slapd: 'slapd killed, restarted',
  store: 'store A SIGSTOPped',
  worker: 'a proxy worker SIGKILLed',
};

/**
 * The time from the end of a fault to full service: to the start of the last login attempt that
 * failed (an attempt that started then would still have failed; every one started later
 * succeeded), 0 when none that failed started after the fault ended, provided one started later
 * and succeeded. Starts, not ends: an attempt caught by the fault may take its whole time limit
 * to fail while the service is whole again beside it.
 */
export function timeToFullService(
  attempts: readonly Attempt[],
  faultEnd: number,
): { ms: number } | { notRecovered: true } {
  let lastFailure: number | undefined;
  for (const [start, , outcome] of attempts) {
    if (outcome !== 'ok' && (lastFailure === undefined || start > lastFailure)) lastFailure = start;
  }
  if (lastFailure === undefined || lastFailure < faultEnd) return { ms: 0 };
  const after = lastFailure;
  if (!attempts.some(([start, , outcome]) => outcome === 'ok' && start > after)) {
    return { notRecovered: true };
  }
  return { ms: after - faultEnd };
}

/**
 * `ss -tnpH state established` lines → the proxy process holding each client connection of the
 * listener on `listenPort`, keyed by the client's `address:port`.
 */
export function sessionOwners(ssOutput: string, listenPort: number): Map<string, number> {
  const owners = new Map<string, number>();
  for (const line of ssOutput.split('\n')) {
    const fields = line.trim().split(/\s+/);
    // Recv-Q Send-Q Local:Port Peer:Port Process  (no State column with a state filter)
    const local = fields.find((f) => /:\d+$/.test(f));
    if (local === undefined) continue;
    const i = fields.indexOf(local);
    const peer = fields[i + 1];
    const pid = /pid=(\d+)/.exec(line)?.[1];
    if (peer === undefined || pid === undefined) continue;
    if (!local.endsWith(`:${listenPort}`)) continue;
    owners.set(peer.replace(/^\[::ffff:(.*)\]/, '$1'), Number(pid));
  }
  return owners;
}

export interface FaultResult {
  fault: FaultKind;
  /** ms the fault lasted (0 for an instant one such as a SIGKILL) */
  durationMs: number;
  attempts: number;
  ok: number;
  failedBy: Partial<Record<LoginOutcome, number>>;
  /** failed logins of users whose store was not the faulty one (store faults only: a login
   * needs the directory, and which worker would have taken it is unknown) */
  failedHealthy: number | undefined;
  /** cycles whose session broke after the login */
  droppedCycles: number;
  longSessions: number;
  lostHealthy: number;
  lostFaulty: number;
  recovery: { ms: number } | { notRecovered: true };
  /** failed attempts that started after the fault had ended, and when the last one started */
  failedAfterEnd: number;
  lastFailureAfterEndMs: number | undefined;
  notes: string[];
}

export interface FaultInput {
  fault: FaultKind;
  faultStart: number;
  faultEnd: number;
  attempts: readonly Attempt[];
  longSessions: readonly LongSession[];
  /** is this attempt's store the faulty one (store faults) */
  faultyStore?: string;
  /** is this session on the faulty part (its store, its worker) */
  onFaultyPart: (s: LongSession) => boolean;
  notes: string[];
}

export function faultResult(i: FaultInput): FaultResult {
  const failedBy: Partial<Record<LoginOutcome, number>> = {};
  let ok = 0;
  let dropped = 0;
  let failedHealthy: number | undefined = i.faultyStore === undefined ? undefined : 0;
  let failedAfterEnd = 0;
  let lastFailureAfterEndMs: number | undefined;
  for (const [start, , outcome, store] of i.attempts) {
    if (outcome !== 'ok' && start >= i.faultEnd) {
      failedAfterEnd++;
      lastFailureAfterEndMs = Math.max(lastFailureAfterEndMs ?? 0, start - i.faultEnd);
    }
    if (outcome === 'ok') ok++;
    else if (outcome === 'dropped') dropped++;
    else {
      failedBy[outcome] = (failedBy[outcome] ?? 0) + 1;
      if (failedHealthy !== undefined && store !== i.faultyStore) failedHealthy++;
    }
  }
  const logged = i.longSessions.filter((s) => s.loggedIn);
  const lost = logged.filter((s) => s.lostAt !== undefined);
  const lostFaulty = lost.filter(i.onFaultyPart).length;
  return {
    fault: i.fault,
    durationMs: i.faultEnd - i.faultStart,
    attempts: i.attempts.length,
    ok,
    failedBy,
    failedHealthy,
    droppedCycles: dropped,
    longSessions: logged.length,
    lostHealthy: lost.length - lostFaulty,
    lostFaulty,
    recovery: timeToFullService(i.attempts, i.faultEnd),
    failedAfterEnd,
    lastFailureAfterEndMs,
    notes: i.notes,
  };
}

const CONNECTION_ERRORS: readonly LoginOutcome[] = ['refused', 'closed', 'timeout'];

export function failedText(r: FaultResult): string {
  const temporary = r.failedBy.temporary ?? 0;
  const auth = r.failedBy.auth ?? 0;
  const conn = CONNECTION_ERRORS.reduce((s, k) => s + (r.failedBy[k] ?? 0), 0);
  const detail = CONNECTION_ERRORS.filter((k) => (r.failedBy[k] ?? 0) > 0)
    .map((k) => `${formatNumber(r.failedBy[k] ?? 0, 0)} ${k}`)
    .join(', ');
  const n = (x: number): string => formatNumber(x, 0);
  return `${n(temporary)} / ${n(auth)} / ${n(conn)}${detail === '' ? '' : ` (${detail})`}`;
}

export interface ChaosReport {
  date: string;
  machine: string;
  commit: string;
  /** the machine's load average (1 / 5 / 15 min) at the start and the end */
  load: string;
  target: string;
  threads: number;
  preSeconds: number;
  postSeconds: number;
  concurrency: number;
  longSessions: number;
  faults: FaultResult[];
}

export function chaosTable(r: ChaosReport): string {
  const header = [
    'fault',
    'lasted',
    'logins ok / tried',
    'failed: temporary / auth / connection',
    'of which on the healthy store',
    'cycles dropped after login',
    'sessions lost, healthy part (goal 0)',
    'lost, faulty part',
    'time to full service',
  ];
  const rows = r.faults.map((f) => [
    FAULT_LABELS[f.fault],
    f.durationMs === 0 ? 'instant' : `${(f.durationMs / 1000).toFixed(1)} s`,
    `${formatNumber(f.ok, 0)} / ${formatNumber(f.attempts, 0)}`,
    failedText(f),
    f.failedHealthy === undefined ? '—' : `${formatNumber(f.failedHealthy, 0)}`,
    formatNumber(f.droppedCycles, 0),
    `${f.lostHealthy} of ${f.longSessions}${f.lostHealthy === 0 ? ' met' : ' missed'}`,
    String(f.lostFaulty),
    'notRecovered' in f.recovery ? 'not recovered' : `${(f.recovery.ms / 1000).toFixed(1)} s`,
  ]);
  return markdownTable(header, rows);
}

export function formatChaosReport(r: ChaosReport): string {
  return [
    `### Chaos benchmark ${r.date.slice(0, 10)}: ${r.target}, NumThreads ${r.threads}`,
    '',
    `Machine: ${r.machine}. Run at ${r.date}, commit ${r.commit}. Load average ${r.load}.`,
    '',
    `Each fault gets a fresh proxy and a steady load: ${r.concurrency} loops of connect, LOGIN, EXAMINE, FETCH, LOGOUT over every bulk user of both stores, and ${r.longSessions} long sessions (half on each store) sending NOOP every second; the fault comes after ${r.preSeconds} s, the load goes on ${r.postSeconds} s after it ends. "Healthy part": users of the other store (store fault), sessions in the other workers (worker fault), every session (slapd: logged-in sessions do not need the directory). Time to full service: from the end of the fault to the start of the last login attempt that failed (0: none that started after the fault ended failed).`,
    '',
    chaosTable(r),
    '',
    ...r.faults.flatMap((f) => [
      ...f.notes.map((n) => `- ${FAULT_LABELS[f.fault]}: ${n}`),
      ...(f.lastFailureAfterEndMs === undefined
        ? []
        : [
            `- ${FAULT_LABELS[f.fault]}: ${formatNumber(f.failedAfterEnd, 0)} failed logins started after the fault ended, the last ${(f.lastFailureAfterEndMs / 1000).toFixed(1)} s after it`,
          ]),
    ]),
    '',
  ].join('\n');
}
