/**
 * TLS to the store (later releases' SSLBacksidePort; nginx's mail proxy lacks it, NOTES.md):
 * implicit TLS (RFC 8314 §3.3) to the mailHost's host on SSLBacksidePort. The certificate is
 * verified against SSLCAFile (else the system CAs) and the host name as the directory gave it
 * (RFC 6125; an IP address must be in the certificate's IP SANs), unless SSLBacksideVerify=no.
 * A store whose certificate fails counts as a failed store: the next mailHost is tried, and the
 * client finally gets the ServerDownAlert, never a session to an impostor.
 */

import { isIP } from 'node:net';
import { type ConnectionOptions, type TLSSocket, connect } from 'node:tls';
import { type Result, err, ok } from '@mmp/config';
import type { StoreAddress, StoreFailure } from '../store.js';
import { type StoreTlsSettings, caBundleAt } from './settings.js';

export function connectStoreTls(
  address: StoreAddress,
  timeoutMs: number,
  settings: StoreTlsSettings,
): Promise<Result<TLSSocket, StoreFailure>> {
  return new Promise((resolve) => {
    // tls.connect passes allowHalfOpen on to its socket; @types/node does not list it.
    const options: ConnectionOptions & { allowHalfOpen: boolean } = {
      host: address.host,
      port: address.port,
      // allowHalfOpen: when the client half-closes after LOGOUT, the store's answer must still flow.
      allowHalfOpen: true,
      minVersion: 'TLSv1.2',
      rejectUnauthorized: settings.verify,
    };
    // RFC 6066 §3: no IP addresses in SNI; the identity check still uses `host`.
    if (isIP(address.host) === 0) options.servername = address.host;
    if (settings.caFile !== undefined) {
      const ca = caBundleAt(settings.caFile);
      if (!ca.ok) {
        resolve(err({ kind: 'broken', detail: ca.error }));
        return;
      }
      options.ca = ca.value;
    }
    const socket = connect(options);
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(err({ kind: 'timeout', detail: `no TLS connection within ${timeoutMs} ms` }));
    }, timeoutMs);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      socket.setNoDelay(true);
      socket.setKeepAlive(true, 60_000);
      resolve(ok(socket));
    });
    socket.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      socket.destroy();
      const code = e.code ?? '';
      // Refused or unreachable TCP is the usual dead store; anything else is the TLS layer.
      if (code === 'ECONNREFUSED' || code === 'EHOSTUNREACH' || code === 'ENOTFOUND') {
        resolve(err({ kind: 'unreachable', detail: code }));
      } else {
        resolve(
          err({
            kind: 'broken',
            detail: `TLS: ${code === '' ? e.message : `${code}: ${e.message}`}`,
          }),
        );
      }
    });
  });
}
