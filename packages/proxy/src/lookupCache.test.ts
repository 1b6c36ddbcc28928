import { describe, expect, it } from 'vitest';
import { type Result, err, ok } from '@mmp/config';
import type { LookupError, UserDirectory, UserEntry } from './directory.js';
import { CachingDirectory, LruTtl, lookupCaches } from './lookupCache.js';
import { silentLog } from './log.js';

/** A directory stub that counts its searches. */
function stub(answer: (filter: string) => Result<UserEntry, LookupError>): UserDirectory & {
  searches: string[];
} {
  const searches: string[] = [];
  return {
    searches,
    lookup: (filter) => {
      searches.push(filter);
      return Promise.resolve(answer(filter));
    },
    close: () => Promise.resolve(),
  };
}

const entry = (uid: string): UserEntry => ({
  dn: `uid=${uid},o=test`,
  mailHosts: [{ host: '127.0.0.2' }],
});

describe('LruTtl', () => {
  it('forgets an entry once its TTL has passed', () => {
    let t = 0;
    const c = new LruTtl<number>(10, 1_000, () => t);
    c.set('a', 1);
    t = 999;
    expect(c.get('a')).toBe(1);
    t = 1_000;
    expect(c.get('a')).toBeUndefined();
    expect(c.size).toBe(0);
  });

  it('holds at most its bound, dropping the least recently used', () => {
    const c = new LruTtl<number>(2, 60_000);
    c.set('a', 1);
    c.set('b', 2);
    expect(c.get('a')).toBe(1); // a is now more recent than b
    c.set('c', 3);
    expect(c.size).toBe(2);
    expect(c.get('b')).toBeUndefined();
    expect(c.get('a')).toBe(1);
    expect(c.get('c')).toBe(3);
  });

  it('stores nothing with a size or a TTL of 0', () => {
    const none = [new LruTtl<number>(0, 1_000), new LruTtl<number>(10, 0)];
    for (const c of none) {
      c.set('a', 1);
      expect(c.get('a')).toBeUndefined();
    }
  });
});

describe('CachingDirectory', () => {
  it('answers a second lookup of a user without asking the directory', async () => {
    const d = stub((f) => ok(entry(f)));
    const c = new CachingDirectory(d, { entries: 10, ttlMs: 60_000 });
    expect((await c.lookup('(uid=alice)', silentLog)).ok).toBe(true);
    const again = await c.lookup('(uid=alice)', silentLog);
    expect(again.ok && again.value.dn).toBe('uid=(uid=alice),o=test');
    expect(d.searches).toEqual(['(uid=alice)']);
  });

  it('asks again after the TTL', async () => {
    let t = 0;
    const d = stub((f) => ok(entry(f)));
    const c = new CachingDirectory(d, { entries: 10, ttlMs: 900_000, now: () => t });
    await c.lookup('(uid=alice)', silentLog);
    t = 900_000;
    await c.lookup('(uid=alice)', silentLog);
    expect(d.searches).toHaveLength(2);
  });

  it('never caches a failed lookup (a new user, a directory outage)', async () => {
    const answers: Result<UserEntry, LookupError>[] = [
      err({ kind: 'no-such-user' }),
      err({ kind: 'unavailable', detail: 'down' }),
      ok(entry('new')),
      ok(entry('new')),
    ];
    const d = stub(() => answers.shift() ?? err({ kind: 'no-such-user' }));
    const c = new CachingDirectory(d, { entries: 10, ttlMs: 60_000 });
    for (let i = 0; i < 4; i++) await c.lookup('(uid=new)', silentLog);
    expect(d.searches).toHaveLength(3);
  });

  it('forget() evicts only that user (a failed store)', async () => {
    const d = stub((f) => ok(entry(f)));
    const c = new CachingDirectory(d, { entries: 10, ttlMs: 60_000 });
    await c.lookup('(uid=a)', silentLog);
    await c.lookup('(uid=b)', silentLog);
    c.forget('(uid=a)');
    await c.lookup('(uid=a)', silentLog);
    await c.lookup('(uid=b)', silentLog);
    expect(d.searches).toEqual(['(uid=a)', '(uid=b)', '(uid=a)']);
  });

  it('keeps at most LdapCacheSize entries', async () => {
    const d = stub((f) => ok(entry(f)));
    const c = new CachingDirectory(d, { entries: 3, ttlMs: 60_000 });
    for (let i = 0; i < 10; i++) await c.lookup(`(uid=u${i})`, silentLog);
    expect(c.cachedEntries).toBe(3);
  });
});

describe('lookupCaches', () => {
  it('wraps each directory once, and none when the cache is off', () => {
    const d = stub((f) => ok(entry(f)));
    const wrap = lookupCaches({ entries: 10, ttlMs: 1_000 });
    const a = wrap(d);
    expect(a).toBeInstanceOf(CachingDirectory);
    expect(wrap(d)).toBe(a);
    expect(wrap(a)).toBe(a);
    expect(lookupCaches({ entries: 10, ttlMs: 0 })(d)).toBe(d);
    expect(lookupCaches({ entries: 0, ttlMs: 1_000 })(d)).toBe(d);
  });
});

describe('LdapNegativeCacheTTL', () => {
  it('remembers an unknown name for that long, and never a directory failure', async () => {
    let t = 0;
    const d = stub((f) =>
      f === '(uid=down)'
        ? err({ kind: 'unavailable', detail: 'x' })
        : err({ kind: 'no-such-user' }),
    );
    const c = new CachingDirectory(d, { entries: 0, ttlMs: 0, negativeTtlMs: 5_000, now: () => t });
    expect(await c.lookup('(uid=ghost)', silentLog)).toEqual(err({ kind: 'no-such-user' }));
    expect(await c.lookup('(uid=ghost)', silentLog)).toEqual(err({ kind: 'no-such-user' }));
    expect(d.searches).toEqual(['(uid=ghost)']);
    t = 5_000;
    await c.lookup('(uid=ghost)', silentLog);
    expect(d.searches).toEqual(['(uid=ghost)', '(uid=ghost)']);
    await c.lookup('(uid=down)', silentLog);
    await c.lookup('(uid=down)', silentLog);
    expect(d.searches.filter((f) => f === '(uid=down)')).toHaveLength(2);
  });

  it('0 turns it off', async () => {
    const d = stub(() => err({ kind: 'no-such-user' }));
    const c = new CachingDirectory(d, { entries: 10, ttlMs: 1_000, negativeTtlMs: 0 });
    await c.lookup('(uid=ghost)', silentLog);
    await c.lookup('(uid=ghost)', silentLog);
    expect(d.searches).toHaveLength(2);
  });
});
