import { describe, expect, it } from 'vitest';
import { silentLog } from './log.js';
import { PreAuthCache, PreAuthPool, preAuthLine, preAuthenticate } from './preauth.js';

describe('pre-authentication', () => {
  it("the guide's line: yyyymmdd hhmmss (sid 0x…) user pre-authenticated - client-IP", () => {
    const line = preAuthLine(new Date(2026, 0, 2, 3, 4, 5), '0x1a2b', 'alice', '192.0.2.7');
    expect(line).toBe('20260102 030405 (sid 0x1a2b) alice pre-authenticated - 192.0.2.7');
  });

  it('an empty password is never sent as a bind (RFC 4513 §5.1.2 unauthenticated bind)', async () => {
    const r = await preAuthenticate(
      [{ host: '127.0.0.1', port: 1 }],
      'uid=a,o=t',
      Buffer.alloc(0),
      { cache: new PreAuthCache(0), pool: new PreAuthPool(), timeoutMs: 1_000, log: silentLog },
    );
    expect(r).toEqual({ kind: 'refused', detail: 'empty password' });
  });

  it('no reachable directory is "unavailable", not a refusal', async () => {
    const r = await preAuthenticate(
      [{ host: '127.0.0.1', port: 1 }],
      'uid=a,o=t',
      Buffer.from('x'),
      { cache: new PreAuthCache(0), pool: new PreAuthPool(), timeoutMs: 1_000, log: silentLog },
    );
    expect(r.kind).toBe('unavailable');
  });

  it('PreAuthCacheTTL: a success is remembered for that long, by DN and password', () => {
    let now = 1_000;
    const cache = new PreAuthCache(60_000, () => now);
    cache.add('uid=a,o=t', Buffer.from('right'));
    expect(cache.has('uid=a,o=t', Buffer.from('right'))).toBe(true);
    expect(cache.has('uid=a,o=t', Buffer.from('wrong'))).toBe(false);
    expect(cache.has('uid=b,o=t', Buffer.from('right'))).toBe(false);
    now += 60_000;
    expect(cache.has('uid=a,o=t', Buffer.from('right'))).toBe(false);
    const off = new PreAuthCache(0);
    off.add('uid=a,o=t', Buffer.from('right'));
    expect(off.has('uid=a,o=t', Buffer.from('right'))).toBe(false);
  });
});
