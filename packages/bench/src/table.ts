// The results of one run as Markdown tables: figures per target, ratios of mmp to the others,
// and the issue's targets with a verdict. Pure functions (unit-tested).
import { ratio } from './stats.js';

export const TARGET_IDS = ['direct', 'mmp0', 'mmp2', 'perdition', 'nginx'] as const;
export type TargetId = (typeof TARGET_IDS)[number];

export const TARGET_LABELS: Record<TargetId, string> = {
  direct: 'Dovecot direct',
  mmp0: 'mmp N=0',
  mmp2: 'mmp N=2',
  perdition: 'perdition',
  nginx: 'nginx mail',
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

export interface Results {
  /** ISO date-time of the run */
  date: string;
  machine: string;
  quick: boolean;
  caveats: string[];
  /** Which columns to show, in order */
  targets: TargetId[];
  cells: Partial<Record<TargetId, Partial<Record<MetricId, Cell>>>>;
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

export function formatCell(cell: Cell | undefined, metric: MetricInfo): string {
  if (cell === undefined) return '—';
  if ('missing' in cell) return cell.missing;
  const text = formatNumber(cell.value, metric.digits);
  return cell.note === undefined ? text : `${text} (${cell.note})`;
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

const MMP_IDS: readonly TargetId[] = ['mmp0', 'mmp2'];
const PEER_IDS: readonly TargetId[] = ['direct', 'perdition', 'nginx'];

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

/** The whole report: heading, figures, ratios, targets, caveats and notes. */
export function formatReport(results: Results): string {
  const parts = [
    `### Benchmark ${results.date.slice(0, 10)}${results.quick ? ' (--quick)' : ''}`,
    '',
    `Machine: ${results.machine}. Run at ${results.date}.`,
    '',
    figuresTable(results),
    '',
    'Ratios (mmp ÷ other; for latency and memory lower is better):',
    '',
    ratiosTable(results),
    '',
    'Targets (issue 8):',
    '',
    goalsTable(results),
  ];
  if (results.caveats.length > 0) {
    parts.push('', 'Caveats:', '', ...results.caveats.map((c) => `- ${c}`));
  }
  if (results.notes.length > 0) {
    parts.push('', 'Notes:', '', ...results.notes.map((n) => `- ${n}`));
  }
  return `${parts.join('\n')}\n`;
}
