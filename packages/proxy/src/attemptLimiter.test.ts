import { describe, expect, it } from 'vitest';
import { StoreAttempts } from './attemptLimiter.js';

const A = '127.0.0.2:143';
const B = '127.0.0.3:143';

describe('StoreAttempts', () => {
  it('allows at most the cap in flight per store, and again once one ends', () => {
    const s = new StoreAttempts();
    const one = s.acquire(A, 2);
    const two = s.acquire(A, 2);
    expect(one.ok && two.ok).toBe(true);
    const three = s.acquire(A, 2);
    expect(three.ok).toBe(false);
    expect(three.ok ? '' : three.reason).toMatch(/2 connection attempts already in flight/);
    expect(s.acquire(B, 2).ok).toBe(true); // per store
    if (one.ok) one.release('answered');
    expect(s.acquire(A, 2).ok).toBe(true);
  });

  it('a release counts once', () => {
    const s = new StoreAttempts();
    const one = s.acquire(A, 1);
    if (!one.ok) throw new Error('refused');
    one.release('answered');
    one.release('answered');
    expect(s.inFlight(A)).toBe(0);
    expect(s.acquire(A, 1).ok).toBe(true);
    expect(s.acquire(A, 1).ok).toBe(false);
  });

  it('skips a store that timed out for the down period, then lets one probe through', () => {
    let t = 0;
    const s = new StoreAttempts(30_000, () => t);
    const first = s.acquire(A, 10);
    if (!first.ok) throw new Error('refused');
    first.release('timeout');
    t = 29_999;
    expect(s.acquire(A, 10).ok).toBe(false);
    t = 30_000;
    const probe = s.acquire(A, 10);
    expect(probe.ok).toBe(true);
    expect(s.acquire(A, 10).ok).toBe(false); // only one probe
    if (!probe.ok) return;
    probe.release('timeout'); // still hung: down again
    t = 59_999;
    expect(s.acquire(A, 10).ok).toBe(false);
    t = 60_000;
    const second = s.acquire(A, 10);
    if (!second.ok) throw new Error('refused');
    second.release('answered'); // back: no longer down
    expect(s.acquire(A, 10).ok && s.acquire(A, 10).ok).toBe(true);
  });

  it('forgets healthy idle stores', () => {
    const s = new StoreAttempts();
    const a = s.acquire(A, 1);
    if (a.ok) a.release('answered');
    expect(s.inFlight(A)).toBe(0);
  });
});
