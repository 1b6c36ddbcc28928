import { describe, expect, it } from 'vitest';
import { idleWorkers } from './bench.js';

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
