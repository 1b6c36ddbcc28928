import { describe, expect, it } from 'vitest';
import { RAMP_BACKLOG, higherBacklog, parseSoftnetDrops } from './loopback.js';

describe('the loopback backlog', () => {
  it('sums the drops of every CPU from softnet_stat (hex, second column)', () => {
    const text = [
      '033fb313 0003cbd3 0000000e 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000',
      '051c8ecb 0004be90 0000001d 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000001',
      '',
    ].join('\n');
    expect(parseSoftnetDrops(text)).toBe(0x3cbd3 + 0x4be90);
  });

  it('gives no figure for what is not softnet_stat', () => {
    expect(parseSoftnetDrops('')).toBeUndefined();
    expect(parseSoftnetDrops('00000001 zz\n')).toBeUndefined();
  });

  it('raises the Linux default and never lowers what an operator set', () => {
    expect(higherBacklog(1000, RAMP_BACKLOG)).toBe(RAMP_BACKLOG);
    expect(higherBacklog(RAMP_BACKLOG, RAMP_BACKLOG)).toBeUndefined();
    expect(higherBacklog(65_536, RAMP_BACKLOG)).toBeUndefined();
  });
});
