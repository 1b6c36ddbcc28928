/**
 * The addresses of a client connection, as told to the store when ForwardClientAddress is on
 * (IMAP ID `x-originating-ip`, POP3 `XCLIENT`), so that the store's log, its per-IP limits and
 * its authentication policy see the user's address rather than the proxy's. A store believes
 * them only from an address it trusts (Dovecot: `login_trusted_networks`).
 */

import { isIP } from 'node:net';

export interface ConnectionAddresses {
  clientIp: string;
  clientPort: number;
  /** The proxy's own address and port the client connected to. */
  serverIp: string;
  serverPort: number;
}

const MAPPED_V4 = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;

/**
 * An address fit to be forwarded, or undefined. A dual-stack listener reports IPv4 clients as
 * `::ffff:a.b.c.d`; the store should log, and match its networks against, the plain IPv4 form.
 * Anything that is not an IP literal is refused rather than sent, though the socket only ever
 * gives literals.
 */
export function forwardableIp(ip: string): string | undefined {
  const plain = MAPPED_V4.exec(ip)?.[1] ?? ip;
  return isIP(plain) === 0 ? undefined : plain;
}

/** Both ends, each address made forwardable; undefined when either is not an IP literal. */
export function forwardable(a: ConnectionAddresses): ConnectionAddresses | undefined {
  const clientIp = forwardableIp(a.clientIp);
  const serverIp = forwardableIp(a.serverIp);
  if (clientIp === undefined || serverIp === undefined) return undefined;
  return { clientIp, clientPort: a.clientPort, serverIp, serverPort: a.serverPort };
}
