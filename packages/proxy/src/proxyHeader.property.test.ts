/**
 * The PROXY header scanner against an independent implementation, `proxy-protocol-js` (its
 * builder makes the headers, its parser reads what ours accepts), and against itself: however
 * TCP splits the bytes, the answer is the same.
 */

import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import {
  Command,
  INETProtocol,
  IPv4Address,
  IPv4ProxyAddress,
  IPv6Address,
  IPv6ProxyAddress,
  Peer,
  TransportProtocol,
  V1ProxyProtocol,
  V2ProxyProtocol,
} from 'proxy-protocol-js';
import { describe } from 'vitest';
import { normalizeAddress } from '@mmp/config';
import { fuzzTest, splitAt } from '@mmp/testbed/fuzz';
import { type HeaderScan, type ProxiedAddresses, scanProxyHeader } from './proxyHeader.js';

const port = fc.integer({ min: 0, max: 65535 });
const v4 = fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 4, maxLength: 4 });
const v6 = fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 16, maxLength: 16 });
const v4Text = (b: number[]): string => b.join('.');
const v6Text = (b: number[]): string => {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((b[i] ?? 0) << 8) | (b[i + 1] ?? 0)).toString(16));
  return normalizeAddress(groups.join(':')) ?? '';
};
const payload = fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a));

/** What a scan reads from chunks fed one after another, as `readProxyHeader` does. */
function scanChunks(chunks: Buffer[]): HeaderScan {
  let seen = Buffer.alloc(0);
  for (const c of chunks) {
    seen = Buffer.concat([seen, c]);
    const r = scanProxyHeader(seen);
    if (r.kind !== 'more') return r;
  }
  return { kind: 'more' };
}

interface Built {
  bytes: Buffer;
  headerLength: number;
  addresses: ProxiedAddresses;
}

const v1Header: fc.Arbitrary<Built> = fc
  .tuple(fc.boolean(), v4, v4, v6, v6, port, port, payload)
  .map(([six, a4, b4, a6, b6, sp, dp, rest]) => {
    const src = six ? v6Text(a6) : v4Text(a4);
    const dst = six ? v6Text(b6) : v4Text(b4);
    const line = new V1ProxyProtocol(
      six ? INETProtocol.TCP6 : INETProtocol.TCP4,
      new Peer(src, sp),
      new Peer(dst, dp),
    ).build();
    const header = Buffer.from(line, 'latin1');
    return {
      bytes: Buffer.concat([header, rest]),
      headerLength: header.length,
      addresses: { clientIp: src, clientPort: sp, serverIp: dst, serverPort: dp },
    };
  });

const v2Header: fc.Arbitrary<Built> = fc
  .tuple(fc.boolean(), v4, v4, v6, v6, port, port, payload)
  .map(([six, a4, b4, a6, b6, sp, dp, rest]) => {
    const address = six
      ? new IPv6ProxyAddress(IPv6Address.createFrom(a6), sp, IPv6Address.createFrom(b6), dp)
      : new IPv4ProxyAddress(IPv4Address.createFrom(a4), sp, IPv4Address.createFrom(b4), dp);
    const header = Buffer.from(
      new V2ProxyProtocol(Command.PROXY, TransportProtocol.STREAM, address).build(),
    );
    return {
      bytes: Buffer.concat([header, rest]),
      headerLength: header.length,
      addresses: {
        clientIp: six ? v6Text(a6) : v4Text(a4),
        clientPort: sp,
        serverIp: six ? v6Text(b6) : v4Text(b4),
        serverPort: dp,
      },
    };
  });

const cuts = fc.array(fc.nat(), { maxLength: 8 });

/** Bytes near a header: a real one with some of its bytes changed, cut or extended. */
const mutated: fc.Arbitrary<Buffer> = fc
  .tuple(fc.oneof(v1Header, v2Header), fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 3 }))
  .map(([h, changes]) => {
    const b = Buffer.from(h.bytes);
    for (const [at, value] of changes) if (b.length > 0) b[at % b.length] = value;
    return b;
  });

describe('PROXY header scanner', () => {
  fuzzTest(
    'reads the addresses of every v1 and v2 header proxy-protocol-js builds, and stops where it ends',
    fc.property(fc.oneof(v1Header, v2Header), cuts, (h, cut) => {
      const r = scanChunks(splitAt(h.bytes, cut));
      return (
        r.kind === 'header' &&
        r.length === h.headerLength &&
        r.header.command === 'proxy' &&
        isDeepStrictEqual(r.header.addresses, h.addresses)
      );
    }),
    500,
  );

  fuzzTest(
    'what it accepts, proxy-protocol-js reads as the same addresses; split reads give the same answer',
    fc.property(mutated, cuts, (input, cut) => {
      const whole = scanProxyHeader(input);
      const split = scanChunks(splitAt(input, cut));
      if (!isDeepStrictEqual(whole, split)) return false;
      if (whole.kind !== 'header' || whole.header.command !== 'proxy') return true;
      const header = input.subarray(0, whole.length);
      const a = whole.header.addresses;
      if (whole.header.version === 1) {
        const theirs = V1ProxyProtocol.parse(header.toString('latin1'));
        return (
          normalizeAddress(theirs.source.ipAddress) === a.clientIp &&
          theirs.source.port === a.clientPort &&
          normalizeAddress(theirs.destination.ipAddress) === a.serverIp &&
          theirs.destination.port === a.serverPort
        );
      }
      const theirs = V2ProxyProtocol.parse(header).proxyAddress;
      if (!(theirs instanceof IPv4ProxyAddress || theirs instanceof IPv6ProxyAddress)) return false;
      const text = (x: IPv4Address | IPv6Address): string =>
        x instanceof IPv4Address ? v4Text([...x.address]) : v6Text([...x.address]);
      return (
        text(theirs.sourceAddress) === a.clientIp &&
        theirs.sourcePort === a.clientPort &&
        text(theirs.destinationAddress) === a.serverIp &&
        theirs.destinationPort === a.serverPort
      );
    }),
    1000,
  );

  fuzzTest(
    'never throws and never waits beyond its bound on arbitrary bytes',
    fc.property(fc.uint8Array({ maxLength: 3000 }), (a) => {
      const r = scanProxyHeader(Buffer.from(a));
      return r.kind !== 'more' || a.length < 2048;
    }),
    500,
  );
});
