/**
 * SSLListenPort (RFC 8314 §3: implicit TLS on 993/995), whose connections reach the same sessions
 * as the plain port once their handshake is done. The certificates and contexts are the runtime's
 * (`proxyRuntime.ts`), loaded and checked before anything listens.
 *
 * Whether the handshake requires a client certificate (SSLRequireClientCert) is known before it
 * starts, from the address the client connected to (a vdmap entry may require one on its address
 * alone): the listening socket is plain TCP, and each connection is handed to one of two TLS
 * servers that never listen themselves, one asking for a certificate and one requiring it
 * (`tls.Server` handles an injected 'connection' as one it accepted: handshake timeout,
 * `authorized`, and the closing of an untrusted certificate included). On a ProxyProtocol
 * listener the PROXY header is read first (`beforeHandshake`), as HAProxy sends it before the
 * client's ClientHello.
 */

import type { Server, Socket } from 'node:net';
import { type TLSSocket, createServer } from 'node:tls';
import type { Protocol } from '@mmp/config';
import { plainAddress } from '../clientAddress.js';
import type { Log } from '../log.js';
import type { ProxiedOrigin } from '../proxyProtocol.js';
import { alpnFor, handshakeFailure } from './clientTls.js';
import { type ServerTls, requiringCertificate } from './serverTls.js';

export interface ImplicitTls {
  tls: ServerTls;
  protocol: Protocol;
  /** The pre-login idle limit applies to the handshake too (Timeout). */
  handshakeTimeoutMs: number;
  /** SSLRequireClientCert of the site of this local address (asked per connection: a reload may
   * change the vdmap). */
  requiresCertificate: (localAddress: string) => boolean;
  log: Log;
  /**
   * Runs on each accepted connection before its handshake (ProxyProtocol: the header comes before
   * the ClientHello); `proceed` starts the handshake, with the origin the header gave.
   */
  beforeHandshake: (socket: Socket, proceed: (origin: ProxiedOrigin | undefined) => void) => void;
  onSecureSocket: (socket: Socket, origin: ProxiedOrigin | undefined) => void;
  /** Told each handshake's result (metrics). */
  onHandshake?: (ok: boolean) => void;
}

/**
 * The handshake side of an implicit-TLS port, listening nowhere: give it each plain TCP
 * connection accepted on such a port (here, or by the primary and passed to a worker:
 * `listeners.ts`), and it reads a PROXY header when due, does the handshake with these
 * certificates and hands the secure socket on.
 */
export function implicitTlsAcceptor(o: ImplicitTls): (socket: Socket) => void {
  const { log, onSecureSocket } = o;
  // Origins of connections in their handshake, by the connection's own ends, which the TLS
  // socket reports the same as the plain one under it.
  const origins = new Map<string, ProxiedOrigin>();
  const ends = (s: Socket): string =>
    `${s.remoteAddress}:${s.remotePort} ${s.localAddress}:${s.localPort}`;
  const handshakes = (options: ServerTls['options']): Server => {
    const tls = createServer(
      {
        ...options,
        ...alpnFor(o.protocol),
        // Pre-login idle limit applies to the handshake too: a silent client costs little.
        handshakeTimeout: o.handshakeTimeoutMs,
      },
      (socket: TLSSocket) => {
        const key = ends(socket);
        const origin = origins.get(key);
        origins.delete(key);
        o.onHandshake?.(true);
        onSecureSocket(socket, origin);
      },
    );
    tls.on('tlsClientError', (e: Error, socket: TLSSocket) => {
      o.onHandshake?.(false);
      const key = ends(socket);
      const client = origins.get(key)?.client;
      origins.delete(key);
      log.at('refusal', 'tls handshake', 'TLS handshake failed', {
        client:
          client === undefined
            ? `${plainAddress(socket.remoteAddress)}:${socket.remotePort ?? 0}`
            : `${client.clientIp}:${client.clientPort}`,
        // Which listener refused: SSLRequireClientCert may differ per address (vdmap).
        listener: `${plainAddress(socket.localAddress)}:${socket.localPort ?? 0}`,
        error: handshakeFailure(e, socket),
      });
    });
    return tls;
  };
  const asking = handshakes(o.tls.options);
  const requiring = handshakes(requiringCertificate(o.tls.options));
  return (socket) => {
    o.beforeHandshake(socket, (origin) => {
      if (origin !== undefined) {
        const key = ends(socket);
        origins.set(key, origin);
        socket.once('close', () => origins.delete(key));
      }
      const required = o.requiresCertificate(plainAddress(socket.localAddress));
      (required ? requiring : asking).emit('connection', socket);
    });
  };
}
