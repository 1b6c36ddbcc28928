/**
 * The addresses of a client connection, as told to the store when ForwardClientAddress is on
 * (IMAP ID `x-originating-ip`, POP3 `XCLIENT`), so that the store's log, its per-IP limits and
 * its authentication policy see the user's address rather than the proxy's. A store believes
 * them only from an address it trusts (Dovecot: `login_trusted_networks`).
 */

import { BlockList, isIP } from 'node:net';
import { type IpNetwork, normalizeAddress } from '@mmp/config';

export interface ConnectionAddresses {
  clientIp: string;
  clientPort: number;
  /** The proxy's own address and port the client connected to. */
  serverIp: string;
  serverPort: number;
}

/**
 * A socket's address as the multiplexor uses it everywhere (log records, UidSearch `%C`/`%S`, the
 * vdmap, what is forwarded to the store): IPv4 in dot-quad, as the guide's PreAuth line asks.
 * A dual-stack listener (ListenPort a bare port) reports IPv4 clients as IPv4-mapped IPv6
 * (`::ffff:192.0.2.7`, RFC 4291 §2.5.5.2): unmapped here, once, where the connection is
 * accepted. IPv6 is put in its RFC 5952 form; anything else (a zone id) is kept as given.
 */
export function plainAddress(address: string | undefined): string {
  if (address === undefined) return '';
  return normalizeAddress(address) ?? address;
}

/**
 * An address fit to be forwarded, or undefined. Anything that is not an IP literal is refused
 * rather than sent, though the socket only ever gives literals.
 */
export function forwardableIp(ip: string): string | undefined {
  const plain = plainAddress(ip);
  return isIP(plain) === 0 ? undefined : plain;
}

/** Both ends, each address made forwardable; undefined when either is not an IP literal. */
export function forwardable(a: ConnectionAddresses): ConnectionAddresses | undefined {
  const clientIp = forwardableIp(a.clientIp);
  const serverIp = forwardableIp(a.serverIp);
  if (clientIp === undefined || serverIp === undefined) return undefined;
  return { clientIp, clientPort: a.clientPort, serverIp, serverPort: a.serverPort };
}

/** Matchers built once per list of networks (a runtime's settings hold the list). */
const matchers = new WeakMap<readonly IpNetwork[], BlockList>();
/** Whether `ip` (an IPv4-mapped IPv6 address as IPv4) lies in one of `networks`; node:net's
 * BlockList matches both families. */
export function inNetworks(ip: string, networks: readonly IpNetwork[]): boolean {
  const a = normalizeAddress(ip);
  if (a === undefined || networks.length === 0) return false;
  let list = matchers.get(networks);
  if (list === undefined) {
    list = new BlockList();
    for (const n of networks) list.addSubnet(n.address, n.prefix, n.family === 4 ? 'ipv4' : 'ipv6');
    matchers.set(networks, list);
  }
  return list.check(a, isIP(a) === 4 ? 'ipv4' : 'ipv6');
}
