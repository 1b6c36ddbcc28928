import { describe, expect, it } from 'vitest';
import {
  COST_GOALS,
  GOALS,
  type Results,
  balancerTable,
  costGoalsTable,
  cpuTable,
  formatCell,
  formatSpread,
  sumRuns,
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

describe('spread', () => {
  it('shows min–max of two or more repetitions beside the median', () => {
    expect(formatSpread([3, 1, 2], 0)).toBe('1–3');
    expect(formatSpread([1234.5, 999.4], 1)).toBe('999.4–1,234.5');
    expect(formatSpread([5], 0)).toBe('');
    expect(formatSpread(undefined, 0)).toBe('');
    const metric = {
      id: 'imapLogins',
      label: '',
      unit: '',
      higherIsBetter: true,
      digits: 0,
    } as const;
    expect(formatCell({ value: 1000, runs: [900, 1000, 1100] }, metric)).toBe('1,000 (900–1,100)');
    expect(formatCell({ value: 7, runs: [7], note: 'target' }, metric)).toBe('7 (target)');
  });
});

function withCpu(): Results {
  const r = sample();
  r.targets = ['direct', 'mmp0', 'nginx', 'socat'];
  r.cells.socat = { noopMedian: { value: 70 } };
  r.cells.mmp0 = { ...r.cells.mmp0, noopMedian: { value: 80 } };
  r.pinned = 'load generator on CPU 0, proxy on CPU 1';
  r.cpu = {
    direct: { imapLogin: { stores: [1000, 1200] } },
    mmp0: {
      imapLogin: { proxy: [500, 700], directory: [100, 100], stores: [1000, 1000] },
      imapMiB: { proxy: [4000], stores: [1500] },
    },
    nginx: { imapLogin: { proxy: [300, 300], auth: [300, 500], directory: [200, 200] } },
    socat: { imapMiB: { proxy: [1000], stores: [1400] } },
  };
  return r;
}

describe('CPU per operation', () => {
  it('sums parts repetition by repetition', () => {
    expect(
      sumRuns({ proxy: [1, 2], directory: [10, 20], stores: [100] }, ['proxy', 'directory']),
    ).toEqual([11, 22]);
    expect(sumRuns({ stores: [5] }, ['proxy'])).toEqual([]);
  });
  it('has a row per target with its parts, the proxy side and everything', () => {
    const t = cpuTable(withCpu(), 'imapLogin') ?? '';
    const lines = t.split('\n');
    expect(lines[0]).toMatch(
      /proxy .*\| slapd .*\| auth_http .*\| Dovecot .*\| proxy side .*\| everything/,
    );
    expect(lines.find((l) => l.startsWith('| mmp N=0'))).toMatch(
      /600 \(500–700\) .*\| 100 \(100–100\) .*\| — .*\| 1,000 \(1,000–1,000\) .*\| 700 \(600–800\) .*\| 1,700 \(1,600–1,800\)/,
    );
    expect(lines.find((l) => l.startsWith('| Dovecot direct'))).toMatch(
      /\| — .*\| 1,100 \(1,000–1,200\) *\|$/,
    );
    expect(cpuTable(withCpu(), 'noop1000')).toBeUndefined();
  });
  it('measures the cost goals: mmp’s side against nginx’s trio, bytes against socat, added latency', () => {
    const r = withCpu();
    const login = COST_GOALS.find((g) => g.description.startsWith('CPU per IMAP login'));
    const mib = COST_GOALS.find((g) => g.description.startsWith('CPU per MiB (IMAP)'));
    const noop = COST_GOALS.find((g) => g.description.startsWith('NOOP latency'));
    // mmp 600 + 100 = 700 against nginx 300 + 400 + 200 = 900
    expect(login?.measure(r, 'mmp0')).toBeCloseTo(700 / 900);
    expect(mib?.measure(r, 'mmp0')).toBeCloseTo(4);
    // (80 − 40) against (70 − 40)
    expect(noop?.measure(r, 'mmp0')).toBeCloseTo(40 / 30);
    const table = costGoalsTable(r);
    expect(table).toMatch(/CPU per IMAP login.*0\.78×.*missed by 56%/);
    expect(table).toMatch(/CPU per POP3 login.*—.*not measured/);
  });
  it('shows a login with the lookup cache off (every login a miss) beside the cached one', () => {
    const r = withCpu();
    r.targets = ['direct', 'mmp0', 'mmp0nc', 'nginx', 'socat'];
    r.cpu = {
      ...r.cpu,
      mmp0nc: { imapLogin: { proxy: [800, 800], directory: [400, 400], stores: [1000, 1000] } },
    };
    const login = COST_GOALS.find((g) => g.description.startsWith('CPU per IMAP login'));
    // mmp 800 + 400 = 1,200 against nginx's 900
    expect(login?.measure(r, 'mmp0nc')).toBeCloseTo(1200 / 900);
    const table = costGoalsTable(r);
    expect(table.split('\n')[0]).toContain('mmp N=0, no lookup cache');
    expect(table).toMatch(/CPU per IMAP login.*0\.78×.*missed by 56%.*1\.33×.*missed by 167%/);
    expect(cpuTable(r, 'imapLogin')).toMatch(/\| mmp N=0, no lookup cache .*\| 800 \(800–800\)/);
  });
  it('the report says whether it was pinned and has the CPU tables', () => {
    const text = formatReport(withCpu());
    expect(text).toContain('### Benchmark 2025-01-02 (--quick) (pinned)');
    expect(text).toContain('Pinned (every figure below): load generator on CPU 0, proxy on CPU 1.');
    expect(text).toContain('CPU µs per login, IMAP login+logout:');
    expect(text).toContain('CPU µs per MiB forwarded, IMAP FETCH 1 MiB:');
    expect(text).toContain('Cost targets (issue 18):');
    expect(formatReport(sample())).toContain('Not pinned');
  });
});

describe('two mmp behind HAProxy against one mmp', () => {
  function withBalancer(): Results {
    const r = withCpu();
    r.targets = ['direct', 'mmp0', 'mmpHa'];
    r.cells.mmp0 = { ...r.cells.mmp0, imapFetch: { value: 40, runs: [30, 40, 50] } };
    r.cells.mmpHa = {
      imapLogins: { value: 1200, runs: [1000, 1200, 1300] },
      imapFetch: { value: 30, runs: [20, 30, 35] },
      popLogins: { missing: 'not started' },
    };
    r.cpu = {
      ...r.cpu,
      mmpHa: {
        imapLogin: {
          proxy: [800, 900],
          balancer: [200, 300],
          directory: [100, 100],
          stores: [1000, 1000],
        },
      },
    };
    return r;
  }
  it('puts rates and the proxy side’s CPU (HAProxy in it) side by side, with the ratio two ÷ one', () => {
    const lines = (balancerTable(withBalancer()) ?? '').split('\n');
    expect(lines[0]).toMatch(/\| mmp N=0 +\| 2 mmp \+ HAProxy +\| 2 mmp \+ HAProxy ÷ mmp N=0 \|/);
    expect(lines.find((l) => l.startsWith('| IMAP login+logout'))).toMatch(
      /\| 800 +\| 1,200 \(1,000–1,300\) +\| 1\.50× +\|/,
    );
    expect(lines.find((l) => l.startsWith('| IMAP FETCH'))).toMatch(
      /\| 40 \(30–50\) +\| 30 \(20–35\) +\| 0\.75× +\|/,
    );
    expect(lines.find((l) => l.startsWith('| POP3 login'))).toMatch(/\| not started +\| — +\|/);
    // one: 600 + 100 (and 500 + 100, 700 + 100); two: 800 + 200 + 100, 900 + 300 + 100
    expect(lines.find((l) => l.startsWith('| CPU µs per login, IMAP'))).toMatch(
      /\| 700 \(600–800\) +\| 1,200 \(1,100–1,300\) +\| 1\.71× +\|/,
    );
    // the per-operation table has HAProxy's own column
    expect(cpuTable(withBalancer(), 'imapLogin')?.split('\n')[0]).toMatch(
      /proxy .*\| HAProxy .*\| slapd/,
    );
    expect(formatReport(withBalancer())).toContain('Behind a balancer (issue 16)');
  });
  it('is left out of a run without both', () => {
    expect(balancerTable(withCpu())).toBeUndefined();
    expect(formatReport(withCpu())).not.toContain('Behind a balancer');
  });
});
