/**
 * PROXY protocol listeners (ProxyProtocol, ProxyProtocolTrustedNetworks): behind a TCP balancer
 * every connection comes from the balancer, which tells the client's real address in a header
 * before the client's first byte (`proxyHeader.ts`). Here, once per accepted connection and
 * before anything else (before the TLS handshake on SSLListenPort), a listener that expects the
 * header refuses a connection from outside the trusted networks, reads the header within
 * PROXY_HEADER_TIMEOUT_MS, and hands the socket on with the client's address; whatever followed
 * the header stays unread on the socket for the session (or the TLS handshake).
 *
 * The client's address from the header then stands wherever the connection's own address would:
 * log records, UidSearch `%C`, ForwardClientAddress, per-address limits (`server.ts` puts it in
 * the session's context). The site (vdmap entry) is still chosen by our own local address, which
 * is the one the balancer connected to.
 */

import type { Socket } from 'node:net';
import type { ConfigValues, IpNetwork } from '@mmp/config';
import { inNetworks, plainAddress } from './clientAddress.js';
import { PROXY_HEADER_TIMEOUT_MS } from './limits.js';
import type { Log } from './log.js';
import { type ProxiedAddresses, scanProxyHeader } from './proxyHeader.js';

export interface ProxyProtocolSettings {
  /** Connections on ListenPort (and a vdmap address's plain port) start with a header. */
  readonly listen: boolean;
  /** Connections on SSLListenPort (and a vdmap address's TLS port) start with a header. */
  readonly sslListen: boolean;
  /** The balancers' networks, as configured. */
  readonly trusted: readonly IpNetwork[];
}

export function proxyProtocolSettingsFrom(v: ConfigValues): ProxyProtocolSettings {
  const listeners = v.ProxyProtocol ?? [];
  return {
    listen: listeners.includes('ListenPort'),
    sslListen: listeners.includes('SSLListenPort'),
    trusted: v.ProxyProtocolTrustedNetworks ?? [],
  };
}

/** Where a proxied connection came from: the client as the header says, and the balancer. */
export interface ProxiedOrigin {
  /** Undefined for a LOCAL header (the balancer's own connection, e.g. a health check). */
  client: ProxiedAddresses | undefined;
  /** The balancer's end of the connection. */
  balancer: string;
}

/**
 * Read the header on a connection to a listener that expects one and call `next` with what it
 * said; anything else (an untrusted source, no header, a malformed or oversized one, silence) is
 * logged at the refusal level and the connection closed without a byte sent.
 */
export function readProxyHeader(
  socket: Socket,
  settings: ProxyProtocolSettings,
  log: Log,
  next: (origin: ProxiedOrigin) => void,
): void {
  const peerIp = plainAddress(socket.remoteAddress);
  const balancer = `${peerIp}:${socket.remotePort ?? 0}`;
  const refuse = (why: string): void => {
    log.at('refusal', 'proxy header', 'connection refused on a PROXY protocol listener', {
      peer: balancer,
      error: why,
    });
    socket.destroy();
  };
  if (!inNetworks(peerIp, settings.trusted)) {
    refuse('not from ProxyProtocolTrustedNetworks');
    return;
  }
  let buffered: Buffer = Buffer.alloc(0);
  const done = (): void => {
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('end', onEnd);
    socket.off('error', onError);
  };
  const timer = setTimeout(() => {
    done();
    refuse(`no PROXY protocol header within ${PROXY_HEADER_TIMEOUT_MS / 1000} s`);
  }, PROXY_HEADER_TIMEOUT_MS);
  const onEnd = (): void => {
    done();
    refuse('closed before a complete PROXY protocol header');
  };
  const onError = (): void => {
    done();
    socket.destroy();
  };
  const onData = (chunk: Buffer): void => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    const scan = scanProxyHeader(buffered);
    if (scan.kind === 'more') return;
    done();
    if (scan.kind === 'invalid') {
      refuse(scan.reason);
      return;
    }
    socket.pause();
    const rest = buffered.subarray(scan.length);
    // What the client sent after the header is the session's (or the TLS handshake's) first bytes.
    if (rest.length > 0) socket.unshift(rest);
    const { header } = scan;
    next({ client: header.command === 'proxy' ? header.addresses : undefined, balancer });
  };
  socket.on('data', onData);
  socket.on('end', onEnd);
  socket.on('error', onError);
}
