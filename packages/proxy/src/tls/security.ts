/**
 * What a connection's security allows before login, in one value both protocols read (each
 * says it in its own words: `imap/capabilities.ts`, `pop3/commands/capa.ts`, the dialects):
 * - STARTTLS / STLS is offered on a plain connection when SSLEnable and SSLStartTLS are on, and
 *   never once TLS is active (RFC 3501 §6.2.1, RFC 2595 §4: a second negotiation is refused);
 * - plaintext passwords (IMAP LOGIN, AUTHENTICATE PLAIN/LOGIN; POP3 USER/PASS, AUTH PLAIN) are
 *   refused before TLS when RestrictPlainPasswords is on (RFC 3501 §6.2.3 LOGINDISABLED,
 *   RFC 5530 PRIVACYREQUIRED, RFC 8314 §3);
 * - EXTERNAL (RFC 4422 App. A) is offered only once a client certificate that chains to the
 *   client CA was presented and certificate login is configured.
 */

import type { ProxySettings } from '../settings.js';
import type { ClientTlsInfo } from './clientTls.js';

export interface SessionSecurity {
  /** TLS is active on the client connection (implicit, or after STARTTLS). */
  tls: ClientTlsInfo | undefined;
  /** STARTTLS / STLS may be offered now. */
  startTls: boolean;
  /** LOGIN / USER / PLAIN may be used now. */
  plainAllowed: boolean;
  /** AUTHENTICATE EXTERNAL / AUTH EXTERNAL may be used now. */
  external: boolean;
}

export interface SecurityPolicy {
  /** SSLEnable and SSLStartTLS: the plain listener can upgrade. */
  startTlsConfigured: boolean;
  restrictPlainPasswords: boolean;
  certLoginConfigured: boolean;
}

export function sessionSecurity(
  policy: SecurityPolicy,
  tls: ClientTlsInfo | undefined,
): SessionSecurity {
  return {
    tls,
    startTls: tls === undefined && policy.startTlsConfigured,
    plainAllowed: tls !== undefined || !policy.restrictPlainPasswords,
    external: tls?.peer?.verified === true && policy.certLoginConfigured,
  };
}

/** The policy a connection's settings give (a virtual domain may restrict plaintext itself). */
export function policyOf(settings: ProxySettings): SecurityPolicy {
  const s = settings.security;
  return {
    startTlsConfigured: s.enable && s.startTls,
    // SSLRequireClientCert=all: no login at all before TLS, whose handshake needs a certificate.
    restrictPlainPasswords: s.restrictPlainPasswords || s.requireClientCert === 'all',
    certLoginConfigured: s.certLogin !== undefined,
  };
}
