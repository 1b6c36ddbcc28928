/**
 * The directory lookup cache (later releases' LdapCacheSize, LdapCacheTTL): the answer "this user
 * lives on these stores, under this replay name" is kept per directory and per expanded filter, so
 * that a user who logs in again (mail clients reconnect every few minutes, and open several
 * connections at once) does not cost a directory search each time.
 *
 * Successful answers are cached for LdapCacheTTL. "No such user" is cached apart, for the much
 * shorter LdapNegativeCacheTTL (a user created a moment ago must be able to log in soon, but a flood
 * of logins with unknown names must not each cost a search: issue 14), at most
 * NEGATIVE_CACHE_MAX_ENTRIES names. A directory failure is never cached. Nothing secret is cached: the entry holds the DN, the
 * mailHost list and the UidAttr value, never a password or the outcome of a bind (pre-authentication
 * has its own cache, keyed by a salted hash, in `preauth.ts`).
 *
 * A store that could not be used for a user evicts that user's entry (`forget`), so that a user
 * moved to another store is found there at the next login rather than after the TTL.
 *
 * Bounded: at most `entries` answers, the least recently used going first (a Map keeps insertion
 * order; a hit re-inserts its key). Per process: with NumThreads each worker has its own cache.
 */

import { type Result, err, ok } from '@mmp/config';
import type { LookupError, SearchBase, UserDirectory, UserEntry } from './directory.js';
import { NEGATIVE_CACHE_MAX_ENTRIES } from './limits.js';
import type { Log } from './log.js';
import type { DirectoryHostState } from './metrics/metrics.js';

/** A bounded map whose entries expire `ttlMs` after they were set; least recently used first out. */
export class LruTtl<V> {
  private readonly map = new Map<string, { value: V; until: number }>();

  constructor(
    private readonly entries: number,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.map.size;
  }

  get(key: string): V | undefined {
    const hit = this.map.get(key);
    if (hit === undefined) return undefined;
    this.map.delete(key);
    if (hit.until <= this.now()) return undefined;
    this.map.set(key, hit); // most recently used: last in iteration order
    return hit.value;
  }

  set(key: string, value: V): void {
    if (this.entries <= 0 || this.ttlMs <= 0) return;
    this.map.delete(key);
    while (this.map.size >= this.entries) {
      const oldest = this.map.keys().next();
      if (oldest.done === true) break;
      this.map.delete(oldest.value);
    }
    this.map.set(key, { value, until: this.now() + this.ttlMs });
  }

  delete(key: string): boolean {
    return this.map.delete(key);
  }

  clear(): void {
    this.map.clear();
  }
}

/** The cache key: the filter, and the search base when it is not BaseDN (certificate login). A
 * filter starts with `(`, so no key of one kind equals one of the other. */
function cacheKey(filter: string, where: SearchBase | undefined): string {
  return where === undefined ? filter : `${where.scope} ${where.dn}\n${filter}`;
}

/** A directory with a lookup cache in front. `forget(filter)` evicts one user's answer. */
export class CachingDirectory implements UserDirectory {
  private readonly cache: LruTtl<UserEntry>;
  /** Names the directory said nobody has (LdapNegativeCacheTTL; 0: none kept). */
  private readonly unknown: LruTtl<true>;
  private readonly onHit: () => void;

  constructor(
    private readonly inner: UserDirectory,
    options: {
      entries: number;
      ttlMs: number;
      negativeTtlMs?: number;
      now?: () => number;
      /** Told of each answer from the cache, found or unknown (metrics). */
      onHit?: () => void;
    },
  ) {
    this.cache = new LruTtl(options.entries, options.ttlMs, options.now);
    this.unknown = new LruTtl(NEGATIVE_CACHE_MAX_ENTRIES, options.negativeTtlMs ?? 0, options.now);
    this.onHit = options.onHit ?? (() => undefined);
  }

  async lookup(
    filter: string,
    log: Log,
    where?: SearchBase,
  ): Promise<Result<UserEntry, LookupError>> {
    const key = cacheKey(filter, where);
    const hit = this.cache.get(key);
    if (hit !== undefined) {
      this.onHit();
      log.at('dialogue', 'directory search', 'directory answer from the lookup cache', {
        filter,
        dn: hit.dn,
      });
      return ok(hit);
    }
    if (this.unknown.get(key) === true) {
      this.onHit();
      log.at('dialogue', 'directory search', 'unknown user, from the negative cache', { filter });
      return err({ kind: 'no-such-user' });
    }
    const r = await this.inner.lookup(filter, log, where);
    if (r.ok) this.cache.set(key, r.value);
    else if (r.error.kind === 'no-such-user') this.unknown.set(key, true);
    return r;
  }

  forget(filter: string, where?: SearchBase): void {
    this.cache.delete(cacheKey(filter, where));
    this.unknown.delete(cacheKey(filter, where));
    this.inner.forget?.(filter, where);
  }

  probe(log: Log): Promise<Result<string, string>> {
    return this.inner.probe?.(log) ?? Promise.resolve(ok('no probe'));
  }

  hostStates(): DirectoryHostState[] {
    return this.inner.hostStates?.() ?? [];
  }

  get cachedEntries(): number {
    return this.cache.size;
  }

  close(): Promise<void> {
    this.cache.clear();
    this.unknown.clear();
    return this.inner.close();
  }
}

/**
 * Wrap each distinct directory once (the global one, and each virtual domain's own), so that
 * every directory has one cache; with the cache off, directories are returned unchanged.
 */
export function lookupCaches(options: {
  entries: number;
  ttlMs: number;
}): (directory: UserDirectory) => UserDirectory {
  if (options.entries <= 0 || options.ttlMs <= 0) return (d) => d;
  const wrapped = new WeakMap<UserDirectory, CachingDirectory>();
  return (d) => {
    if (d instanceof CachingDirectory) return d;
    let c = wrapped.get(d);
    if (c === undefined) {
      c = new CachingDirectory(d, options);
      wrapped.set(d, c);
    }
    return c;
  };
}
