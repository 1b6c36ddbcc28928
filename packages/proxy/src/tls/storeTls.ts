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
import type { Result } from '@mmp/config';
import { type StoreAddress, type StoreFailure, settleConnection } from '../store.js';
import type { StoreTls } from './settings.js';

export function connectStoreTls(
  address: StoreAddress,
  timeoutMs: number,
  tls: StoreTls,
): Promise<Result<TLSSocket, StoreFailure>> {
  // tls.connect passes allowHalfOpen on to its socket; @types/node does not list it.
  const options: ConnectionOptions & { allowHalfOpen: boolean } = {
    host: address.host,
    port: address.port,
    // allowHalfOpen: when the client half-closes after LOGOUT, the store's answer must still flow.
    allowHalfOpen: true,
    minVersion: 'TLSv1.2',
    rejectUnauthorized: tls.verify,
  };
  // RFC 6066 §3: no IP addresses in SNI; the identity check still uses `host`.
  if (isIP(address.host) === 0) options.servername = address.host;
  if (tls.ca !== undefined) options.ca = tls.ca;
  return settleConnection(connect(options), 'secureConnect', timeoutMs, 'TLS connection', (e) => {
    const code = e.code ?? '';
    // Refused or unreachable TCP is the usual dead store; anything else is the TLS layer.
    if (code === 'ECONNREFUSED' || code === 'EHOSTUNREACH' || code === 'ENOTFOUND') {
      return { kind: 'unreachable', detail: code };
    }
    return { kind: 'broken', detail: `TLS: ${code === '' ? e.message : `${code}: ${e.message}`}` };
  });
}
