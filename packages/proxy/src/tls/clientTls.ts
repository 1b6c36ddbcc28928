/**
 * TLS on a client connection: what a session knows once the handshake is done (protocol, cipher,
 * SNI name, and the client certificate if one was presented), and the STARTTLS/STLS upgrade of a
 * plain connection (RFC 3501 §6.2.1, RFC 2595 §4, RFC 8314 §3.1).
 *
 * The upgrade is done the way smtp-server does it: the session has already stopped reading and
 * thrown away every plaintext byte it had received after the command (those bytes were sent
 * before TLS and could be an attacker's injection, CVE-2011-0411), then the socket is wrapped in a
 * server TLSSocket. Bytes still buffered in the plain socket are fed to TLS as handshake records,
 * so they can never become commands either.
 */

import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { type Protocol, escapeDnValue } from '@mmp/config';
import { type ServerTls, requiringCertificate } from './serverTls.js';

export interface ClientCertificateInfo {
  /** Chains to the configured client CA (SSLClientCAFile) and is in its validity period. */
  verified: boolean;
  /** Why not, when not verified (OpenSSL's code, e.g. UNABLE_TO_VERIFY_LEAF_SIGNATURE). */
  error?: string;
  /** RFC 4514 string, most specific RDN first: `CN=Alice Example,OU=alice,O=mmp.test`. */
  subject: string;
  issuer: string;
}

export interface ClientTlsInfo {
  protocol: string;
  cipher: string;
  /** The SNI name the client asked for (RFC 6066 §3). */
  servername?: string;
  peer?: ClientCertificateInfo;
}

/**
 * Node prints a certificate name one attribute per line, least specific first
 * (`O=mmp.test\nOU=alice\nCN=Alice`); certmap reads RFC 4514 strings (most specific first).
 */
export function x509NameToDn(name: string): string {
  return name
    .split('\n')
    .filter((l) => l.includes('='))
    .map((l) => {
      const eq = l.indexOf('=');
      return `${l.slice(0, eq)}=${escapeDnValue(l.slice(eq + 1))}`;
    })
    .reverse()
    .join(',');
}

export function describeTls(socket: TLSSocket): ClientTlsInfo {
  const info: ClientTlsInfo = {
    protocol: socket.getProtocol() ?? 'unknown',
    cipher: socket.getCipher().name,
  };
  const servername = (socket as TLSSocket & { servername?: string | false }).servername;
  if (typeof servername === 'string' && servername !== '') info.servername = servername;
  const cert = socket.getPeerX509Certificate();
  if (cert !== undefined) {
    const peer: ClientCertificateInfo = {
      ...verification(socket),
      subject: x509NameToDn(cert.subject),
      issuer: x509NameToDn(cert.issuer),
    };
    info.peer = peer;
  }
  return info;
}

/** Whether the client certificate chains to the client CA. */
function verification(socket: TLSSocket): { verified: boolean; error?: string } {
  if (socket.authorized) return { verified: true };
  const e = socket.authorizationError as unknown;
  if (e !== null && e !== undefined) {
    return { verified: false, error: e instanceof Error ? e.message : String(e) };
  }
  // A TLSSocket made by hand (STARTTLS) gets no `authorized`: Node sets it only in tls.Server's
  // own handler (lib/_tls_wrap.js, onServerSocketSecure), from the handle's verifyError(). Ask
  // the handle the same way; without one, trust nothing.
  const handle = (socket as unknown as { _handle?: { verifyError?: () => Error | null } })._handle;
  const result = handle?.verifyError?.();
  if (result === undefined) return { verified: false, error: 'verification result unavailable' };
  if (result === null) return { verified: true };
  const code = (result as Error & { code?: unknown }).code;
  return { verified: false, error: typeof code === 'string' ? code : result.message };
}

/**
 * Strict ALPN (RFC 7301; the ALPACA paper's mitigation): a client that offers application
 * protocols must offer ours (`imap` / `pop3`, IANA ids), else the handshake fails with
 * no_application_protocol; so an HTTPS client pointed at this port cannot talk to it. A client
 * offering none is served (most mail clients do not send ALPN).
 */
export function alpnFor(protocol: Protocol): { ALPNProtocols: string[] } {
  return { ALPNProtocols: [protocol] };
}

/** Why a required client certificate was refused (SSLRequireClientCert); undefined: it was not. */
export function untrustedCertificate(info: ClientTlsInfo): string | undefined {
  if (info.peer === undefined) return 'no client certificate (SSLRequireClientCert requires one)';
  if (!info.peer.verified)
    return `client certificate not trusted (${info.peer.error ?? 'not verified'}; SSLRequireClientCert requires one from SSLClientCAFile)`;
  return undefined;
}

/** OpenSSL's error for a handshake without the certificate `rejectUnauthorized` asked for. */
const NO_CERTIFICATE = 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE';

/** A failed handshake's reason for the log, naming SSLRequireClientCert when it was the cause. */
export function handshakeFailure(e: Error, socket: TLSSocket | undefined): string {
  if ((e as NodeJS.ErrnoException).code === NO_CERTIFICATE)
    return 'no client certificate (SSLRequireClientCert requires one)';
  // Node closes a socket whose certificate did not verify without saying why (lib/_tls_wrap.js
  // onServerSocketSecure); the socket still holds the reason.
  const why = socket?.authorizationError as unknown;
  if (why !== undefined && why !== null)
    return `client certificate not trusted (${why instanceof Error ? why.message : String(why)}; SSLRequireClientCert requires one from SSLClientCAFile)`;
  return e.message;
}

export type UpgradeResult = { ok: true; info: ClientTlsInfo } | { ok: false; reason: string };

/**
 * Wrap a plain socket whose reader the caller has already detached. Returns the TLS socket at
 * once (so that the session can close it) and the handshake's outcome. `requireCertificate`:
 * SSLRequireClientCert=all on the connection's site.
 */
export function upgradeToTls(
  plain: Socket,
  server: ServerTls,
  timeoutMs: number,
  protocol: Protocol,
  requireCertificate: boolean,
): { socket: TLSSocket; handshake: Promise<UpgradeResult> } {
  // Errors of the plain socket now surface on the TLS socket; keep the old one from throwing.
  plain.on('error', () => undefined);
  // A TLSSocket made by hand gets OpenSSL's refusal of a missing certificate only; an untrusted
  // one is refused below, once the handshake is done.
  const socket = new TLSSocket(plain, {
    ...(requireCertificate ? requiringCertificate(server.options) : server.options),
    ...alpnFor(protocol),
    isServer: true,
  });
  const handshake = new Promise<UpgradeResult>((resolve) => {
    const timer = setTimeout(() => {
      resolve({ ok: false, reason: `no TLS handshake within ${timeoutMs} ms` });
      socket.destroy();
    }, timeoutMs);
    const fail = (e: Error): void => {
      clearTimeout(timer);
      resolve({ ok: false, reason: handshakeFailure(e, socket) });
    };
    const closedEarly = (): void => fail(new Error('connection closed during the TLS handshake'));
    socket.once('error', fail);
    socket.once('close', closedEarly);
    socket.once('secure', () => {
      clearTimeout(timer);
      // Both off: a session keeps its socket for hours, and these closures would keep this
      // promise's state with it (issue 18).
      socket.off('error', fail);
      socket.off('close', closedEarly);
      const info = describeTls(socket);
      // SSLRequireClientCert=all: OpenSSL refused a handshake without a certificate (the
      // 'error' above); one that does not chain to the client CA is refused here.
      const refused = requireCertificate ? untrustedCertificate(info) : undefined;
      if (refused !== undefined) {
        resolve({ ok: false, reason: refused });
        socket.destroy();
        return;
      }
      resolve({ ok: true, info });
    });
  });
  return { socket, handshake };
}
