/**
 * User pre-authentication (guide, "User Pre-Authentication", PreAuth): before any store is
 * contacted, bind to the directory as the user's entry with the password the client gave. A
 * refused bind ends the login there, with the same answer as a wrong password, so the store never
 * sees credentials the directory rejects; a successful one is logged with the guide's line
 *   yyyymmdd hhmmss (sid 0x…) user pre-authenticated - client-IP
 *
 * Binds go over connections of their own (`PreAuthPool`), never the shared service connections of
 * `directory.ts`, which keep BindDN's identity (binding one of them as a user would change the
 * rights of every search made on it afterwards). The pool is bounded (PREAUTH_POOL_SIZE per host,
 * each doing one bind at a time, a bounded queue waiting at most LdapTimeout), so a login flood is
 * a queue rather than a connection flood on the directory. A directory that says "not now" (busy,
 * unavailable, unwilling, admin limit, time limit) or does not answer in time makes the login a
 * temporary failure, never a wrong password (issue 14). PreAuthCacheTTL (later releases) remembers a success for
 * that long (`PreAuthCache`), keyed by the entry and a hash of the password, never the password
 * itself.
 */

import { createHmac, randomBytes } from 'node:crypto';
import { Client } from 'ldapts';
import type { HostPort } from '@mmp/config';
import { classifyLdapError } from './directory.js';
import { Gate } from './gate.js';
import { PREAUTH_MAX_WAITING, PREAUTH_POOL_SIZE } from './limits.js';
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

/** One host's bind connections: idle ones, and the gate that bounds those in use. */
interface HostBinds {
  readonly idle: Client[];
  readonly gate: Gate;
}

/**
 * PreAuth's connections, per directory host: at most PREAUTH_POOL_SIZE, each doing one bind at a
 * time and kept open for the next (a failed bind leaves a connection usable; a time-out or a lost
 * connection drops it). One per runtime (`proxyRuntime.ts`).
 */
export class PreAuthPool {
  private readonly hosts = new Map<string, HostBinds>();

  /** Bind as `dn` on `host`'s pool within `timeoutMs` (waiting for a connection included). */
  async bind(
    host: PreAuthTarget,
    dn: string,
    password: string,
    timeoutMs: number,
  ): Promise<{ ok: true } | { ok: false; error: unknown }> {
    const key = url(host);
    let h = this.hosts.get(key);
    if (h === undefined) {
      h = { idle: [], gate: new Gate(PREAUTH_POOL_SIZE, PREAUTH_MAX_WAITING) };
      this.hosts.set(key, h);
    }
    const slot = await h.gate.enter(timeoutMs);
    if (!slot.ok) return { ok: false, error: new Error(`bind pool full: ${slot.reason}`) };
    const client =
      h.idle.pop() ?? new Client({ url: key, connectTimeout: timeoutMs, timeout: timeoutMs });
    try {
      await client.bind(dn, password);
      h.idle.push(client);
      return { ok: true };
    } catch (e) {
      // The directory's answer leaves the connection bound anonymously and usable; anything
      // else (no answer in time, connection lost) may leave it hung: close it.
      if (classifyLdapError(e) === 'refused') h.idle.push(client);
      else client.unbind().catch(() => undefined);
      return { ok: false, error: e };
    } finally {
      slot.leave();
    }
  }

  /** Close every idle connection (shutdown). */
  async close(): Promise<void> {
    const all = [...this.hosts.values()].flatMap((h) => h.idle.splice(0));
    await Promise.all(all.map((c) => c.unbind().catch(() => undefined)));
  }
}

export async function preAuthenticate(
  hosts: readonly PreAuthTarget[],
  dn: string,
  password: Buffer,
  options: { cache: PreAuthCache; pool: PreAuthPool; timeoutMs: number; log: Log },
): Promise<PreAuthResult> {
  const { log, cache, pool, timeoutMs } = options;
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
    log.at('dialogue', 'pre-authentication', 'binding to the directory as the user', {
      ldap: url(host),
      dn,
    });
    const r = await pool.bind(host, dn, text, timeoutMs);
    if (r.ok) {
      cache.add(dn, password);
      return { kind: 'accepted', cached: false };
    }
    const detail = r.error instanceof Error ? r.error.message : String(r.error);
    // The directory's answer is final (49 invalidCredentials, 50 insufficientAccess…), unless it
    // says "not now": then, as for no answer, the next host is asked.
    if (classifyLdapError(r.error) === 'refused') return { kind: 'refused', detail };
    lastFailure = detail;
    log.at('refusal', 'pre-authentication', 'directory unavailable for the user bind', {
      ldap: url(host),
      error: detail,
    });
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
