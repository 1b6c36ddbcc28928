import { describe, expect, it } from 'vitest';
import { restartDelay } from './workers.js';
import {
  WORKER_RESTART_FIRST_DELAY_MS,
  WORKER_RESTART_MAX_DELAY_MS,
  WORKER_STABLE_AFTER_MS,
} from './limits.js';

describe('restartDelay', () => {
  it('replaces a worker that ran a while at once', () => {
    expect(restartDelay(WORKER_STABLE_AFTER_MS, 5)).toEqual({ delayMs: 0, crashes: 0 });
  });

  it('doubles the delay for each quick death, up to the maximum (no spinning crash loop)', () => {
    let crashes = 0;
    const delays: number[] = [];
    for (let i = 0; i < 12; i++) {
      const r = restartDelay(10, crashes);
      crashes = r.crashes;
      delays.push(r.delayMs);
    }
    expect(delays[0]).toBe(WORKER_RESTART_FIRST_DELAY_MS);
    expect(delays[1]).toBe(2 * WORKER_RESTART_FIRST_DELAY_MS);
    expect(delays.at(-1)).toBe(WORKER_RESTART_MAX_DELAY_MS);
    expect([...delays].sort((a, b) => a - b)).toEqual(delays);
  });
});
