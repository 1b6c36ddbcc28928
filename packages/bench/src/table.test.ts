import { describe, expect, it } from 'vitest';
import {
  GOALS,
  type Results,
  figuresTable,
  formatNumber,
  formatReport,
  goalMeasure,
  goalsTable,
  markdownTable,
  ratiosTable,
  verdict,
} from './table.js';

function sample(): Results {
  return {
    date: '2025-01-02T03:04:05.000Z',
    machine: 'test box, 2 cores',
    quick: true,
    caveats: ['shared machine'],
    targets: ['direct', 'mmp0', 'mmp2', 'perdition', 'nginx'],
    cells: {
      direct: { imapLogins: { value: 1000, runs: [900, 1000, 1100] }, noopMedian: { value: 40 } },
      mmp0: {
        imapLogins: { value: 800 },
        noopMedian: { value: 60 },
        idleSessions: { value: 9_000 },
        kibPerSession: { value: 12.34 },
      },
      mmp2: { imapLogins: { missing: 'not implemented' } },
      perdition: { imapLogins: { value: 300 } },
      nginx: { imapLogins: { value: 1000 } },
    },
    notes: ['a note'],
  };
}

describe('formatNumber', () => {
  it('groups thousands and keeps the digits asked for', () => {
    expect(formatNumber(1234567.891, 1)).toBe('1,234,567.9');
    expect(formatNumber(999, 0)).toBe('999');
    expect(formatNumber(Number.NaN, 0)).toBe('—');
  });
});

describe('markdownTable', () => {
  it('pads columns, right-aligns figures and escapes pipes', () => {
    expect(
      markdownTable(
        ['', 'a|b'],
        [
          ['x', '1'],
          ['long name', '22'],
        ],
      ),
    ).toBe(
      [
        '|           | a\\|b |',
        '|-----------|-----:|',
        '| x         | 1    |',
        '| long name | 22   |',
      ].join('\n'),
    );
  });
});

describe('figuresTable', () => {
  it('has one row per metric and one column per target, with missing reasons', () => {
    const t = figuresTable(sample());
    const lines = t.split('\n');
    expect(lines[0]).toContain('Dovecot direct');
    expect(lines[0]).toContain('nginx mail');
    expect(lines).toHaveLength(2 + 8);
    const logins = lines.find((l) => l.startsWith('| IMAP login+logout'));
    expect(logins).toContain('1,000');
    expect(logins).toContain('not implemented');
    expect(t).toContain('12.3');
  });
});

describe('ratios and goals', () => {
  it('divides mmp by each peer', () => {
    const t = ratiosTable(sample());
    const logins = t.split('\n').find((l) => l.startsWith('| IMAP login+logout')) ?? '';
    // mmp0 ÷ direct, ÷ perdition, ÷ nginx
    expect(logins).toMatch(/0\.80×.*2\.67×.*0\.80×/);
  });
  it('measures goals as ratios or absolute figures', () => {
    const r = sample();
    const vsPerdition = GOALS.find((g) => g.description.startsWith('IMAP logins/s ≥ 2×'));
    const sessions = GOALS.find((g) => g.metric === 'idleSessions');
    expect(vsPerdition && goalMeasure(r, 'mmp0', vsPerdition)).toBeCloseTo(8 / 3);
    expect(sessions && goalMeasure(r, 'mmp0', sessions)).toBe(9000);
    expect(vsPerdition && goalMeasure(r, 'mmp2', vsPerdition)).toBeUndefined();
  });
  it('says met, missed by how much, or not measured', () => {
    const min = { description: '', metric: 'imapLogins', kind: 'min', bound: 2 } as const;
    const max = { description: '', metric: 'noopMedian', kind: 'max', bound: 1.3 } as const;
    expect(verdict(min, 2)).toBe('met');
    expect(verdict(min, 1.5)).toBe('missed by 25%');
    expect(verdict(max, 1.3)).toBe('met');
    expect(verdict(max, 2.6)).toBe('missed by 100%');
    expect(verdict(min, undefined)).toBe('not measured');
  });
  it('the goals table lists every goal for every mmp column', () => {
    const t = goalsTable(sample());
    expect(t.split('\n')).toHaveLength(2 + GOALS.length);
    expect(t).toContain('NOOP median ≤ 1.3× direct');
    expect(t).toMatch(/NOOP median.*1\.50×.*missed by 15%/);
  });
});

describe('formatReport', () => {
  it('has the date, the machine, the three tables, caveats and notes', () => {
    const text = formatReport(sample());
    expect(text).toContain('### Benchmark 2025-01-02 (--quick)');
    expect(text).toContain('test box, 2 cores');
    expect(text).toContain('- shared machine');
    expect(text).toContain('- a note');
    expect(text.match(/^\|-/gm)).toHaveLength(3);
  });
});
