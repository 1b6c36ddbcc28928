import { describe, expect, it } from 'vitest';
import { median, percentile, ratio, summarizeLatencies } from './stats.js';

describe('median', () => {
  it('takes the middle of an odd count, unsorted input', () => {
    expect(median([5, 1, 3])).toBe(3);
  });
  it('averages the two middle values of an even count', () => {
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });
  it('is NaN for no samples and the value for one', () => {
    expect(median([])).toBeNaN();
    expect(median([7])).toBe(7);
  });
  it('does not reorder its input', () => {
    const xs = [3, 1, 2];
    median(xs);
    expect(xs).toEqual([3, 1, 2]);
  });
});

describe('percentile (nearest rank)', () => {
  const hundred = Array.from({ length: 100 }, (_, i) => 100 - i); // 100 … 1
  it('p99 of 1..100 is 99, p100 is the max, p0 and p1 the min', () => {
    expect(percentile(hundred, 99)).toBe(99);
    expect(percentile(hundred, 100)).toBe(100);
    expect(percentile(hundred, 1)).toBe(1);
    expect(percentile(hundred, 0)).toBe(1);
  });
  it('p50 by nearest rank', () => {
    expect(percentile([1, 2, 3, 4], 50)).toBe(2);
  });
  it('p99 of a small sample is its maximum', () => {
    expect(percentile([1, 2, 3, 1000], 99)).toBe(1000);
  });
  it('one slow sample in a thousand stays out of p99', () => {
    const xs = [...Array.from({ length: 999 }, () => 1), 500];
    expect(percentile(xs, 99)).toBe(1);
    expect(percentile(xs, 99.95)).toBe(500);
  });
  it('rejects a percentile outside 0..100', () => {
    expect(() => percentile([1], 101)).toThrow(RangeError);
    expect(() => percentile([1], -1)).toThrow(RangeError);
  });
  it('is NaN for no samples', () => {
    expect(percentile([], 50)).toBeNaN();
  });
});

describe('summarizeLatencies', () => {
  it('gives count, median, p99, min and max', () => {
    const s = summarizeLatencies([3, 1, 2, 10]);
    expect(s).toEqual({ count: 4, median: 2.5, p99: 10, min: 1, max: 10 });
  });
});

describe('ratio', () => {
  it('divides, and is undefined for missing or zero denominators', () => {
    expect(ratio(3, 2)).toBe(1.5);
    expect(ratio(undefined, 2)).toBeUndefined();
    expect(ratio(1, 0)).toBeUndefined();
    expect(ratio(Number.NaN, 1)).toBeUndefined();
  });
});
