import { describe, expect, it } from 'vitest';
import { Gate } from './gate.js';

describe('Gate', () => {
  it('lets `max` in, queues `maxWaiting`, refuses the next at once; leaving admits the next', async () => {
    const g = new Gate(2, 1);
    const a = await g.enter(60_000);
    const b = await g.enter(60_000);
    expect(a.ok && b.ok).toBe(true);
    const queued = g.enter(60_000);
    expect(await g.enter(60_000)).toEqual({ ok: false, reason: '2 in flight and 1 waiting' });
    if (a.ok) a.leave();
    if (a.ok) a.leave(); // twice counts once
    expect((await queued).ok).toBe(true);
    expect(g.inFlight).toBe(2);
  });

  it('a waiter gives up after its wait', async () => {
    const g = new Gate(1, 5);
    await g.enter(60_000);
    expect(await g.enter(10)).toEqual({
      ok: false,
      reason: '1 in flight, none finished within 10 ms',
    });
  });
});
