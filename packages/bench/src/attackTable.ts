// The `--attack` report: per phase the legitimate clients' logins/s against the phase without
// attackers (goal ≥ 0.9×), their sessions dropped (goal 0), the proxy's RSS, and what happened to
// each attacker. Pure functions (unit-tested).
import {
  ATTACK_LABELS,
  type AttackKind,
  type AttackParams,
  type LegitParams,
} from './attackParams.js';
import type { AttackSummary } from './load/hostile.js';
import type { LoginOutcome } from './load/outcome.js';
import type { SteadyResult } from './load/steady.js';
import { median, percentile } from './stats.js';
import { formatNumber, markdownTable } from './table.js';

export interface LegitFigures {
  /** logins that succeeded (whole cycles, and cycles whose session broke after the login) */
  logins: number;
  loginsPerSecond: number;
  /** login attempts that failed, by what the client saw */
  failed: number;
  failedBy: Partial<Record<LoginOutcome, number>>;
  /** sessions lost after their login: cycles broken before LOGOUT, long sessions lost */
  dropped: number;
  longSessions: number;
  longLost: number;
  /** long sessions that could not log in at all */
  longNotLoggedIn: number;
  /** whole cycles (connect … LOGOUT) that succeeded: median and 90th percentile (ms) */
  cycleMsMedian: number;
  cycleMsP90: number;
}

export function legitFigures(r: SteadyResult, seconds: number): LegitFigures {
  const failedBy: Partial<Record<LoginOutcome, number>> = {};
  let logins = 0;
  let failed = 0;
  let droppedCycles = 0;
  for (const [, , outcome] of r.attempts) {
    if (outcome === 'ok' || outcome === 'dropped') logins++;
    if (outcome === 'dropped') droppedCycles++;
    else if (outcome !== 'ok') {
      failed++;
      failedBy[outcome] = (failedBy[outcome] ?? 0) + 1;
    }
  }
  const cycles = r.attempts.filter(([, , o]) => o === 'ok').map(([start, end]) => end - start);
  const loggedIn = r.longSessions.filter((s) => s.loggedIn);
  const longLost = loggedIn.filter((s) => s.lostAt !== undefined).length;
  return {
    logins,
    loginsPerSecond: seconds > 0 ? logins / seconds : 0,
    failed,
    failedBy,
    dropped: droppedCycles + longLost,
    longSessions: r.longSessions.length,
    longLost,
    longNotLoggedIn: r.longSessions.length - loggedIn.length,
    cycleMsMedian: median(cycles),
    cycleMsP90: percentile(cycles, 90),
  };
}

/**
 * CPU by part, % of one core: the proxy, slapd and Dovecot over the legitimate clients' window
 * (from /proc), the legitimate clients' load process over its run, the attackers' over theirs.
 */
export interface PhaseCpu {
  proxy?: number;
  slapd?: number;
  dovecot?: number;
  legit?: number;
  attackers?: number;
}

export interface AttackPhase {
  phase: 'none' | AttackKind | 'all';
  legit: LegitFigures;
  rssStartMiB: number;
  rssPeakMiB: number;
  rssEndMiB: number;
  /** the proxy's CPU over the phase, % of one core */
  proxyCpuPercent: number | undefined;
  /** each part's CPU while the legitimate clients ran, % of one core */
  cpu: PhaseCpu;
  /** proxy processes that were gone at the end of the phase ('all': the proxy died) */
  proxyProcessesGone: number | 'all';
  attackers: AttackSummary[];
  sampleErrors: string[];
}

export interface AttackReport {
  date: string;
  machine: string;
  commit: string;
  /** the machine's load average (1 / 5 / 15 min) at the start and the end */
  load: string;
  target: string;
  /** how the processes were placed on cores (--pin), undefined when not pinned */
  pinned?: string;
  phaseSeconds: number;
  leadSeconds: number;
  params: AttackParams;
  legitParams: LegitParams;
  phases: AttackPhase[];
}

const seconds = (ms: number): string =>
  `${(ms / 1000).toFixed(ms < 1000 ? 2 : ms < 10_000 ? 1 : 0)} s`;

/** `median N s (max M s)` of durations, or '' for none. */
export function timeSpread(ms: readonly number[]): string {
  if (ms.length === 0) return '';
  const m = median(ms);
  const max = Math.max(...ms);
  return ms.length === 1 || max - m < 50
    ? seconds(m)
    : `${seconds(m)} (median; max ${seconds(max)})`;
}

const mib = (bytes: number): string =>
  bytes >= 1024 * 1024
    ? `${formatNumber(bytes / 1024 ** 2, 1)} MiB`
    : `${formatNumber(bytes / 1024, 0)} KiB`;

/** One attacker's outcome in words: refused at connect / greeting refused / delayed / closed / open. */
export function describeOutcome(s: AttackSummary): string {
  const parts: string[] = [`${formatNumber(s.connections, 0)} connections`];
  if (s.refusedAtConnect > 0) {
    parts.push(
      `${formatNumber(s.refusedAtConnect, 0)} refused at connect (${s.errors.join(', ')})`,
    );
  }
  if (s.pendingAtConnect > 0) {
    parts.push(`${formatNumber(s.pendingAtConnect, 0)} not yet accepted at the end`);
  }
  if (s.greetingDelayMs.length > 0 && Math.max(...s.greetingDelayMs) >= 1000) {
    parts.push(`greeting delayed by ${timeSpread(s.greetingDelayMs)}`);
  }
  if (s.notGreeted > 0) parts.push(`${formatNumber(s.notGreeted, 0)} never greeted`);
  if (s.greetingRefused > 0) parts.push(`${formatNumber(s.greetingRefused, 0)} greeting refused`);
  if (s.answerDelayMs.length > 0) {
    parts.push(
      `${formatNumber(s.answerDelayMs.length, 0)} answered after ${timeSpread(s.answerDelayMs)}`,
    );
  }
  if (s.unanswered > 0) parts.push(`${formatNumber(s.unanswered, 0)} unanswered at the end`);
  if (s.closedByServer > 0) {
    parts.push(`${formatNumber(s.closedByServer, 0)} closed after ${timeSpread(s.closedAfterMs)}`);
  }
  if (s.stillOpen > 0) parts.push(`${formatNumber(s.stillOpen, 0)} still open at the end`);
  if (s.stalled > 0) {
    parts.push(
      `${formatNumber(s.stalled, 0)} with writes blocked at the end (the proxy not reading)`,
    );
  }
  if (s.attack === 'lonecr' || s.attack === 'noread') parts.push(`${mib(s.bytesSent)} sent`);
  if (s.attack === 'alpaca')
    parts.push(`${formatNumber(s.reflected, 0)} answers echoed the request`);
  if (s.answers.length > 0) {
    parts.push(
      `answers: ${s.answers
        .slice(0, 2)
        .map((a) => `"${a}"`)
        .join(', ')}`,
    );
  }
  return parts.join('; ');
}

function phaseLabel(p: AttackPhase['phase']): string {
  if (p === 'none') return 'no attackers';
  if (p === 'all') return 'all together';
  return ATTACK_LABELS[p];
}

function failedText(l: LegitFigures): string {
  if (l.failed === 0) return '0';
  const by = Object.entries(l.failedBy)
    .map(([k, n]) => `${n} ${k}`)
    .join(', ');
  return `${formatNumber(l.failed, 0)} (${by})`;
}

/**
 * A phase's baseline rate: the mean of the nearest phases without attackers before and after it
 * (one of them where the other is missing; a phase without attackers is its own).
 */
export function baselineRate(phases: readonly AttackPhase[], i: number): number | undefined {
  if (phases[i]?.phase === 'none') return phases[i]?.legit.loginsPerSecond;
  const before = phases.slice(0, i).findLast((p) => p.phase === 'none');
  const after = phases.slice(i + 1).find((p) => p.phase === 'none');
  const rates = [before, after].flatMap((p) => (p === undefined ? [] : [p.legit.loginsPerSecond]));
  return rates.length === 0 ? undefined : rates.reduce((a, b) => a + b, 0) / rates.length;
}

export function attackTable(r: AttackReport): string {
  const header = [
    'phase',
    'legit logins/s',
    '÷ no attackers before and after (goal ≥ 0.9×)',
    'legit failed logins',
    'legit sessions dropped (goal 0)',
    'proxy RSS start → peak (MiB)',
    'proxy CPU',
  ];
  const rows = r.phases.map((p, i) => {
    const base = baselineRate(r.phases, i);
    const ratio = base === undefined || base === 0 ? undefined : p.legit.loginsPerSecond / base;
    const verdict =
      ratio === undefined ? '—' : `${ratio.toFixed(2)}× ${ratio >= 0.9 ? 'met' : 'missed'}`;
    const gone =
      p.proxyProcessesGone === 'all'
        ? ' (proxy died)'
        : p.proxyProcessesGone > 0
          ? ` (${p.proxyProcessesGone} proxy process(es) died)`
          : '';
    return [
      phaseLabel(p.phase),
      formatNumber(p.legit.loginsPerSecond, 1),
      p.phase === 'none' ? '1.00×' : verdict,
      failedText(p.legit),
      `${formatNumber(p.legit.dropped, 0)} ${p.legit.dropped === 0 ? 'met' : 'missed'}`,
      `${formatNumber(p.rssStartMiB, 0)} → ${formatNumber(p.rssPeakMiB, 0)}${gone}`,
      p.proxyCpuPercent === undefined ? '—' : `${p.proxyCpuPercent.toFixed(0)} %`,
    ];
  });
  return markdownTable(header, rows);
}

const pct = (v: number | undefined): string => (v === undefined ? '—' : `${v.toFixed(0)} %`);

/** The proxy's CPU per legitimate login (ms): steadier than rates on a shared machine. */
export function proxyMsPerLogin(p: AttackPhase, seconds: number): number | undefined {
  if (p.cpu.proxy === undefined || p.legit.logins === 0) return undefined;
  return ((p.cpu.proxy / 100) * seconds * 1000) / p.legit.logins;
}

/** Where the CPU went in each phase, and what the legitimate clients saw of it. */
export function cpuTable(r: AttackReport): string {
  const rows = r.phases.map((p) => {
    const perLogin = proxyMsPerLogin(p, r.phaseSeconds);
    const cycle = p.legit.cycleMsMedian;
    return [
      phaseLabel(p.phase),
      pct(p.cpu.proxy),
      pct(p.cpu.slapd),
      pct(p.cpu.dovecot),
      pct(p.cpu.legit),
      pct(p.cpu.attackers),
      perLogin === undefined ? '—' : formatNumber(perLogin, 2),
      Number.isNaN(cycle)
        ? '—'
        : `${formatNumber(cycle, 0)} (${formatNumber(p.legit.cycleMsP90, 0)})`,
    ];
  });
  return markdownTable(
    [
      'phase',
      'proxy CPU',
      'slapd',
      'Dovecot',
      'legit clients',
      'attackers',
      'proxy CPU ms per legit login',
      'legit cycle ms, median (p90)',
    ],
    rows,
  );
}

export function attackersTable(r: AttackReport): string {
  const rows: string[][] = [];
  for (const p of r.phases) {
    for (const s of p.attackers) {
      rows.push([
        phaseLabel(p.phase),
        ATTACK_LABELS[s.attack],
        s.elapsedMs > 0 ? `${((s.cpuMicros / 1000 / s.elapsedMs) * 100).toFixed(0)} %` : '—',
        describeOutcome(s),
      ]);
    }
  }
  return markdownTable(['phase', 'attacker', 'attacker CPU', 'outcome'], rows);
}

/** What each attacker does, from the parameters (so the table says what was measured). */
export function attackDescriptions(p: AttackParams): string[] {
  return [
    `slowloris: ${formatNumber(p.slowloris.connections, 0)} connections from ${p.slowloris.source} (≤ ${formatNumber(p.slowloris.perProcess, 0)} per load process, ${p.slowloris.openPerSecond}/s), each sends "${p.slowloris.partial}" after the greeting, then one byte every ${p.slowloris.dripMs / 1000} s.`,
    `lone-CR flood: ${p.lonecr.connections} connections from ${p.lonecr.source}, each "a NOOP" then ${p.lonecr.mebibytes} MiB of CR (no LF) at up to ${p.lonecr.mebibytesPerSecond} MiB/s, reconnecting when closed or done.`,
    `commands, never read: ${p.noread.connections} connections from ${p.noread.source} writing ${JSON.stringify(p.noread.commands)} in a loop (up to ${p.noread.kibPerSecond} KiB/s each) without reading, reconnecting when closed.`,
    `wrong passwords: ${p.wrongpass.perSecond} LOGINs/s from ${p.wrongpass.source}, one per connection, for an existing user (also one of the legitimate users).`,
    `HTTP to IMAP (ALPACA): an HTTP POST with an HTML body every ${p.alpaca.everyMs} ms from ${p.alpaca.source}, each waiting up to ${p.alpaca.waitMs / 1000} s for the close.`,
  ];
}

export function formatAttackReport(r: AttackReport): string {
  const l = r.legitParams;
  return [
    `### Attack benchmark ${r.date.slice(0, 10)}: ${r.target}${r.pinned === undefined ? '' : ' (pinned)'}`,
    '',
    `Machine: ${r.machine}. Run at ${r.date}, commit ${r.commit}. Load average ${r.load}.`,
    '',
    r.pinned === undefined
      ? 'Not pinned: the scheduler places every process (the attackers niced to 19).'
      : `Pinned: ${r.pinned}; the attackers, niced to 19, with the load generator.`,
    '',
    `Each phase starts a fresh proxy, after an unmeasured warm-up; each attacker phase runs between two phases without attackers, its baselines (the ratio compares it with their mean). Attackers run ${r.leadSeconds} s before the legitimate clients start, then ${r.phaseSeconds} s with them. Legitimate clients: ${l.concurrency} loops of connect, LOGIN, EXAMINE, FETCH ${l.fetchMessage} BODY[], LOGOUT from ${l.sources[0]}–${l.sources[l.sources.length - 1]}, and ${l.longSessions} long sessions sending NOOP every ${l.noopIntervalMs / 1000} s. A session is dropped when it broke after its login.`,
    '',
    attackTable(r),
    '',
    "CPU by process, % of one core (proxy, slapd, Dovecot while the legitimate clients ran; the load processes over their own run), and the legitimate clients' cycle (connect … LOGOUT):",
    '',
    cpuTable(r),
    '',
    'Attackers:',
    '',
    attackersTable(r),
    '',
    'What each attacker does (packages/bench/src/attackParams.ts):',
    '',
    ...attackDescriptions(r.params).map((d) => `- ${d}`),
    '',
    ...r.phases
      .filter((p) => p.sampleErrors.length > 0)
      .map(
        (p) => `- ${phaseLabel(p.phase)}, first legitimate errors: ${p.sampleErrors.join(' | ')}`,
      ),
    '',
  ].join('\n');
}
