// The results of one run as Markdown tables: figures per target with their spread, CPU per
// operation per part of each target, ratios of mmp to the others, and the issues' targets with a
// verdict. Pure functions (unit-tested).
import { CPU_PARTS, CPU_PART_LABELS, type CpuPart } from './cpu.js';
import { median, ratio } from './stats.js';

export const TARGET_IDS = [
  'direct',
  'mmp0',
  'mmp0nc',
  'mmp2',
  'mmpHa',
  'perdition',
  'nginx',
  'socat',
] as const;
export type TargetId = (typeof TARGET_IDS)[number];

export const TARGET_LABELS: Record<TargetId, string> = {
  direct: 'Dovecot direct',
  mmp0: 'mmp N=0',
  mmp0nc: 'mmp N=0, no lookup cache',
  mmp2: 'mmp N=2',
  mmpHa: '2 mmp + HAProxy',
  perdition: 'perdition',
  nginx: 'nginx mail',
  socat: 'socat',
};

export type MetricId =
  | 'imapLogins'
  | 'popLogins'
  | 'imapFetch'
  | 'popFetch'
  | 'noopMedian'
  | 'noopP99'
  | 'idleSessions'
  | 'kibPerSession';

export interface MetricInfo {
  id: MetricId;
  label: string;
  unit: string;
  higherIsBetter: boolean;
  digits: number;
}

export const METRICS: readonly MetricInfo[] = [
  { id: 'imapLogins', label: 'IMAP login+logout', unit: '/s', higherIsBetter: true, digits: 0 },
  { id: 'popLogins', label: 'POP3 login+logout', unit: '/s', higherIsBetter: true, digits: 0 },
  { id: 'imapFetch', label: 'IMAP FETCH 1 MiB', unit: 'MiB/s', higherIsBetter: true, digits: 0 },
  { id: 'popFetch', label: 'POP3 RETR 1 MiB', unit: 'MiB/s', higherIsBetter: true, digits: 0 },
  { id: 'noopMedian', label: 'IMAP NOOP median', unit: 'µs', higherIsBetter: false, digits: 0 },
  { id: 'noopP99', label: 'IMAP NOOP p99', unit: 'µs', higherIsBetter: false, digits: 0 },
  { id: 'idleSessions', label: 'idle IMAP sessions', unit: '', higherIsBetter: true, digits: 0 },
  {
    id: 'kibPerSession',
    label: 'proxy RSS per session',
    unit: 'KiB',
    higherIsBetter: false,
    digits: 1,
  },
];

/** A measured figure (the median of `runs` when there were repetitions), or why there is none. */
export type Cell = { value: number; runs?: number[]; note?: string } | { missing: string };

/** The operations CPU is divided by, each with its unit. */
export const CPU_OPS = [
  { id: 'imapLogin', label: 'IMAP login+logout', per: 'login' },
  { id: 'popLogin', label: 'POP3 login+logout', per: 'login' },
  { id: 'imapMiB', label: 'IMAP FETCH 1 MiB', per: 'MiB forwarded' },
  { id: 'popMiB', label: 'POP3 RETR 1 MiB', per: 'MiB forwarded' },
  { id: 'noop1000', label: 'IMAP NOOP', per: '1,000 round trips' },
] as const;
export type CpuOpId = (typeof CPU_OPS)[number]['id'];

/** CPU microseconds per operation, one value per repetition, per part of a target. */
export type CpuRuns = Partial<Record<CpuPart, number[]>>;
export type CpuResults = Partial<Record<TargetId, Partial<Record<CpuOpId, CpuRuns>>>>;

export interface Results {
  /** ISO date-time of the run */
  date: string;
  machine: string;
  /** the commit measured */
  commit?: string;
  quick: boolean;
  /** how the processes were placed on cores (--pin), undefined when not pinned */
  pinned?: string;
  caveats: string[];
  /** Which columns to show, in order */
  targets: TargetId[];
  cells: Partial<Record<TargetId, Partial<Record<MetricId, Cell>>>>;
  cpu?: CpuResults;
  /** Free-form notes (footnotes under the tables) */
  notes: string[];
}

export function cellValue(cell: Cell | undefined): number | undefined {
  if (cell === undefined || 'missing' in cell) return undefined;
  return Number.isFinite(cell.value) ? cell.value : undefined;
}

export function formatNumber(value: number, digits: number): string {
  if (!Number.isFinite(value)) return '—';
  const fixed = value.toFixed(digits);
  // thousands separators in the integer part
  const [int, frac] = fixed.split('.');
  const grouped = (int ?? '').replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return frac === undefined ? grouped : `${grouped}.${frac}`;
}

/** `min–max` of the repetitions, or '' for fewer than two. */
export function formatSpread(runs: readonly number[] | undefined, digits: number): string {
  if (runs === undefined || runs.length < 2) return '';
  const finite = runs.filter(Number.isFinite);
  if (finite.length < 2) return '';
  const lo = formatNumber(Math.min(...finite), digits);
  const hi = formatNumber(Math.max(...finite), digits);
  return `${lo}–${hi}`;
}

/** The median with the spread of its repetitions: `720 (690–750)`. */
export function formatCell(cell: Cell | undefined, metric: MetricInfo): string {
  if (cell === undefined) return '—';
  if ('missing' in cell) return cell.missing;
  const text = formatNumber(cell.value, metric.digits);
  const extra = [formatSpread(cell.runs, metric.digits), cell.note ?? ''].filter((x) => x !== '');
  return extra.length === 0 ? text : `${text} (${extra.join('; ')})`;
}

export function formatRatio(value: number | undefined): string {
  if (value === undefined) return '—';
  return `${value.toFixed(2)}×`;
}

/** A Markdown table with every column padded to the same width (readable as plain text too). */
export function markdownTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
): string {
  const escape = (s: string): string => s.replace(/\|/g, '\\|');
  const all = [header, ...rows].map((r) => r.map(escape));
  const widths = header.map((_, i) => Math.max(3, ...all.map((r) => [...(r[i] ?? '')].length)));
  const pad = (s: string, i: number): string => s + ' '.repeat((widths[i] ?? 0) - [...s].length);
  const line = (r: readonly string[]): string =>
    `| ${header.map((_, i) => pad(r[i] ?? '', i)).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [line(all[0] ?? []), rule, ...all.slice(1).map(line)].join('\n');
}

export function figuresTable(results: Results): string {
  const header = ['', ...results.targets.map((t) => TARGET_LABELS[t])];
  const rows = METRICS.map((m) => [
    m.unit === '' ? m.label : `${m.label} (${m.unit})`,
    ...results.targets.map((t) => formatCell(results.cells[t]?.[m.id], m)),
  ]);
  return markdownTable(header, rows);
}

const MMP_IDS: readonly TargetId[] = ['mmp0', 'mmp0nc', 'mmp2'];
const PEER_IDS: readonly TargetId[] = ['direct', 'perdition', 'nginx', 'socat'];

/** mmp ÷ each other target, per metric (for "lower is better" metrics a ratio < 1 is good). */
export function ratiosTable(results: Results): string {
  const mmps = MMP_IDS.filter((id) => results.targets.includes(id));
  const peers = PEER_IDS.filter((id) => results.targets.includes(id));
  const columns = mmps.flatMap((m) => peers.map((p) => [m, p] as const));
  const header = ['', ...columns.map(([m, p]) => `${TARGET_LABELS[m]} ÷ ${TARGET_LABELS[p]}`)];
  const rows = METRICS.map((metric) => [
    metric.label,
    ...columns.map(([m, p]) =>
      formatRatio(
        ratio(cellValue(results.cells[m]?.[metric.id]), cellValue(results.cells[p]?.[metric.id])),
      ),
    ),
  ]);
  return markdownTable(header, rows);
}

export interface Goal {
  description: string;
  metric: MetricId;
  /** compare mmp to this target (a ratio), or to an absolute figure when undefined */
  versus?: TargetId;
  /** 'min': measured ≥ bound is met; 'max': measured ≤ bound is met */
  kind: 'min' | 'max';
  bound: number;
}

export const GOALS: readonly Goal[] = [
  {
    description: 'IMAP logins/s ≥ 2× perdition',
    metric: 'imapLogins',
    versus: 'perdition',
    kind: 'min',
    bound: 2,
  },
  {
    description: 'IMAP logins/s ≥ 1.2× nginx',
    metric: 'imapLogins',
    versus: 'nginx',
    kind: 'min',
    bound: 1.2,
  },
  {
    description: 'POP3 logins/s ≥ 2× perdition',
    metric: 'popLogins',
    versus: 'perdition',
    kind: 'min',
    bound: 2,
  },
  {
    description: 'POP3 logins/s ≥ 1.2× nginx',
    metric: 'popLogins',
    versus: 'nginx',
    kind: 'min',
    bound: 1.2,
  },
  {
    description: 'IMAP 1 MiB fetch ≥ 0.9× direct',
    metric: 'imapFetch',
    versus: 'direct',
    kind: 'min',
    bound: 0.9,
  },
  {
    description: 'POP3 1 MiB RETR ≥ 0.9× direct',
    metric: 'popFetch',
    versus: 'direct',
    kind: 'min',
    bound: 0.9,
  },
  {
    description: 'NOOP median ≤ 1.3× direct',
    metric: 'noopMedian',
    versus: 'direct',
    kind: 'max',
    bound: 1.3,
  },
  { description: 'idle sessions ≥ 50,000', metric: 'idleSessions', kind: 'min', bound: 50_000 },
  { description: 'RSS per session ≤ 8 KiB', metric: 'kibPerSession', kind: 'max', bound: 8 },
];

/** The measured figure for a goal: a ratio to the peer, or the absolute value. */
export function goalMeasure(results: Results, mmp: TargetId, goal: Goal): number | undefined {
  const own = cellValue(results.cells[mmp]?.[goal.metric]);
  if (goal.versus === undefined) return own;
  return ratio(own, cellValue(results.cells[goal.versus]?.[goal.metric]));
}

export function verdict(goal: Goal, measured: number | undefined): string {
  if (measured === undefined) return 'not measured';
  const met = goal.kind === 'min' ? measured >= goal.bound : measured <= goal.bound;
  if (met) return 'met';
  const by = goal.kind === 'min' ? 1 - measured / goal.bound : measured / goal.bound - 1;
  return `missed by ${(by * 100).toFixed(0)}%`;
}

export function goalsTable(results: Results): string {
  const mmps = MMP_IDS.filter((id) => results.targets.includes(id));
  const header = ['target', ...mmps.flatMap((m) => [TARGET_LABELS[m], 'verdict'])];
  const rows = GOALS.map((goal) => {
    const metric = METRICS.find((m) => m.id === goal.metric);
    return [
      goal.description,
      ...mmps.flatMap((m) => {
        const measured = goalMeasure(results, m, goal);
        const shown =
          measured === undefined
            ? '—'
            : goal.versus === undefined
              ? formatNumber(measured, metric?.digits ?? 0)
              : formatRatio(measured);
        return [shown, verdict(goal, measured)];
      }),
    ];
  });
  return markdownTable(header, rows);
}

// ---------------------------------------------------------------- CPU per operation

/** Parts that make up the proxy side of a target (what routing costs, the stores aside). */
export const PROXY_SIDE: readonly CpuPart[] = ['proxy', 'balancer', 'directory', 'auth'];

/** Per-repetition sums of some parts (repetitions where every one of them was measured). */
export function sumRuns(runs: CpuRuns, parts: readonly CpuPart[]): number[] {
  const present = parts.filter((p) => runs[p] !== undefined);
  if (present.length === 0) return [];
  const n = Math.min(...present.map((p) => runs[p]?.length ?? 0));
  return Array.from({ length: n }, (_, i) =>
    present.reduce((sum, p) => sum + (runs[p]?.[i] ?? 0), 0),
  );
}

/** The median of a list of repetitions, or undefined for none. */
export function medianOf(runs: readonly number[] | undefined): number | undefined {
  if (runs === undefined || runs.length === 0) return undefined;
  const m = median(runs);
  return Number.isFinite(m) ? m : undefined;
}

function cpuText(runs: readonly number[] | undefined): string {
  const m = medianOf(runs);
  if (m === undefined) return '—';
  const spread = formatSpread(runs, 0);
  return spread === '' ? formatNumber(m, 0) : `${formatNumber(m, 0)} (${spread})`;
}

/** One table per operation: a row per target, a column per part, the proxy side and all. */
export function cpuTable(results: Results, op: CpuOpId): string | undefined {
  const rows = results.targets.filter((t) => results.cpu?.[t]?.[op] !== undefined);
  if (rows.length === 0) return undefined;
  const parts = CPU_PARTS.filter((p) =>
    rows.some((t) => results.cpu?.[t]?.[op]?.[p] !== undefined),
  );
  const header = ['µs', ...parts.map((p) => CPU_PART_LABELS[p]), 'proxy side', 'everything'];
  const body = rows.map((t) => {
    const runs = results.cpu?.[t]?.[op] ?? {};
    return [
      TARGET_LABELS[t],
      ...parts.map((p) => cpuText(runs[p])),
      t === 'direct' ? '—' : cpuText(sumRuns(runs, PROXY_SIDE)),
      cpuText(sumRuns(runs, CPU_PARTS)),
    ];
  });
  return markdownTable(header, body);
}

export function cpuTables(results: Results): string[] {
  const out: string[] = [];
  for (const op of CPU_OPS) {
    const table = cpuTable(results, op.id);
    if (table !== undefined) out.push(`CPU µs per ${op.per}, ${op.label}:`, '', table, '');
  }
  return out;
}

/** A goal of issue 18 measured from CPU or latency, for one mmp target. */
export interface CostGoal {
  description: string;
  kind: 'min' | 'max';
  bound: number;
  measure: (results: Results, mmp: TargetId) => number | undefined;
}

function proxySide(results: Results, t: TargetId, op: CpuOpId): number | undefined {
  const runs = results.cpu?.[t]?.[op];
  return runs === undefined ? undefined : medianOf(sumRuns(runs, PROXY_SIDE));
}

/** Latency a relay adds to a NOOP round trip: its median minus direct's. */
function addedLatency(results: Results, t: TargetId): number | undefined {
  const own = cellValue(results.cells[t]?.noopMedian);
  const base = cellValue(results.cells.direct?.noopMedian);
  return own === undefined || base === undefined ? undefined : own - base;
}

export const COST_GOALS: readonly CostGoal[] = [
  ...(['imapLogin', 'popLogin'] as const).map((op): CostGoal => ({
    description: `CPU per ${op === 'imapLogin' ? 'IMAP' : 'POP3'} login ≤ 0.5× nginx + auth_http + slapd`,
    kind: 'max',
    bound: 0.5,
    measure: (r, m) => ratio(proxySide(r, m, op), proxySide(r, 'nginx', op)),
  })),
  ...(['imapMiB', 'popMiB'] as const).map((op): CostGoal => ({
    description: `CPU per MiB (${op === 'imapMiB' ? 'IMAP' : 'POP3'}) ≤ 1.3× socat`,
    kind: 'max',
    bound: 1.3,
    measure: (r, m) =>
      ratio(medianOf(r.cpu?.[m]?.[op]?.proxy), medianOf(r.cpu?.socat?.[op]?.proxy)),
  })),
  {
    description: 'NOOP latency added ≤ 1.1× socat’s',
    kind: 'max',
    bound: 1.1,
    measure: (r, m) => ratio(addedLatency(r, m), addedLatency(r, 'socat')),
  },
];

export function costGoalsTable(results: Results): string {
  const mmps = MMP_IDS.filter((id) => results.targets.includes(id));
  const header = ['goal (issue 18)', ...mmps.flatMap((m) => [TARGET_LABELS[m], 'verdict'])];
  const rows = COST_GOALS.map((goal) => [
    goal.description,
    ...mmps.flatMap((m) => {
      const measured = goal.measure(results, m);
      return [
        formatRatio(measured),
        verdict(
          { description: '', metric: 'imapLogins', kind: goal.kind, bound: goal.bound },
          measured,
        ),
      ];
    }),
  ]);
  return markdownTable(header, rows);
}

// ---------------------------------------------------------------- behind a balancer

/** The figures the balancer table compares (issue 16: logins/s and 1 MiB fetch, NOOP beside). */
const BALANCER_METRICS: readonly MetricId[] = [
  'imapLogins',
  'popLogins',
  'imapFetch',
  'popFetch',
  'noopMedian',
];

/**
 * Two mmp N=0 behind HAProxy against one mmp N=0, measured in the same run (issue 16): each rate
 * and the proxy side's CPU per operation (HAProxy included), with the ratio two ÷ one. Undefined
 * when the run had not both.
 */
export function balancerTable(results: Results): string | undefined {
  const one: TargetId = 'mmp0';
  const two: TargetId = 'mmpHa';
  if (!results.targets.includes(one) || !results.targets.includes(two)) return undefined;
  const header = [
    '',
    TARGET_LABELS[one],
    TARGET_LABELS[two],
    `${TARGET_LABELS[two]} ÷ ${TARGET_LABELS[one]}`,
  ];
  const rates = METRICS.filter((m) => BALANCER_METRICS.includes(m.id)).map((m) => [
    `${m.label} (${m.unit})`,
    formatCell(results.cells[one]?.[m.id], m),
    formatCell(results.cells[two]?.[m.id], m),
    formatRatio(
      ratio(cellValue(results.cells[two]?.[m.id]), cellValue(results.cells[one]?.[m.id])),
    ),
  ]);
  const cpu = CPU_OPS.map((op) => [
    `CPU µs per ${op.per}, ${op.label} (proxy side)`,
    cpuText(sumRuns(results.cpu?.[one]?.[op.id] ?? {}, PROXY_SIDE)),
    cpuText(sumRuns(results.cpu?.[two]?.[op.id] ?? {}, PROXY_SIDE)),
    formatRatio(ratio(proxySide(results, two, op.id), proxySide(results, one, op.id))),
  ]);
  return markdownTable(header, [...rates, ...cpu]);
}

function balancerSection(results: Results): string[] {
  const table = balancerTable(results);
  if (table === undefined) return [];
  return [
    'Behind a balancer (issue 16): two mmp N=0 behind HAProxy (send-proxy-v2, round robin) against one mmp N=0; CPU of the proxy side includes HAProxy:',
    '',
    table,
    '',
  ];
}

/** The whole report: heading, figures, ratios, targets, caveats and notes. */
export function formatReport(results: Results): string {
  const cpu = results.cpu === undefined ? [] : cpuTables(results);
  const parts = [
    `### Benchmark ${results.date.slice(0, 10)}${results.quick ? ' (--quick)' : ''}${results.pinned === undefined ? '' : ' (pinned)'}`,
    '',
    `Machine: ${results.machine}. Run at ${results.date}${results.commit === undefined ? '' : `, commit ${results.commit}`}.`,
    '',
    results.pinned === undefined
      ? 'Not pinned: the scheduler places every process.'
      : `Pinned (every figure below): ${results.pinned}.`,
    '',
    'Medians, with the spread of the repetitions (min–max) in parentheses.',
    '',
    figuresTable(results),
    '',
    ...(cpu.length === 0
      ? []
      : [
          'CPU per operation, from /proc/PID/stat over each measured window (utime + stime of every process of the part, children that exited included); "proxy side" is the proxy with its directory and auth service:',
          '',
          ...cpu,
        ]),
    ...balancerSection(results),
    'Ratios (mmp ÷ other; for latency and memory lower is better):',
    '',
    ratiosTable(results),
    '',
    'Targets (issue 8):',
    '',
    goalsTable(results),
    ...(cpu.length === 0 ? [] : ['', 'Cost targets (issue 18):', '', costGoalsTable(results)]),
  ];
  if (results.caveats.length > 0) {
    parts.push('', 'Caveats:', '', ...results.caveats.map((c) => `- ${c}`));
  }
  if (results.notes.length > 0) {
    parts.push('', 'Notes:', '', ...results.notes.map((n) => `- ${n}`));
  }
  return `${parts.join('\n')}\n`;
}
