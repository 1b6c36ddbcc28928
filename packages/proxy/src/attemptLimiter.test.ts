import { describe, expect, it } from 'vitest';
import { type Acquired, StoreAttempts } from './attemptLimiter.js';

const A = '127.0.0.2:143';
const B = '127.0.0.3:143';

function granted(a: Acquired): Extract<Acquired, { ok: true }> {
  if (!a.ok) throw new Error(`refused: ${a.reason}`);
  return a;
}

/** Whether a promise has settled, without waiting for it. */
async function settledNow<T>(p: Promise<T>): Promise<T | 'pending'> {
  return Promise.race([p, new Promise<'pending'>((r) => setImmediate(() => r('pending')))]);
}

describe('StoreAttempts', () => {
  it('holds attempts over the cap until one ends on a store that makes progress (per store)', async () => {
    let t = 0;
    const s = new StoreAttempts(30_000, 3_000, () => t);
    const one = granted(await s.acquire(A, 2));
    granted(await s.acquire(A, 2));
    const third = s.acquire(A, 2);
    expect(await settledNow(third)).toBe('pending');
    granted(await s.acquire(B, 2)); // another store is not affected
    t = 100;
    one.release('answered');
    granted(await third);
    expect(s.inFlight(A)).toBe(2);
  });

  it('refuses at once over the cap when no attempt has finished for the stall time (a hung store)', async () => {
    let t = 0;
    const s = new StoreAttempts(30_000, 3_000, () => t);
    granted(await s.acquire(A, 2));
    granted(await s.acquire(A, 2));
    t = 3_000;
    const r = await s.acquire(A, 2);
    expect(r.ok).toBe(false);
    expect(r.ok ? '' : r.reason).toMatch(/none finished for 3000 ms/);
  });

  it('lets waiting attempts go once the store stalls, without waiting for its timeout', async () => {
    const s = new StoreAttempts(30_000, 50);
    granted(await s.acquire(A, 1));
    const waiting = await s.acquire(A, 1); // resolves after about 50 ms, refused
    expect(waiting.ok).toBe(false);
  });

  it('a release counts once', async () => {
    const s = new StoreAttempts();
    const one = granted(await s.acquire(A, 1));
    one.release('answered');
    one.release('answered');
    expect(s.inFlight(A)).toBe(0);
    granted(await s.acquire(A, 1));
    expect(s.inFlight(A)).toBe(1);
  });

  it('skips a store that timed out for the down period, refusing its waiters too, then lets one probe through', async () => {
    let t = 0;
    const s = new StoreAttempts(30_000, 3_000, () => t);
    const first = granted(await s.acquire(A, 1));
    const waiter = s.acquire(A, 1);
    first.release('timeout');
    expect((await waiter).ok).toBe(false);
    t = 29_999;
    expect((await s.acquire(A, 10)).ok).toBe(false);
    t = 30_000;
    const probe = granted(await s.acquire(A, 10));
    expect((await s.acquire(A, 10)).ok).toBe(false); // only one probe
    probe.release('timeout'); // still hung: down again
    t = 59_999;
    expect((await s.acquire(A, 10)).ok).toBe(false);
    t = 60_000;
    granted(await s.acquire(A, 10)).release('answered'); // back: no longer down
    granted(await s.acquire(A, 10));
    granted(await s.acquire(A, 10));
  });

  it('forgets healthy idle stores', async () => {
    const s = new StoreAttempts();
    granted(await s.acquire(A, 1)).release('answered');
    expect(s.inFlight(A)).toBe(0);
  });
});
