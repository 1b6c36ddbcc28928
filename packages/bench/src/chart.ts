// The side-by-side table drawn as one SVG (issue 18: "so the side-by-side reads at a glance"):
// on the left, each rate as a ratio to direct Dovecot (NOOP as direct's latency ÷ the target's,
// so that longer is better everywhere); on the right, CPU per operation stacked by part (proxy,
// slapd, auth_http, Dovecot), each operation on its own scale. Hand-written SVG, no browser.
// Pure (unit-tested).
import { CPU_PARTS, CPU_PART_LABELS, type CpuPart } from './cpu.js';
import {
  CPU_OPS,
  type MetricId,
  type Results,
  TARGET_LABELS,
  type TargetId,
  cellValue,
  formatNumber,
  medianOf,
  sumRuns,
} from './table.js';
import { ratio } from './stats.js';

const TARGET_COLORS: Record<TargetId, string> = {
  direct: '#7f7f7f',
  mmp0: '#1f77b4',
  mmp0nc: '#aec7e8',
  mmp2: '#6baed6',
  mmpHa: '#08519c',
  perdition: '#9467bd',
  nginx: '#2ca02c',
  socat: '#ff7f0e',
};

const PART_COLORS: Record<CpuPart, string> = {
  proxy: '#1f77b4',
  balancer: '#17becf',
  directory: '#d62728',
  auth: '#ff9896',
  stores: '#bdbdbd',
};

const RATE_ROWS: readonly { metric: MetricId; label: string; inverse: boolean }[] = [
  { metric: 'imapLogins', label: 'IMAP logins/s', inverse: false },
  { metric: 'popLogins', label: 'POP3 logins/s', inverse: false },
  { metric: 'imapFetch', label: 'IMAP 1 MiB fetch', inverse: false },
  { metric: 'popFetch', label: 'POP3 1 MiB RETR', inverse: false },
  { metric: 'noopMedian', label: 'NOOP (direct ÷ it)', inverse: true },
];

export function escapeXml(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

/** A target's rate as a ratio to direct (inverted for latency), or undefined. */
export function rateRatio(
  results: Results,
  t: TargetId,
  metric: MetricId,
  inverse: boolean,
): number | undefined {
  const own = cellValue(results.cells[t]?.[metric]);
  const base = cellValue(results.cells.direct?.[metric]);
  return inverse ? ratio(base, own) : ratio(own, base);
}

/** Median µs per part of a target for an operation. */
export function cpuParts(
  results: Results,
  t: TargetId,
  op: (typeof CPU_OPS)[number]['id'],
): Partial<Record<CpuPart, number>> | undefined {
  const runs = results.cpu?.[t]?.[op];
  if (runs === undefined) return undefined;
  const out: Partial<Record<CpuPart, number>> = {};
  for (const p of CPU_PARTS) {
    const m = medianOf(runs[p]);
    if (m !== undefined) out[p] = m;
  }
  return out;
}

const f = (n: number): string => n.toFixed(1);

export function chartSvg(results: Results): string {
  const targets = results.targets;
  const others = targets.filter((t) => t !== 'direct');
  const barH = 11;
  const gap = 6;
  const labelW = 130;
  const panelW = 330;
  const leftX = 20;
  const rightX = leftX + labelW + panelW + 70;
  const top = 92;
  const out: string[] = [];
  const text = (x: number, y: number, s: string, extra = ''): void => {
    out.push(`<text x="${f(x)}" y="${f(y)}"${extra}>${escapeXml(s)}</text>`);
  };
  const rect = (x: number, y: number, w: number, h: number, fill: string, title?: string): void => {
    const t = title === undefined ? '' : `<title>${escapeXml(title)}</title>`;
    out.push(
      `<rect x="${f(x)}" y="${f(y)}" width="${f(Math.max(0, w))}" height="${f(h)}" fill="${fill}">${t}</rect>`,
    );
  };

  // -- left: rates as ratios to direct
  const ratios = RATE_ROWS.map((row) => ({
    row,
    bars: others.map((t) => ({ t, v: rateRatio(results, t, row.metric, row.inverse) })),
  }));
  const maxRatio = Math.max(
    1.2,
    ...ratios.flatMap((g) => g.bars.map((b) => b.v ?? 0)).filter(Number.isFinite),
  );
  const scaleL = panelW / maxRatio;
  text(leftX, top - 28, 'Rates ÷ direct Dovecot (longer is better)', ' font-weight="bold"');
  let y = top;
  for (const g of ratios) {
    text(leftX, y + 12, g.row.label);
    y += 16;
    g.bars.forEach((b, i) => {
      const by = y + i * (barH + 2);
      text(leftX + labelW - 6, by + barH - 2, TARGET_LABELS[b.t], ' text-anchor="end"');
      if (b.v === undefined) {
        text(leftX + labelW + 4, by + barH - 2, '—', ' fill="#999"');
        return;
      }
      rect(
        leftX + labelW,
        by,
        b.v * scaleL,
        barH,
        TARGET_COLORS[b.t],
        `${TARGET_LABELS[b.t]} ${b.v.toFixed(2)}×`,
      );
      text(leftX + labelW + b.v * scaleL + 4, by + barH - 2, `${b.v.toFixed(2)}×`);
    });
    y += g.bars.length * (barH + 2) + gap * 2;
  }
  const leftBottom = y;
  const oneX = leftX + labelW + scaleL;
  out.push(
    `<line x1="${f(oneX)}" y1="${top - 4}" x2="${f(oneX)}" y2="${f(leftBottom)}" stroke="#333" stroke-dasharray="3,3"/>`,
  );
  text(oneX - 10, top - 8, '1×', ' fill="#333"');

  // -- right: CPU per operation, stacked by part, each operation on its own scale
  text(rightX, top - 28, 'CPU per operation, µs (shorter is better)', ' font-weight="bold"');
  y = top;
  for (const op of CPU_OPS) {
    const rows = targets
      .map((t) => ({ t, parts: cpuParts(results, t, op.id) }))
      .filter(
        (r): r is { t: TargetId; parts: Partial<Record<CpuPart, number>> } =>
          r.parts !== undefined && Object.keys(r.parts).length > 0,
      );
    if (rows.length === 0) continue;
    const stacked = rows.map((r) => CPU_PARTS.reduce((s, p) => s + (r.parts[p] ?? 0), 0));
    const scale = panelW / Math.max(1, ...stacked);
    // the label is the table's "everything": the median of the per-repetition sums
    const totals = rows.map(
      (r, i) => medianOf(sumRuns(results.cpu?.[r.t]?.[op.id] ?? {}, CPU_PARTS)) ?? stacked[i] ?? 0,
    );
    text(rightX, y + 12, `${op.label}, per ${op.per}`);
    y += 16;
    rows.forEach((r, i) => {
      const by = y + i * (barH + 2);
      text(rightX + labelW - 6, by + barH - 2, TARGET_LABELS[r.t], ' text-anchor="end"');
      let x = rightX + labelW;
      for (const p of CPU_PARTS) {
        const v = r.parts[p];
        if (v === undefined || v <= 0) continue;
        rect(
          x,
          by,
          v * scale,
          barH,
          PART_COLORS[p],
          `${TARGET_LABELS[r.t]} ${CPU_PART_LABELS[p]} ${formatNumber(v, 0)} µs`,
        );
        x += v * scale;
      }
      text(x + 4, by + barH - 2, formatNumber(totals[i] ?? 0, 0));
    });
    y += rows.length * (barH + 2) + gap * 2;
  }
  const rightBottom = y;

  // -- legend of the parts (the targets are named beside their bars)
  const legendY = Math.max(leftBottom, rightBottom) + 14;
  let lx = rightX;
  for (const p of CPU_PARTS) {
    rect(lx, legendY, 10, 10, PART_COLORS[p]);
    text(lx + 14, legendY + 9, CPU_PART_LABELS[p]);
    lx += 28 + CPU_PART_LABELS[p].length * 7;
  }
  const width = rightX + labelW + panelW + 70;
  const height = legendY + 24;
  const title = `mmp benchmark ${results.date.slice(0, 10)}${results.quick ? ' (--quick)' : ''}${results.pinned === undefined ? ', not pinned' : ', pinned'}`;
  const sub = `${results.machine}${results.commit === undefined ? '' : `; commit ${results.commit}`}`;
  const placed = results.pinned === undefined ? 'not pinned' : `pinned: ${results.pinned}`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${f(height)}" viewBox="0 0 ${width} ${f(height)}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="${leftX}" y="18" font-size="14" font-weight="bold">${escapeXml(title)}</text>`,
    `<text x="${leftX}" y="32" fill="#555" font-size="10">${escapeXml(sub.slice(0, 190))}</text>`,
    `<text x="${leftX}" y="44" fill="#555" font-size="10">${escapeXml(placed)}</text>`,
    ...out,
    '</svg>',
    '',
  ].join('\n');
}
