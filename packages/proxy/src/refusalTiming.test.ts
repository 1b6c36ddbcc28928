import { describe, expect, it } from 'vitest';
import { MAX_UNKNOWN_USER_HOLD_MS } from './limits.js';
import { RefusalTiming } from './refusalTiming.js';

describe('RefusalTiming', () => {
  it('holds nothing until a store refusal was seen', () => {
    expect(new RefusalTiming().holdFor(5)).toBe(0);
  });

  it('holds an unknown user until about the time a refusal takes', () => {
    const t = new RefusalTiming();
    t.observe(1000);
    expect(t.holdFor(100, () => 0.5)).toBe(900);
    expect(t.holdFor(100, () => 0)).toBe(800);
    expect(t.holdFor(100, () => 1)).toBe(1000);
    expect(t.holdFor(2000, () => 0.5)).toBe(0);
  });

  it('follows a slower refusal at once and a faster one gradually', () => {
    const t = new RefusalTiming();
    t.observe(10);
    t.observe(2000);
    expect(t.holdFor(0, () => 0.5)).toBe(2000);
    t.observe(1000);
    expect(t.holdFor(0, () => 0.5)).toBe(1800);
  });

  it('never holds longer than the limit', () => {
    const t = new RefusalTiming();
    t.observe(60_000);
    expect(t.holdFor(0, () => 1)).toBe(MAX_UNKNOWN_USER_HOLD_MS);
  });
});
