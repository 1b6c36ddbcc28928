/**
 * The CAPABILITY list announced before login (the `Capability` parameter) and what it commits
 * us to: a capability is honoured only if advertised (RFC 3501 §7.2.1; NOTES.md: never advertise
 * what cannot be honoured before login, and never honour what was not advertised where the RFC
 * forbids the client to use it, e.g. non-synchronising literals, RFC 7888 §4).
 */

import {
  BEARER_MECHANISMS,
  type BearerMechanism,
  type SaslMechanism,
  isSaslMechanism,
} from '../sasl.js';
import type { SessionSecurity } from '../tls/security.js';

export class Capabilities {
  /** Upper-cased capability names. */
  private readonly names: Set<string>;
  /** The list exactly as configured, for `* CAPABILITY` and the greeting. */
  readonly text: string;

  constructor(text: string) {
    this.text = text.trim().split(/\s+/).filter(Boolean).join(' ');
    this.names = new Set(this.text.split(' ').map((c) => c.toUpperCase()));
  }

  has(name: string): boolean {
    return this.names.has(name.toUpperCase());
  }

  /** `{n+}` may be used: LITERAL+ (RFC 7888 §3) or LITERAL- (§4; our literal limit is 4096). */
  get nonSyncLiterals(): boolean {
    return this.has('LITERAL+') || this.has('LITERAL-');
  }

  /** The SASL mechanisms advertised as AUTH=… that we can terminate. */
  get saslMechanisms(): SaslMechanism[] {
    const out: SaslMechanism[] = [];
    for (const name of this.names) {
      if (!name.startsWith('AUTH=')) continue;
      const mech = name.slice(5);
      if (isSaslMechanism(mech)) out.push(mech);
    }
    return out;
  }

  /** LOGIN is refused when LOGINDISABLED is advertised (RFC 3501 §6.2.3). */
  get loginDisabled(): boolean {
    return this.has('LOGINDISABLED');
  }
}

const DYNAMIC = new Set([
  'STARTTLS',
  'LOGINDISABLED',
  'AUTH=EXTERNAL',
  ...BEARER_MECHANISMS.map((m) => `AUTH=${m}`),
]);
const PLAINTEXT_MECHANISMS = new Set(['AUTH=PLAIN', 'AUTH=LOGIN']);

/**
 * The IMAP CAPABILITY list for this connection: the configured one (Capability) with STARTTLS,
 * LOGINDISABLED, AUTH=EXTERNAL and the OAuth2 mechanisms (OAuth2Mechanisms, only where the
 * stores take them) decided here. Before TLS with plaintext refused, the plaintext mechanisms
 * are not advertised either (RFC 9051 §6.2.3: a client must not be lured into sending a password
 * in the clear), nor the bearer ones: a token is as good as a password while it lasts (RFC 7628
 * §5 requires TLS).
 */
export function imapCapabilityText(
  configured: string,
  security: SessionSecurity,
  bearer: readonly BearerMechanism[] = [],
): string {
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
  if (security.plainAllowed) for (const m of bearer) words.push(`AUTH=${m}`);
  return words.join(' ');
}
