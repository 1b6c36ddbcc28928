import { describe, expect, it } from 'vitest';
import { attackJobs, attackPhaseOrder, mergeSummaries } from './attack.js';
import { ATTACKS, LEGIT, attackAddresses } from './attackParams.js';
import {
  type AttackPhase,
  type AttackReport,
  attackTable,
  attackersTable,
  cpuTable,
  describeOutcome,
  formatAttackReport,
  legitFigures,
  proxyMsPerLogin,
  timeSpread,
} from './attackTable.js';
import type { AttackSummary } from './load/hostile.js';
import type { SteadyResult } from './load/steady.js';

function summary(over: Partial<AttackSummary>): AttackSummary {
  return {
    kind: 'attack',
    attack: 'slowloris',
    connections: 0,
    refusedAtConnect: 0,
    pendingAtConnect: 0,
    greetingDelayMs: [],
    notGreeted: 0,
    greetingRefused: 0,
    closedByServer: 0,
    closedAfterMs: [],
    stillOpen: 0,
    stalled: 0,
    answerDelayMs: [],
    unanswered: 0,
    bytesSent: 0,
    bytesReceived: 0,
    reflected: 0,
    answers: [],
    errors: [],
    cpuMicros: 0,
    elapsedMs: 0,
    ...over,
  };
}

const steady: SteadyResult = {
  kind: 'steady',
  started: 0,
  ended: 10_000,
  attempts: [
    [0, 100, 'ok', 'A'],
    [0, 300, 'ok', 'A'],
    [0, 1, 'dropped', 'A'],
    [0, 1, 'temporary', 'B'],
    [0, 1, 'timeout', 'B'],
  ],
  longSessions: [
    { store: 'A', local: 'x:1', loggedIn: true },
    { store: 'A', local: 'x:2', loggedIn: true, lostAt: 5 },
    { store: 'B', local: '', loggedIn: false },
  ],
  sampleErrors: [],
  cpuMicros: 0,
};

describe('legitFigures', () => {
  it('counts logins (a dropped session did log in), failures by kind and drops', () => {
    expect(legitFigures(steady, 2)).toEqual({
      logins: 3,
      loginsPerSecond: 1.5,
      failed: 2,
      failedBy: { temporary: 1, timeout: 1 },
      dropped: 2,
      longSessions: 3,
      longLost: 1,
      longNotLoggedIn: 1,
      cycleMsMedian: 200,
      cycleMsP90: 300,
    });
  });
});

describe('attackAddresses', () => {
  it('keeps attackers and legitimate clients on different addresses, in one /24 if given', () => {
    const two = attackAddresses(undefined);
    expect([two.attacker(1), two.legit(1)]).toEqual(['127.0.7.1', '127.0.8.1']);
    const one = attackAddresses('127.0.22');
    expect([one.attacker(5), one.legit(1), one.legit(16)]).toEqual([
      '127.0.22.5',
      '127.0.22.101',
      '127.0.22.116',
    ]);
    expect(() => attackAddresses('10.0.0')).toThrow(/loopback/);
  });
});

describe('attacker outcomes', () => {
  it('spreads slowloris over load processes of at most perProcess connections', () => {
    const jobs = attackJobs('slowloris', { host: 'h', port: 1 }, 1000, 'u');
    const total = jobs.reduce((s, j) => s + (j.connections ?? 0), 0);
    expect(total).toBe(ATTACKS.slowloris.connections);
    expect(jobs.every((j) => (j.connections ?? 0) <= ATTACKS.slowloris.perProcess)).toBe(true);
    expect(attackJobs('wrongpass', { host: 'h', port: 1 }, 1000, 'u')).toHaveLength(1);
  });
  it('merges the summaries of several processes', () => {
    const m = mergeSummaries([
      summary({ connections: 2, stillOpen: 2, closedAfterMs: [5], answers: ['x'], cpuMicros: 3 }),
      summary({ connections: 3, closedByServer: 1, closedAfterMs: [7], answers: ['x', 'y'] }),
    ]);
    expect(m).toMatchObject({
      connections: 5,
      stillOpen: 2,
      closedByServer: 1,
      closedAfterMs: [5, 7],
      answers: ['x', 'y'],
      cpuMicros: 3,
    });
    expect(mergeSummaries([])).toBeUndefined();
  });
  it('gives a median with its maximum, in seconds', () => {
    expect(timeSpread([])).toBe('');
    expect(timeSpread([2000])).toBe('2.0 s');
    expect(timeSpread([1000, 2000, 12_000])).toBe('2.0 s (median; max 12 s)');
    expect(timeSpread([30, 40])).toBe('0.04 s');
  });
  it('says what happened to each connection, in words', () => {
    expect(
      describeOutcome(
        summary({
          attack: 'slowloris',
          connections: 5000,
          refusedAtConnect: 10,
          errors: ['ECONNREFUSED'],
          pendingAtConnect: 5,
          greetingDelayMs: [100, 3000],
          greetingRefused: 20,
          closedByServer: 3,
          closedAfterMs: [180_000, 180_000, 180_000],
          stillOpen: 4962,
        }),
      ),
    ).toBe(
      '5,000 connections; 10 refused at connect (ECONNREFUSED); 5 not yet accepted at the end; greeting delayed by 1.6 s (median; max 3.0 s); 20 greeting refused; 3 closed after 180 s; 4,962 still open at the end',
    );
    expect(
      describeOutcome(
        summary({ attack: 'wrongpass', connections: 3, answerDelayMs: [2000, 2000, 4000] }),
      ),
    ).toBe('3 connections; 3 answered after 2.0 s (median; max 4.0 s)');
    expect(
      describeOutcome(
        summary({ attack: 'alpaca', connections: 1, reflected: 1, answers: ['POST BAD x'] }),
      ),
    ).toBe('1 connections; 1 answers echoed the request; answers: "POST BAD x"');
  });
});

describe('the attack report', () => {
  const phase = (p: AttackPhase['phase'], perSecond: number, dropped = 0): AttackPhase => ({
    phase: p,
    legit: { ...legitFigures(steady, 1), loginsPerSecond: perSecond, dropped },
    rssStartMiB: 50,
    rssPeakMiB: 80,
    rssEndMiB: 60,
    proxyCpuPercent: 42,
    cpu: {
      proxy: 50,
      slapd: 10,
      dovecot: 20,
      legit: 15,
      ...(p === 'none' ? {} : { attackers: 5 }),
    },
    proxyProcessesGone: p === 'lonecr' ? 'all' : 0,
    attackers: p === 'none' ? [] : [summary({ attack: 'slowloris', connections: 1 })],
    sampleErrors: [],
  });
  const report: AttackReport = {
    date: '2026-01-02T00:00:00.000Z',
    machine: 'box',
    commit: 'abc1234',
    load: '1.0 / 1.0 / 1.0 at the start, 2.0 / 1.0 / 1.0 at the end',
    target: 'mmp N=0',
    phaseSeconds: 20,
    leadSeconds: 8,
    params: ATTACKS,
    legitParams: LEGIT,
    phases: [phase('none', 100), phase('slowloris', 95), phase('lonecr', 50, 3)],
  };
  it('runs each attacker phase between two baselines, and compares with their mean', () => {
    expect(attackPhaseOrder(['slowloris', 'noread'])).toEqual([
      'none',
      'slowloris',
      'none',
      'noread',
      'none',
      'all',
      'none',
    ]);
    expect(attackPhaseOrder(['alpaca'])).toEqual(['none', 'alpaca', 'none']);
    const paired: AttackReport = {
      ...report,
      phases: [
        phase('none', 100),
        phase('slowloris', 90),
        phase('none', 80),
        phase('noread', 45),
        phase('none', 70),
      ],
    };
    const lines = attackTable(paired).split('\n');
    // 90 ÷ mean(100, 80); 45 ÷ mean(80, 70)
    expect(lines[3]).toMatch(/slowloris .*\| 1\.00× met/);
    expect(lines[4]).toMatch(/no attackers .*\| 80\.0 .*\| 1\.00×/);
    expect(lines[5]).toMatch(/commands, never read .*\| 0\.60× missed/);
    // without a baseline after it, the one before
    const open: AttackReport = { ...report, phases: paired.phases.slice(0, 4) };
    expect(attackTable(open).split('\n')[5]).toMatch(/commands, never read .*\| 0\.56× missed/);
  });
  it('compares each phase with the one without attackers, against the goals', () => {
    const lines = attackTable(report).split('\n');
    expect(lines[2]).toMatch(/no attackers .*\| 100\.0 .*\| 1\.00×/);
    expect(lines[3]).toMatch(
      /slowloris .*\| 95\.0 .*\| 0\.95× met .*\| 0 met .*\| 50 → 80 .*\| 42 %/,
    );
    expect(lines[4]).toMatch(
      /lone-CR flood .*\| 0\.50× missed .*\| 3 missed .*50 → 80 \(proxy died\)/,
    );
  });
  it("gives each part's CPU and the proxy's CPU per legitimate login", () => {
    // 50 % of a core for 20 s over 3 logins
    expect(proxyMsPerLogin(phase('none', 100), 20)).toBeCloseTo(10_000 / 3);
    const lines = cpuTable(report).split('\n');
    expect(lines[2]).toMatch(
      /no attackers .*\| 50 % .*\| 10 % .*\| 20 % .*\| 15 % .*\| — .*\| 3,333\.33 .*\| 200 \(300\)/,
    );
    expect(lines[3]).toMatch(/slowloris .*\| 5 % /);
  });
  it('lists the attackers of every phase with their parameters', () => {
    expect(attackersTable(report).split('\n')).toHaveLength(2 + 2);
    const text = formatAttackReport(report);
    expect(text).toContain('commit abc1234');
    expect(text).toContain('5,000 connections from 127.0.7.1');
  });
  it('says whether and how the processes were pinned', () => {
    expect(formatAttackReport(report)).toContain('Not pinned: the scheduler places every process');
    const pinned = formatAttackReport({
      ...report,
      pinned: 'load generator on CPU 0, proxy on CPU 1',
    });
    expect(pinned).toMatch(/^### Attack benchmark .* \(pinned\)$/m);
    expect(pinned).toContain('Pinned: load generator on CPU 0, proxy on CPU 1; the attackers');
  });
});
