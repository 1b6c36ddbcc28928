import { describe, expect, it } from 'vitest';
import {
  type ChaosReport,
  chaosTable,
  failedText,
  faultResult,
  formatChaosReport,
  sessionOwners,
  timeToFullService,
} from './chaosTable.js';
import type { Attempt, LongSession } from './load/steady.js';

const A = '127.0.0.2';
const B = '127.0.0.3';

describe('timeToFullService', () => {
  it('is the start of the last failed attempt after the fault, followed by a success', () => {
    const attempts: Attempt[] = [
      [0, 10, 'ok', A],
      [50, 1200, 'temporary', A], // started during the fault (it ends at 1000)
      [1100, 1500, 'closed', B],
      [1500, 1600, 'ok', A],
    ];
    expect(timeToFullService(attempts, 1000)).toEqual({ ms: 100 });
  });
  it('is 0 when every attempt that failed had started before the fault ended', () => {
    const attempts: Attempt[] = [
      [900, 31_000, 'timeout', A], // caught by the fault, waited out its time limit
      [950, 1100, 'ok', A],
      [1200, 1300, 'ok', B],
    ];
    expect(timeToFullService(attempts, 1000)).toEqual({ ms: 0 });
  });
  it('is not recovered when no attempt started after the last failure succeeded', () => {
    const attempts: Attempt[] = [
      [1000, 1100, 'ok', A],
      [1100, 2000, 'timeout', A],
      [1500, 1700, 'temporary', B],
    ];
    expect(timeToFullService(attempts, 1000)).toEqual({ notRecovered: true });
  });
  it('counts a session dropped after its login as a failure of service', () => {
    expect(
      timeToFullService(
        [
          [1300, 1350, 'dropped', B],
          [1400, 1500, 'ok', B],
        ],
        1000,
      ),
    ).toEqual({ ms: 300 });
  });
});

describe('sessionOwners', () => {
  it('maps each client address:port of the listener to the process holding it', () => {
    const ss = [
      '0      0          127.0.0.1:40143     127.0.8.3:51000 users:(("node",pid=111,fd=20))',
      '0      0          127.0.0.1:40143     127.0.8.4:51002 users:(("node",pid=222,fd=21))',
      // the proxy's own connection to a store: another local port
      '0      0          127.0.0.1:52000     127.0.0.2:40200 users:(("node",pid=111,fd=22))',
      '0      0    [::ffff:127.0.0.1]:40143 [::ffff:127.0.8.5]:51004 users:(("node",pid=333,fd=9))',
      '',
    ].join('\n');
    const owners = sessionOwners(ss, 40143);
    expect([...owners.entries()]).toEqual([
      ['127.0.8.3:51000', 111],
      ['127.0.8.4:51002', 222],
      ['127.0.8.5:51004', 333],
    ]);
  });
});

function long(store: string, local: string, lostAt?: number): LongSession {
  return { store, local, loggedIn: true, ...(lostAt === undefined ? {} : { lostAt }) };
}

describe('faultResult', () => {
  const attempts: Attempt[] = [
    [0, 5, 'ok', A],
    [10, 20, 'temporary', A],
    [10, 20, 'auth', B],
    [10, 20, 'timeout', B],
    [10, 30, 'dropped', B],
    [40, 50, 'ok', B],
  ];
  const sessions = [
    long(A, '127.0.8.1:1', 25),
    long(B, '127.0.8.2:2', 25),
    long(B, '127.0.8.3:3'),
    { store: A, local: '', loggedIn: false },
  ];
  it('splits failures by answer and sessions by the faulty part', () => {
    const r = faultResult({
      fault: 'store',
      faultStart: 8,
      faultEnd: 28,
      attempts,
      longSessions: sessions,
      faultyStore: A,
      onFaultyPart: (s) => s.store === A,
      notes: [],
    });
    expect(r).toMatchObject({
      durationMs: 20,
      attempts: 6,
      ok: 2,
      failedBy: { temporary: 1, auth: 1, timeout: 1 },
      failedHealthy: 2,
      droppedCycles: 1,
      longSessions: 3,
      lostHealthy: 1,
      lostFaulty: 1,
      recovery: { ms: 0 },
      failedAfterEnd: 0,
      lastFailureAfterEndMs: undefined,
    });
    expect(failedText(r)).toBe('1 / 1 / 1 (1 timeout)');
  });
  it('has no healthy-store count when the fault is not a store', () => {
    const r = faultResult({
      fault: 'slapd',
      faultStart: 8,
      faultEnd: 28,
      attempts,
      longSessions: sessions,
      onFaultyPart: () => false,
      notes: ['slapd down'],
    });
    expect(r.failedHealthy).toBeUndefined();
    expect(r.lostHealthy).toBe(2);
    // with the fault ending at 8, the four failures of 10 all come after it
    const late = faultResult({
      fault: 'slapd',
      faultStart: 0,
      faultEnd: 8,
      attempts,
      longSessions: sessions,
      onFaultyPart: () => false,
      notes: [],
    });
    expect(late).toMatchObject({
      failedAfterEnd: 4,
      lastFailureAfterEndMs: 2,
      recovery: { ms: 2 },
    });
    const report: ChaosReport = {
      date: '2026-01-02T00:00:00.000Z',
      machine: 'box',
      commit: 'abc1234',
      load: '1.0 / 1.0 / 1.0 at the start, 2.0 / 1.0 / 1.0 at the end',
      target: 'mmp',
      threads: 2,
      preSeconds: 5,
      postSeconds: 15,
      concurrency: 8,
      longSessions: 20,
      faults: [r, late],
    };
    const table = chaosTable(report);
    expect(table).toMatch(
      /slapd killed, restarted .*\| 0\.0 s .*\| 2 \/ 6 .*\| — .*\| 2 of 3 missed/,
    );
    expect(formatChaosReport(report)).toContain('- slapd killed, restarted: slapd down');
    expect(formatChaosReport(report)).toContain(
      '- slapd killed, restarted: 4 failed logins started after the fault ended, the last 0.0 s after it',
    );
  });
});
