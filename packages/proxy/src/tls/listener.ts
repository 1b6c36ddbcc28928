/**
 * Start-up of everything TLS: `loadSecurity` checks the SSL parameters, the key password, the
 * cipher list and the certificate-login files before anything listens (one clear line and exit 2
 * on a problem, `main.ts`); `listenImplicitTls` opens SSLListenPort (RFC 8314 §3: implicit TLS on
 * 993/995), whose connections reach the same sessions as the plain port once their handshake is
 * done. The loaded server TLS is kept by its settings, so that sessions (STARTTLS) and virtual
 * domains (whose SSL parameters are the global ones) find it without reading files again.
 */

import { type Server, type Socket } from 'node:net';
import { type TLSSocket, createServer } from 'node:tls';
import { type Result, err, ok } from '@mmp/config';
import { plainAddress } from '../clientAddress.js';
import type { Log } from '../log.js';
import type { ProxySettings } from '../settings.js';
import { alpnFor } from './clientTls.js';
import { type ServerTls, type ServerTlsSettings, loadServerTls } from './serverTls.js';
import { caBundleAt, certMapAt } from './settings.js';

const loaded = new Map<string, Result<ServerTls, string>>();

/** The server TLS for these settings, loaded once. */
export function serverTlsFor(settings: ServerTlsSettings): Result<ServerTls, string> {
  const key = JSON.stringify(settings);
  let r = loaded.get(key);
  if (r === undefined) {
    r = loadServerTls(settings);
    loaded.set(key, r);
  }
  return r;
}

/** Check every security file and setting; the first problem, worded for the operator. */
export function loadSecurity(settings: ProxySettings): Result<true, string> {
  const s = settings.security;
  if (s === undefined) return ok(true);
  if (s.enable) {
    const tls = serverTlsFor(s.server);
    if (!tls.ok) return tls;
  }
  if (s.certMapFile !== undefined) {
    const map = certMapAt(s.certMapFile);
    if (!map.ok) return err(`certificate login: ${map.error}`);
    // Netscape certmap options this multiplexor does not carry out: refusing them is safer than
    // a weaker check than the operator asked for.
    for (const m of map.value.maps) {
      if (m.verifyCert === true)
        return err(
          `certificate login: ${s.certMapFile}:${m.line}: certmap ${m.name}: verifycert on is not supported (the entry's userCertificate is not compared); set it off`,
        );
      if (m.cmapLdapAttr !== undefined)
        return err(
          `certificate login: ${s.certMapFile}:${m.line}: certmap ${m.name}: CmapLdapAttr is not supported; map with FilterComps`,
        );
    }
    if (s.storeAdminPass === undefined || s.storeAdminPass === '') {
      return err('certificate login: StoreAdmin is set but StoreAdminPass is not');
    }
  }
  if (s.storeTls?.caFile !== undefined) {
    const ca = caBundleAt(s.storeTls.caFile);
    if (!ca.ok) return ca;
  }
  return ok(true);
}

/**
 * SSLEnable: listen on SSLListenPort. Undefined when SSL is off. A client that fails the
 * handshake never reaches a session; it is logged at the refusal level.
 */
export async function listenImplicitTls(
  settings: ProxySettings,
  log: Log,
  onSecureSocket: (socket: Socket) => void,
): Promise<
  Result<{ server: Server; address: { host: string; port: number } }, string> | undefined
> {
  const s = settings.security;
  if (s === undefined || !s.enable) return undefined;
  const tls = serverTlsFor(s.server);
  if (!tls.ok) return err(tls.error);
  const server = createServer(
    {
      ...tls.value.options,
      ...alpnFor(settings.protocol),
      // allowHalfOpen: a client may half-close after a pipelined LOGOUT and still read the answer.
      allowHalfOpen: true,
      noDelay: true,
      // Pre-login idle limit applies to the handshake too: a silent client costs nothing for long.
      handshakeTimeout: settings.idleTimeoutMs,
    },
    (socket: TLSSocket) => onSecureSocket(socket),
  );
  server.on('tlsClientError', (e: Error, socket: TLSSocket) => {
    log.at('refusal', 'tls handshake', 'TLS handshake failed', {
      client: `${plainAddress(socket.remoteAddress)}:${socket.remotePort ?? 0}`,
      error: e.message,
    });
  });
  const { listen } = s;
  return new Promise((resolve) => {
    const onError = (e: Error): void =>
      resolve(
        err(`cannot listen on SSLListenPort ${listen.host ?? '*'}:${listen.port}: ${e.message}`),
      );
    server.once('error', onError);
    server.listen({ port: listen.port, host: listen.host }, () => {
      server.off('error', onError);
      server.on('error', (e) => log.error('listener', 'TLS listener error', { error: e.message }));
      const a = server.address();
      const address =
        a === null || typeof a === 'string'
          ? { host: String(a), port: listen.port }
          : { host: a.address, port: a.port };
      log.at('lifecycle', 'start', 'listening for TLS clients', {
        address: address.host,
        port: address.port,
      });
      resolve(ok({ server, address }));
    });
  });
}
