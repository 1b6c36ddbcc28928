import { describe, expect, it } from 'vitest';
import { WIDE_RANGE, parsePortRange, widerRange } from './localPorts.js';

describe('the local port range', () => {
  it('reads the kernel’s tab-separated pair', () => {
    expect(parsePortRange('32768\t60999\n')).toEqual({ low: 32768, high: 60999 });
  });

  it('refuses what is not a range of ports', () => {
    expect(parsePortRange('')).toBeUndefined();
    expect(parsePortRange('60999 32768')).toBeUndefined();
    expect(parsePortRange('1024 70000')).toBeUndefined();
    expect(parsePortRange('0 100')).toBeUndefined();
  });

  it('widens the Linux default to every unprivileged port', () => {
    expect(widerRange({ low: 32768, high: 60999 }, WIDE_RANGE)).toEqual({ low: 1024, high: 65535 });
  });

  it('never narrows a range an operator already widened', () => {
    expect(widerRange({ low: 1024, high: 65535 }, WIDE_RANGE)).toBeUndefined();
    expect(widerRange({ low: 500, high: 65535 }, WIDE_RANGE)).toBeUndefined();
    expect(widerRange({ low: 500, high: 60000 }, WIDE_RANGE)).toEqual({ low: 500, high: 65535 });
  });
});
