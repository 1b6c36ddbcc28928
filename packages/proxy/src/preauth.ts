/**
 * User pre-authentication (guide, "User Pre-Authentication", PreAuth): before any store is
 * contacted, bind to the directory as the user's entry with the password the client gave. A
 * refused bind ends the login there, with the same answer as a wrong password, so the store never
 * sees credentials the directory rejects; a successful one is logged with the guide's line
 *   yyyymmdd hhmmss (sid 0x…) user pre-authenticated - client-IP
 *
 * Each bind uses a connection of its own, closed at once: the shared service connections of
 * `directory.ts` keep BindDN's identity (binding one of them as a user would change the rights of
 * every search made on it afterwards). PreAuthCacheTTL (later releases) remembers a success for
 * that long (`PreAuthCache`), keyed by the entry and a hash of the password, never the password
 * itself.
 */

import { createHmac, randomBytes } from 'node:crypto';
import { Client, InvalidCredentialsError, ResultCodeError } from 'ldapts';
import type { HostPort } from '@mmp/config';
import { DIRECTORY_CONNECT_TIMEOUT_MS, DIRECTORY_OPERATION_TIMEOUT_MS } from './limits.js';
import { type Log, guideLine } from './log.js';
import { LruTtl } from './lookupCache.js';

export type PreAuthResult =
  | { kind: 'accepted'; cached: boolean }
  /** The directory refused the bind (wrong password, locked account, …). */
  | { kind: 'refused'; detail: string }
  /** No directory server could be asked. */
  | { kind: 'unavailable'; detail: string };

export interface PreAuthTarget extends HostPort {
  /** ldaps:// (an LdapUrl entry). */
  secure?: boolean | undefined;
}

/** Most successful pre-authentications remembered at once; the least recently used go first. */
const CACHE_MAX_ENTRIES = 10_000;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * PreAuthCacheTTL: successful pre-authentications, for that long. Keyed by HMAC-SHA256(key, DN,
 * password) under a random key of its own, so that a memory dump of the proxy does not hold
 * values one could test guessed passwords against offline with a precomputed table, nor compare
 * between processes (issue 8: only a salted hash is cached). One per runtime (`proxyRuntime.ts`).
 */
export class PreAuthCache {
  private readonly entries: LruTtl<true>;
  private readonly salt = randomBytes(32);
  /** PreAuthCacheTTL 0 (the default): nothing is remembered, no hash computed. */
  private readonly on: boolean;

  constructor(ttlMs: number, now: () => number = Date.now) {
    this.entries = new LruTtl(CACHE_MAX_ENTRIES, ttlMs, now);
    this.on = ttlMs > 0;
  }

  has(dn: string, password: Buffer): boolean {
    return this.on && this.entries.get(this.key(dn, password)) === true;
  }

  add(dn: string, password: Buffer): void {
    if (this.on) this.entries.set(this.key(dn, password), true);
  }

  private key(dn: string, password: Buffer): string {
    return createHmac('sha256', this.salt)
      .update(dn)
      .update('\0')
      .update(password)
      .digest('base64');
  }
}

function url(h: PreAuthTarget): string {
  const host = h.host.includes(':') ? `[${h.host}]` : h.host;
  const secure = h.secure === true;
  return `${secure ? 'ldaps' : 'ldap'}://${host}:${h.port ?? (secure ? 636 : 389)}`;
}

export async function preAuthenticate(
  hosts: readonly PreAuthTarget[],
  dn: string,
  password: Buffer,
  options: { cache: PreAuthCache; log: Log },
): Promise<PreAuthResult> {
  const { log, cache } = options;
  // RFC 4513 §5.1.2: a simple bind with an empty password is an unauthenticated bind, which a
  // directory may accept for anyone. It proves nothing.
  if (password.length === 0) return { kind: 'refused', detail: 'empty password' };
  let text: string;
  try {
    text = utf8.decode(password);
  } catch {
    return { kind: 'refused', detail: 'password is not UTF-8' };
  }
  if (cache.has(dn, password)) return { kind: 'accepted', cached: true };
  let lastFailure = 'no LDAPHost configured';
  for (const host of hosts) {
    const client = new Client({
      url: url(host),
      connectTimeout: DIRECTORY_CONNECT_TIMEOUT_MS,
      timeout: DIRECTORY_OPERATION_TIMEOUT_MS,
    });
    try {
      log.at('dialogue', 'pre-authentication', 'binding to the directory as the user', {
        ldap: url(host),
        dn,
      });
      await client.bind(dn, text);
      cache.add(dn, password);
      return { kind: 'accepted', cached: false };
    } catch (e) {
      const detail = e instanceof Error ? e.message : String(e);
      // The directory answered: its word is final (49 invalidCredentials, 53 unwillingToPerform…).
      if (e instanceof InvalidCredentialsError || e instanceof ResultCodeError) {
        return { kind: 'refused', detail };
      }
      lastFailure = detail;
      log.at('refusal', 'pre-authentication', 'directory unreachable for the user bind', {
        ldap: url(host),
        error: detail,
      });
    } finally {
      client.unbind().catch(() => undefined);
    }
  }
  return { kind: 'unavailable', detail: lastFailure };
}

/** The PreAuth record's message; the log puts the guide's `yyyymmdd hhmmss (sid 0x…)` before it. */
export function preAuthMessage(user: string, clientIp: string): string {
  return `${user} pre-authenticated - ${clientIp}`;
}

/** The guide's log line: `yyyymmdd hhmmss (sid 0x…) user pre-authenticated - client-IP`. */
export function preAuthLine(date: Date, sid: string, user: string, clientIp: string): string {
  return guideLine(date, sid, preAuthMessage(user, clientIp));
}
