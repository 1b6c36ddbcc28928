import { describe, expect, it } from 'vitest';
import { chartSvg, cpuParts, escapeXml, rateRatio } from './chart.js';
import type { Results } from './table.js';

function results(): Results {
  return {
    date: '2026-01-02T03:04:05.000Z',
    machine: 'box <2 cores>',
    quick: false,
    pinned: 'load generator on CPU 0',
    caveats: [],
    targets: ['direct', 'mmp0', 'nginx', 'socat'],
    cells: {
      direct: { imapLogins: { value: 1000 }, noopMedian: { value: 50 } },
      mmp0: { imapLogins: { value: 800 }, noopMedian: { value: 100 } },
      nginx: { imapLogins: { value: 600 }, noopMedian: { value: 80 } },
      socat: { noopMedian: { value: 75 }, imapLogins: { missing: 'no directory' } },
    },
    cpu: {
      mmp0: { imapLogin: { proxy: [600, 700, 800], directory: [100, 100, 100], stores: [1000] } },
      nginx: { imapLogin: { proxy: [300], auth: [300], directory: [200], stores: [1100] } },
    },
    notes: [],
  };
}

describe('the chart', () => {
  it('divides rates by direct, and direct’s latency by the target’s', () => {
    const r = results();
    expect(rateRatio(r, 'mmp0', 'imapLogins', false)).toBeCloseTo(0.8);
    expect(rateRatio(r, 'mmp0', 'noopMedian', true)).toBeCloseTo(0.5);
    expect(rateRatio(r, 'socat', 'imapLogins', false)).toBeUndefined();
  });
  it('takes the median per part', () => {
    expect(cpuParts(results(), 'mmp0', 'imapLogin')).toEqual({
      proxy: 700,
      directory: 100,
      stores: 1000,
    });
    expect(cpuParts(results(), 'direct', 'imapLogin')).toBeUndefined();
  });
  it('draws a bar per target and rate, a stacked bar per target and operation, escaped text', () => {
    const svg = chartSvg(results());
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg).toContain('pinned: load generator on CPU 0');
    expect(svg).toContain('box &lt;2 cores&gt;');
    expect(svg).toContain('<title>mmp N=0 0.80×</title>');
    expect(svg).toContain('<title>nginx mail 0.63×</title>');
    expect(svg).toContain('<title>mmp N=0 proxy 700 µs</title>');
    expect(svg).toContain('<title>nginx mail auth_http 300 µs</title>');
    // totals beside the stacked bars, the medians of the per-repetition sums: mmp's one
    // repetition with every part 600 + 100 + 1,000, nginx 300 + 300 + 200 + 1,100
    expect(svg).toContain('>1,700</text>');
    expect(svg).toContain('>1,900</text>');
    expect(svg).not.toMatch(/NaN|undefined/);
  });
  it('escapes XML', () => {
    expect(escapeXml('a<b & "c">')).toBe('a&lt;b &amp; &quot;c&quot;&gt;');
  });
});
