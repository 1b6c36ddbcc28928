import { describe, expect, it } from 'vitest';
import { MAX_PROXY_HEADER_BYTES } from './limits.js';
import { type HeaderScan, scanProxyHeader } from './proxyHeader.js';

const SIG = '0d0a0d0a000d0a515549540a';
const hex = (h: string): Buffer => Buffer.from(h.replace(/\s/g, ''), 'hex');
const text = (s: string): Buffer => Buffer.from(s, 'latin1');

/** Scan one byte more at a time until the answer is not `more`. */
function scanBytewise(input: Buffer): HeaderScan {
  for (let n = 1; n <= input.length; n++) {
    const r = scanProxyHeader(input.subarray(0, n));
    if (r.kind !== 'more') return r;
  }
  return { kind: 'more' };
}

describe('PROXY protocol v1', () => {
  it('reads TCP4 and TCP6 lines and says how many bytes they took', () => {
    const input = text('PROXY TCP4 192.0.2.7 198.51.100.1 51234 143\r\na LOGIN x y\r\n');
    expect(scanProxyHeader(input)).toEqual({
      kind: 'header',
      length: 45,
      header: {
        version: 1,
        command: 'proxy',
        addresses: {
          clientIp: '192.0.2.7',
          clientPort: 51234,
          serverIp: '198.51.100.1',
          serverPort: 143,
        },
      },
    });
    expect(scanProxyHeader(text('PROXY TCP6 2001:DB8:0::7 ::1 1 65535\r\n'))).toMatchObject({
      kind: 'header',
      header: {
        addresses: { clientIp: '2001:db8::7', serverIp: '::1', clientPort: 1, serverPort: 65535 },
      },
    });
  });

  it('takes UNKNOWN (with or without addresses) as no client address', () => {
    expect(scanProxyHeader(text('PROXY UNKNOWN\r\n'))).toEqual({
      kind: 'header',
      length: 15,
      header: { version: 1, command: 'local' },
    });
    expect(
      scanProxyHeader(text('PROXY UNKNOWN ffff:f...f ffff:f...f 65535 65535\r\n')),
    ).toMatchObject({
      kind: 'header',
      header: { command: 'local' },
    });
  });

  it.each([
    ['a client speaking first', 'a1 CAPABILITY\r\n'],
    ['lower case', 'proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n'],
    ['an unknown family', 'PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n'],
    ['TCP4 with IPv6 addresses', 'PROXY TCP4 ::1 ::1 1 2\r\n'],
    ['TCP6 with IPv4 addresses', 'PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n'],
    ['a port above 65535', 'PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n'],
    ['a port with a leading zero', 'PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n'],
    ['a signed port', 'PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n'],
    ['two spaces', 'PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n'],
    ['a missing port', 'PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n'],
    ['a bare LF', 'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n'],
    ['a zone id', 'PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n'],
    ['a host name', 'PROXY TCP4 localhost 5.6.7.8 1 2\r\n'],
  ])('refuses %s', (_why, input) => {
    expect(scanProxyHeader(text(input)).kind).toBe('invalid');
    expect(scanBytewise(text(input)).kind).toBe('invalid');
  });

  it('refuses a line longer than 107 bytes without waiting for its end', () => {
    const long = text(`PROXY UNKNOWN ${'x'.repeat(200)}`);
    expect(scanBytewise(long)).toEqual({
      kind: 'invalid',
      reason: 'v1 header longer than 107 bytes',
    });
    expect(scanProxyHeader(long.subarray(0, 106)).kind).toBe('more');
  });

  it('refuses a client that is not a balancer at its first byte', () => {
    expect(scanProxyHeader(text('a')).kind).toBe('invalid');
    expect(scanProxyHeader(text('PROXY')).kind).toBe('more');
    expect(scanProxyHeader(text('PROXX')).kind).toBe('invalid');
  });
});

describe('PROXY protocol v2', () => {
  it('reads a PROXY command over TCP/IPv4 and leaves what follows', () => {
    const input = Buffer.concat([
      hex(`${SIG} 21 11 000c c0000207 c6336401 c822 008f`),
      text('a LOGIN'),
    ]);
    expect(scanProxyHeader(input)).toEqual({
      kind: 'header',
      length: 28,
      header: {
        version: 2,
        command: 'proxy',
        addresses: {
          clientIp: '192.0.2.7',
          clientPort: 51234,
          serverIp: '198.51.100.1',
          serverPort: 143,
        },
      },
    });
  });

  it('reads TCP/IPv6, an IPv4-mapped client as IPv4', () => {
    const v6 = hex(
      `${SIG} 21 21 0024 20010db8000000000000000000000007 00000000000000000000ffffc6336401 0001 0002`,
    );
    expect(scanProxyHeader(v6)).toMatchObject({
      kind: 'header',
      length: 52,
      header: { addresses: { clientIp: '2001:db8::7', serverIp: '198.51.100.1' } },
    });
  });

  it("accepts LOCAL (HAProxy's health check: UNSPEC, length 0) as no client address", () => {
    expect(scanProxyHeader(hex(`${SIG} 20 00 0000`))).toEqual({
      kind: 'header',
      length: 16,
      header: { version: 2, command: 'local' },
    });
  });

  it('skips TLVs within the declared length', () => {
    // PP2_TYPE_ALPN "imap", PP2_TYPE_AUTHORITY "mail.example", a NOOP
    const tlvs = '01 0004 696d6170 02 000c 6d61696c2e6578616d706c65 04 0000';
    const input = hex(`${SIG} 21 11 0023 c0000207 c6336401 c822 008f ${tlvs} 2a`);
    expect(scanProxyHeader(input)).toMatchObject({
      kind: 'header',
      length: 16 + 0x23,
      header: { addresses: { clientIp: '192.0.2.7' } },
    });
  });

  it.each([
    ['version 1 in the binary form', `${SIG} 11 11 000c c0000207 c6336401 c822 008f`],
    ['an unknown command', `${SIG} 22 11 000c c0000207 c6336401 c822 008f`],
    ['UDP', `${SIG} 21 12 000c c0000207 c6336401 c822 008f`],
    ['a UNIX socket', `${SIG} 21 31 00d8 ${'00'.repeat(216)}`],
    ['an unknown family', `${SIG} 21 41 000c c0000207 c6336401 c822 008f`],
    ['a length shorter than the IPv4 addresses', `${SIG} 21 11 0008 c0000207 c6336401`],
    ['a length shorter than the IPv6 addresses', `${SIG} 21 21 000c c0000207 c6336401 c822 008f`],
  ])('refuses %s', (_why, h) => {
    expect(scanProxyHeader(hex(h)).kind).toBe('invalid');
    expect(scanBytewise(hex(h)).kind).toBe('invalid');
  });

  it(`refuses a declared length beyond ${MAX_PROXY_HEADER_BYTES} bytes before it arrives`, () => {
    expect(scanProxyHeader(hex(`${SIG} 21 11 ffff c0000207`))).toEqual({
      kind: 'invalid',
      reason: `v2 header of ${16 + 0xffff} bytes, more than ${MAX_PROXY_HEADER_BYTES}`,
    });
    const largest = MAX_PROXY_HEADER_BYTES - 16;
    const ok = Buffer.concat([
      hex(`${SIG} 21 11 ${largest.toString(16).padStart(4, '0')} c0000207 c6336401 c822 008f`),
      Buffer.alloc(largest - 12),
    ]);
    expect(scanProxyHeader(ok)).toMatchObject({ kind: 'header', length: MAX_PROXY_HEADER_BYTES });
    expect(scanProxyHeader(ok.subarray(0, -1)).kind).toBe('more');
  });

  it('refuses a wrong signature at its first wrong byte', () => {
    expect(scanProxyHeader(hex('0d0a0d0a00')).kind).toBe('more');
    expect(scanProxyHeader(hex('0d0a0d0a01')).kind).toBe('invalid');
  });
});
