/**
 * The PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and 2) that a TCP balancer
 * (HAProxy `send-proxy`/`send-proxy-v2`, nginx `proxy_protocol on`, cloud load balancers) sends
 * before the client's first byte, telling us the client's real address.
 *
 * Decision: our own small strict parser rather than an npm one. The libraries on npm
 * (`proxy-protocol-js`, `@balena/proxy-protocol-parser`) decode a header that the caller has
 * already cut out of the stream, which is half the work and the part that needs limits;
 * `findhit-proxywrap` patches `net.Server` and is unmaintained. Here the header is recognised as
 * bytes arrive, a connection that cannot be a header is refused at its first wrong byte, and its
 * size is bounded (MAX_PROXY_HEADER_BYTES). `proxy-protocol-js` stays as the independent oracle
 * of the property tests (`proxyHeader.property.test.ts`).
 */

import { isIPv4, isIPv6 } from 'node:net';
import { normalizeAddress } from '@mmp/config';
import { MAX_PROXY_HEADER_BYTES } from './limits.js';

/** Where the connection really came from, as the balancer says. */
export interface ProxiedAddresses {
  clientIp: string;
  clientPort: number;
  /** The address the client connected to (the balancer's listener). */
  serverIp: string;
  serverPort: number;
}

export type ProxyHeader =
  /**
   * v2 LOCAL (the balancer's own connection, e.g. a health check), v1 `UNKNOWN`, or a v2 PROXY
   * whose family is UNSPEC: no client address is given; the connection's own addresses stand.
   */
  | { version: 1 | 2; command: 'local' }
  | { version: 1 | 2; command: 'proxy'; addresses: ProxiedAddresses };

export type HeaderScan =
  /** Not enough bytes yet to tell; read more. */
  | { kind: 'more' }
  | { kind: 'header'; header: ProxyHeader; /** bytes the header took */ length: number }
  | { kind: 'invalid'; reason: string };

/** The v2 signature: `\r\n\r\n\0\r\nQUIT\n` (section 2.2). */
const V2_SIGNATURE = Buffer.from([
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
]);
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** Section 2.1: a v1 line is at most 107 bytes with its CRLF. */
const V1_MAX_BYTES = 107;
const CR = 0x0d;
const LF = 0x0a;
const V2_FIXED = 16;
const FAMILY_UNSPEC = 0x0;
const FAMILY_INET = 0x1;
const FAMILY_INET6 = 0x2;
const TRANSPORT_UNSPEC = 0x0;
const TRANSPORT_STREAM = 0x1;

/** Does `buffer` start like `prefix` (as far as either goes)? */
function agrees(buffer: Buffer, prefix: Buffer): boolean {
  const n = Math.min(buffer.length, prefix.length);
  return buffer.subarray(0, n).equals(prefix.subarray(0, n));
}

/**
 * Look at the first bytes of a connection. Pure: call it again with more bytes appended until it
 * answers `header` or `invalid` (bytes fed one at a time or all at once give the same answer).
 */
export function scanProxyHeader(buffer: Buffer): HeaderScan {
  if (buffer.length === 0) return { kind: 'more' };
  if (agrees(buffer, V2_SIGNATURE)) {
    return buffer.length < V2_SIGNATURE.length ? { kind: 'more' } : scanV2(buffer);
  }
  if (agrees(buffer, V1_PREFIX)) {
    return buffer.length < V1_PREFIX.length ? { kind: 'more' } : scanV1(buffer);
  }
  return { kind: 'invalid', reason: 'no PROXY protocol header' };
}

function scanV1(buffer: Buffer): HeaderScan {
  const lf = buffer.indexOf(LF);
  const limit = Math.min(V1_MAX_BYTES, MAX_PROXY_HEADER_BYTES);
  if (lf === -1) {
    return buffer.length >= limit
      ? { kind: 'invalid', reason: 'v1 header longer than 107 bytes' }
      : { kind: 'more' };
  }
  if (lf + 1 > limit) return { kind: 'invalid', reason: 'v1 header longer than 107 bytes' };
  if (lf === 0 || buffer[lf - 1] !== CR)
    return { kind: 'invalid', reason: 'v1 header without CRLF' };
  const line = buffer.subarray(0, lf - 1).toString('latin1');
  const r = parseV1Line(line);
  return typeof r === 'string'
    ? { kind: 'invalid', reason: r }
    : { kind: 'header', header: r, length: lf + 1 };
}

/** A decimal port as section 2.1 writes it: 0–65535, no sign, no leading zero. */
function v1Port(text: string): number | undefined {
  if (!/^(0|[1-9][0-9]{0,4})$/.test(text)) return undefined;
  const n = Number(text);
  return n <= 0xffff ? n : undefined;
}

function parseV1Line(line: string): ProxyHeader | string {
  // `PROXY UNKNOWN` may be followed by anything up to the CRLF, which the receiver ignores.
  if (line === 'PROXY UNKNOWN' || line.startsWith('PROXY UNKNOWN ')) {
    return { version: 1, command: 'local' };
  }
  const parts = line.split(' ');
  if (parts.length !== 6) return 'v1 header not of six fields separated by single spaces';
  const [, family, src, dst, sport, dport] = parts as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  const isFamily = family === 'TCP4' ? isIPv4 : family === 'TCP6' ? isIPv6 : undefined;
  if (isFamily === undefined)
    return `v1 header with unknown family ${JSON.stringify(family.slice(0, 16))}`;
  // net.isIPv6 accepts a zone id (`fe80::1%eth0`), which names no remote client.
  if (!isFamily(src) || !isFamily(dst) || src.includes('%') || dst.includes('%')) {
    return `v1 header with an address that is not ${family}`;
  }
  const clientPort = v1Port(sport);
  const serverPort = v1Port(dport);
  if (clientPort === undefined || serverPort === undefined) return 'v1 header with a bad port';
  return {
    version: 1,
    command: 'proxy',
    addresses: {
      clientIp: normalizeAddress(src) ?? src,
      clientPort,
      serverIp: normalizeAddress(dst) ?? dst,
      serverPort,
    },
  };
}

function scanV2(buffer: Buffer): HeaderScan {
  if (buffer.length < V2_FIXED) {
    // Check the version and command as soon as their byte is here.
    if (buffer.length > 12) {
      const vc = v2VersionCommand(buffer[12] ?? 0);
      if ('error' in vc) return { kind: 'invalid', reason: vc.error };
    }
    return { kind: 'more' };
  }
  const vc = v2VersionCommand(buffer[12] ?? 0);
  if ('error' in vc) return { kind: 'invalid', reason: vc.error };
  const { command } = vc;
  const famProto = buffer[13] ?? 0;
  const family = famProto >> 4;
  const transport = famProto & 0x0f;
  const length = buffer.readUInt16BE(14);
  const total = V2_FIXED + length;
  // Bounded before waiting for the rest: a declared 64 KiB of TLVs is refused at once.
  if (total > MAX_PROXY_HEADER_BYTES) {
    return {
      kind: 'invalid',
      reason: `v2 header of ${total} bytes, more than ${MAX_PROXY_HEADER_BYTES}`,
    };
  }
  if (buffer.length < total) return { kind: 'more' };
  const body = buffer.subarray(V2_FIXED, total);
  if (command === 'local') {
    // Section 2.2: a receiver must accept LOCAL and use the connection's own addresses, whatever
    // follows (HAProxy's health checks: family UNSPEC, length 0).
    return { kind: 'header', header: { version: 2, command: 'local' }, length: total };
  }
  if (family === FAMILY_UNSPEC) {
    return { kind: 'header', header: { version: 2, command: 'local' }, length: total };
  }
  if (transport !== TRANSPORT_STREAM && transport !== TRANSPORT_UNSPEC) {
    return { kind: 'invalid', reason: 'v2 header for a datagram transport' };
  }
  // TLVs after the addresses (section 2.2.7: ALPN, authority, SSL, vendor ones) say nothing we
  // act on; they are skipped with the rest of the declared length.
  const ip = family === FAMILY_INET ? V2_INET : family === FAMILY_INET6 ? V2_INET6 : undefined;
  if (ip !== undefined) {
    // Source address, destination address, source port, destination port (section 2.2).
    const n = ip.bytes;
    if (body.length < 2 * n + 4)
      return { kind: 'invalid', reason: `v2 ${ip.name} header shorter than its addresses` };
    return {
      kind: 'header',
      header: {
        version: 2,
        command: 'proxy',
        addresses: {
          clientIp: ip.text(body.subarray(0, n)),
          serverIp: ip.text(body.subarray(n, 2 * n)),
          clientPort: body.readUInt16BE(2 * n),
          serverPort: body.readUInt16BE(2 * n + 2),
        },
      },
      length: total,
    };
  }
  // AF_UNIX (a local socket path) names no network client; anything else is undefined.
  return { kind: 'invalid', reason: `v2 header with address family ${family}, not INET or INET6` };
}

/** The two address families a v2 header may carry a client in: address size and its text. */
const V2_INET = { name: 'INET', bytes: 4, text: (b: Buffer): string => ipv4(b) };
const V2_INET6 = { name: 'INET6', bytes: 16, text: (b: Buffer): string => ipv6(b) };

function v2VersionCommand(byte: number): { command: 'local' | 'proxy' } | { error: string } {
  if (byte >> 4 !== 2) return { error: `v2 header of version ${byte >> 4}` };
  const command = byte & 0x0f;
  if (command === 0) return { command: 'local' };
  if (command === 1) return { command: 'proxy' };
  return { error: `v2 header with command ${command}` };
}

function ipv4(b: Buffer): string {
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}

/** RFC 5952 text; an IPv4-mapped address (`::ffff:a.b.c.d`) becomes the IPv4 address. */
function ipv6(b: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  const text = groups.join(':');
  return normalizeAddress(text) ?? text;
}
