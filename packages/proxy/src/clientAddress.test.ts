import { describe, expect, it } from 'vitest';
import { forwardable, forwardableIp, plainAddress } from './clientAddress.js';

describe('plainAddress: the one form of a socket address used everywhere', () => {
  it('unmaps IPv4-mapped IPv6, what a dual-stack listener reports for IPv4 clients', () => {
    expect(plainAddress('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(plainAddress('::FFFF:192.0.2.7')).toBe('192.0.2.7');
    expect(plainAddress('::ffff:c000:0207')).toBe('192.0.2.7');
  });

  it('keeps IPv4 and IPv6 (in RFC 5952 form), and whatever is not an IP literal', () => {
    expect(plainAddress('10.1.2.3')).toBe('10.1.2.3');
    expect(plainAddress('::1')).toBe('::1');
    expect(plainAddress('2001:DB8:0:0:0:0:0:1')).toBe('2001:db8::1');
    expect(plainAddress('fe80::1%eth0')).toBe('fe80::1%eth0');
    expect(plainAddress(undefined)).toBe('');
  });

  it('forwards only IP literals, IPv4 as dot-quad', () => {
    expect(forwardableIp('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(forwardableIp('not an address')).toBeUndefined();
    expect(
      forwardable({ clientIp: '::ffff:10.0.0.9', clientPort: 5, serverIp: '::1', serverPort: 143 }),
    ).toEqual({ clientIp: '10.0.0.9', clientPort: 5, serverIp: '::1', serverPort: 143 });
  });
});
