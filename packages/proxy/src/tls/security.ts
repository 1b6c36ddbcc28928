/**
 * What a connection's security allows before login, in one value both protocols read:
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
    restrictPlainPasswords: s.restrictPlainPasswords,
    certLoginConfigured: s.certLogin !== undefined,
  };
}

/** The default for sessions built without TLS configuration (unit tests). */
export const PLAIN_SECURITY: SessionSecurity = {
  tls: undefined,
  startTls: false,
  plainAllowed: true,
  external: false,
};

const DYNAMIC = new Set(['STARTTLS', 'LOGINDISABLED', 'AUTH=EXTERNAL']);
const PLAINTEXT_MECHANISMS = new Set(['AUTH=PLAIN', 'AUTH=LOGIN']);

/**
 * The IMAP CAPABILITY list for this connection: the configured one (Capability) with STARTTLS,
 * LOGINDISABLED and AUTH=EXTERNAL decided here. Before TLS with plaintext refused, the
 * plaintext mechanisms are not advertised either (RFC 9051 §6.2.3: a client must not be lured
 * into sending a password in the clear).
 */
export function imapCapabilityText(configured: string, security: SessionSecurity): string {
  const words = configured
    .trim()
    .split(/\s+/)
    .filter((w) => w !== '' && !DYNAMIC.has(w.toUpperCase()))
    .filter((w) => security.plainAllowed || !PLAINTEXT_MECHANISMS.has(w.toUpperCase()));
  // RFC 3501 §6.2.1: STARTTLS is listed before login only while it can be used.
  const at = Math.min(1, words.length);
  if (security.startTls) words.splice(at, 0, 'STARTTLS');
  if (!security.plainAllowed) words.push('LOGINDISABLED');
  if (security.external) words.push('AUTH=EXTERNAL');
  return words.join(' ');
}

/**
 * POP3 CAPA before login (RFC 2449 §5): USER only when USER/PASS can be used; SASL lists PLAIN
 * only when plaintext passwords are allowed and EXTERNAL only with a verified certificate;
 * STLS while it can be used (RFC 2595 §4).
 */
export function pop3AuthorizationCapabilities(
  base: readonly string[],
  security: SessionSecurity,
): string[] {
  const mechanisms: string[] = [];
  if (security.plainAllowed) mechanisms.push('PLAIN');
  if (security.external) mechanisms.push('EXTERNAL');
  const out: string[] = [];
  for (const c of base) {
    const word = c.split(' ')[0]?.toUpperCase();
    if (word === 'USER') {
      if (security.plainAllowed) out.push(c);
    } else if (word === 'SASL') {
      if (mechanisms.length > 0) out.push(`SASL ${mechanisms.join(' ')}`);
    } else if (word !== 'STLS') out.push(c);
  }
  if (security.startTls) out.push('STLS');
  return out;
}

/** POP3's refusal of a plaintext password before TLS (RFC 2449 §8 response code; the text says
 * what to do). SYS/PERM: this server will not take it this way, retrying is pointless. */
export const POP3_PLAINTEXT_REFUSED =
  '-ERR [SYS/PERM] Plaintext authentication is disabled on this connection; use STLS first';

/** IMAP's refusal (RFC 5530 PRIVACYREQUIRED). */
export const IMAP_PLAINTEXT_REFUSED =
  'NO [PRIVACYREQUIRED] Plaintext authentication is disabled on this connection; use STARTTLS first';

/** POP3 commands that carry (or start sending) a password in the clear: USER/PASS (RFC 1939 §7),
 * AUTH PLAIN / LOGIN (RFC 5034). USER is refused too, so that a client never gets to PASS. */
export function isPop3Plaintext(verb: string, arg: Buffer | undefined): boolean {
  if (verb === 'USER' || verb === 'PASS') return true;
  if (verb !== 'AUTH' || arg === undefined) return false;
  const mechanism = arg.toString('latin1').trim().split(/\s+/)[0]?.toUpperCase();
  return mechanism === 'PLAIN' || mechanism === 'LOGIN';
}
