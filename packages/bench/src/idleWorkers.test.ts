import { describe, expect, it } from 'vitest';
import { IDLE_SETTLE_SECONDS, type IdleMeasure, idleNote, idleWorkers } from './bench.js';

describe('idleWorkers: NumThreads for an idle ramp', () => {
  it('gives mmp N=2 enough workers for 50,000 sessions under 20,000 descriptors each', () => {
    const n = idleWorkers('mmp2', 50_000);
    expect(n).toBe(6);
    // two descriptors per session, 256 kept back: what the proxy caps a process at
    expect(50_000 / n).toBeLessThanOrEqual((20_000 - 256) / 2);
  });
  it('keeps at least 2 workers for a small ramp', () => {
    expect(idleWorkers('mmp2', 5_000)).toBe(2);
    expect(idleWorkers('nginx', 5_000)).toBe(2);
  });
  it('leaves mmp N=0 one process and perdition without workers', () => {
    expect(idleWorkers('mmp0', 50_000)).toBe(0);
    expect(idleWorkers('perdition', 50_000)).toBe(0);
  });
  it('takes --idle-threads for mmp N=2 only', () => {
    expect(idleWorkers('mmp2', 50_000, 8)).toBe(8);
    expect(idleWorkers('nginx', 50_000, 8)).toBe(6);
    expect(idleWorkers('mmp0', 50_000, 8)).toBe(0);
  });
});

describe('idleNote: what the notes say of an idle ramp', () => {
  const ramp: IdleMeasure = {
    held: 50_000,
    seconds: 101,
    stopReason: 'target reached',
    baseline: 418 * 1024 ** 2,
    rss: 791 * 1024 ** 2,
    bytesPerSession: 7.6 * 1024,
    pssPerSession: 7.5 * 1024,
    processes: 7,
    errors: [],
  };
  it('gives the reading after the ramp, and the one after the idle hold when there is one', () => {
    expect(idleNote('mmp N=2', ramp, 6)).toBe(
      'mmp N=2 idle: 50,000 sessions in 101 s (target reached), 7 proxy process(es) (6 workers asked), RSS 418 → 791 MiB, PSS 7.5 KiB/session',
    );
    const settled = {
      ...ramp,
      settled: {
        seconds: 30,
        held: 49_990,
        bytesPerSession: 5.2 * 1024,
        pssPerSession: 5.1 * 1024,
      },
    };
    expect(idleNote('mmp N=2', settled, 6)).toContain(
      'PSS 7.5 KiB/session; after 30 s idle 49,990 sessions, 5.2 KiB RSS and 5.1 KiB PSS per session',
    );
  });
  it('says how many packets the kernel dropped at the loopback backlog meanwhile', () => {
    expect(idleNote('mmp N=2', { ...ramp, droppedPackets: 4120 }, 6)).toMatch(
      /PSS 7\.5 KiB\/session; 4,120 loopback packets dropped \(softnet_stat\)$/,
    );
    expect(idleNote('mmp N=2', { ...ramp, droppedPackets: 0 }, 6)).toContain(
      '0 loopback packets dropped',
    );
  });
});

describe('the idle hold before the second memory reading', () => {
  it("lasts long enough for V8's memory reducer to give the logins' memory back (30 s did not)", () => {
    expect(IDLE_SETTLE_SECONDS.full).toBeGreaterThanOrEqual(120);
  });
});
