import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  ADMIT,
  AuthPenalty,
  ConnectionCounts,
  FullServerReport,
  RELEASE,
  addressGroup,
  admitConnection,
  descriptorCap,
} from './clientLimits.js';
import { localFleet } from './ipc.js';
import { AUTH_PENALTY_FORGET_MS, DESCRIPTOR_RESERVE, FULL_REPORT_MS } from './limits.js';
import { inNetworks } from './clientAddress.js';
import { recordingLog } from './test-support/recordingLog.js';

describe('address groups', () => {
  it('IPv4 by the prefix, IPv6 by its /64, IPv4-mapped IPv6 as IPv4', () => {
    expect(addressGroup('192.0.2.77', 32)).toBe('192.0.2.77/32');
    expect(addressGroup('192.0.2.77', 24)).toBe('192.0.2.0/24');
    expect(addressGroup('192.0.2.77', 20)).toBe('192.0.0.0/20');
    expect(addressGroup('::ffff:192.0.2.77', 24)).toBe('192.0.2.0/24');
    expect(addressGroup('2001:db8:1:2:aaaa::1', 32)).toBe('2001:db8:1:2::/64');
    expect(addressGroup('2001:DB8:1:2:ffff:ffff:ffff:ffff', 32)).toBe('2001:db8:1:2::/64');
  });

  it('exempt networks: v4 and v6, IPv4-mapped IPv6 as IPv4', () => {
    const nets = [
      { address: '10.0.0.0', family: 4, prefix: 8 },
      { address: '192.0.2.7', family: 4, prefix: 32 },
      { address: '2001:db8::', family: 6, prefix: 32 },
    ] as const;
    expect(inNetworks('10.200.1.1', nets)).toBe(true);
    expect(inNetworks('11.0.0.1', nets)).toBe(false);
    expect(inNetworks('192.0.2.7', nets)).toBe(true);
    expect(inNetworks('192.0.2.8', nets)).toBe(false);
    expect(inNetworks('2001:db8:ffff::1', nets)).toBe(true);
    expect(inNetworks('2001:db9::1', nets)).toBe(false);
    expect(inNetworks('::ffff:10.0.0.1', nets)).toBe(true);
  });
});

describe('ConnectionCounts', () => {
  it('refuses over the global and the per-group cap; a release makes room once', () => {
    const counts = new ConnectionCounts({
      max: 3,
      perAddress: 2,
      prefix4: 24,
      exempt: [{ address: '10.0.0.1', family: 4, prefix: 32 }],
    });
    const a = counts.admit('192.0.2.1');
    const b = counts.admit('192.0.2.2');
    expect(a.ok && b.ok).toBe(true);
    expect(counts.admit('192.0.2.3')).toEqual({ ok: false, refused: 'address-full' });
    const exempt = counts.admit('10.0.0.1');
    expect(exempt.ok).toBe(true);
    expect(counts.admit('10.0.0.1')).toEqual({ ok: false, refused: 'server-full' });
    if (a.ok) {
      a.release();
      a.release(); // twice counts once
    }
    expect(counts.connections).toBe(2);
    expect(counts.admit('192.0.2.4').ok).toBe(true);
    expect(counts.admit('198.51.100.1')).toEqual({ ok: false, refused: 'server-full' });
  });
});

describe('admitConnection with the counts in this process (NumThreads 0)', () => {
  it('answers in the accepting turn; the descriptor cap and the server counts still refuse, a release frees at once', () => {
    const { primary, worker } = localFleet();
    const counts = (max: number): ConnectionCounts =>
      new ConnectionCounts({ max, perAddress: Number.MAX_SAFE_INTEGER, prefix4: 32, exempt: [] });
    // The primary's side as clientLimitsService keeps it: the server's counts, by id.
    const server = counts(1);
    const held = new Map<number, () => void>();
    primary.handle(ADMIT, ({ ip }) => {
      const a = server.admit(ip);
      if (!a.ok) return a;
      held.set(held.size + 1, () => a.release());
      return { ok: true as const, id: held.size };
    });
    primary.handle(RELEASE, ({ id }) => held.get(id)?.());
    const local = counts(2);
    const first = admitConnection(worker, local, '192.0.2.1');
    if (first instanceof Promise) throw new Error('answered later, not in this turn');
    expect(first.ok).toBe(true);
    expect(admitConnection(worker, local, '192.0.2.2')).toEqual({
      ok: false,
      refused: 'server-full',
      limit: 'MaxClientConnections',
    });
    // A process at its descriptor cap refuses without asking the server.
    const second = admitConnection(worker, counts(0), '192.0.2.3');
    expect(second).toEqual({ ok: false, refused: 'server-full', limit: 'descriptor cap' });
    if (first.ok) first.release();
    const again = admitConnection(worker, local, '192.0.2.2');
    if (again instanceof Promise) throw new Error('answered later, not in this turn');
    expect(again.ok).toBe(true);
  });
});

describe('AuthPenalty', () => {
  it('doubles per failure of a group up to the cap; success clears its own group only', () => {
    let now = 0;
    const p = new AuthPenalty({ firstMs: 2000, maxMs: 15_000 }, 32, () => now);
    expect([1, 2, 3, 4, 5].map(() => p.failed('192.0.2.1'))).toEqual([
      2000, 4000, 8000, 15_000, 15_000,
    ]);
    expect(p.failed('192.0.2.2')).toBe(2000);
    p.succeeded('192.0.2.2');
    expect(p.failed('192.0.2.1')).toBe(15_000);
    expect(p.failed('192.0.2.2')).toBe(2000);
    // IPv6: one /64 is one group.
    expect(p.failed('2001:db8::1')).toBe(2000);
    expect(p.failed('2001:db8::2')).toBe(4000);
    // Forgotten after a quiet while.
    now += AUTH_PENALTY_FORGET_MS;
    expect(p.failed('192.0.2.1')).toBe(2000);
  });
});

describe('descriptorCap', () => {
  const limits = (soft: string): string =>
    `Limit                     Soft Limit           Hard Limit           Units\nMax open files            ${soft}                 1048576              files\n`;

  it('keeps DESCRIPTOR_RESERVE and two descriptors per client', () => {
    expect(descriptorCap(10_000, limits('1024'))).toBe((1024 - DESCRIPTOR_RESERVE) / 2);
    expect(descriptorCap(100, limits('1024'))).toBe(100);
    expect(descriptorCap(10_000, limits('unlimited'))).toBe(10_000);
    expect(descriptorCap(10_000, undefined)).toBe(10_000);
  });
});

describe('FullServerReport: one record of a full server at most once a minute', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('the first refusal at once, the rest of the minute as one record with the count, at LogLevel 0', () => {
    vi.useFakeTimers();
    const { log, records } = recordingLog();
    const report = new FullServerReport(log, FULL_REPORT_MS);
    const said = (): unknown[] =>
      records
        .filter((r) => r.msg === 'connections refused: the server is full')
        .map((r) => r.fields);

    report.refusedBy('descriptor cap');
    expect(said()).toEqual([{ refused: 1, limit: 'descriptor cap' }]);
    expect(records[0]?.level).toBe('lifecycle');
    for (let i = 0; i < 500; i++)
      report.refusedBy(i % 2 === 0 ? 'descriptor cap' : 'MaxClientConnections');
    vi.advanceTimersByTime(FULL_REPORT_MS - 1);
    expect(said()).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(said()).toEqual([
      { refused: 1, limit: 'descriptor cap' },
      { refused: 500, limit: 'descriptor cap, MaxClientConnections', sinceLastMs: FULL_REPORT_MS },
    ]);

    // Quiet for longer than a minute: the next refusal is said at once again.
    vi.advanceTimersByTime(5 * FULL_REPORT_MS);
    expect(said()).toHaveLength(2);
    report.refusedBy('MaxClientConnections');
    expect(said().at(-1)).toEqual({
      refused: 1,
      limit: 'MaxClientConnections',
      sinceLastMs: 5 * FULL_REPORT_MS,
    });
    // A stop says what is pending.
    report.refusedBy('MaxClientConnections');
    report.close();
    expect(said()).toHaveLength(4);
    report.close();
    expect(said()).toHaveLength(4);
  });
});
