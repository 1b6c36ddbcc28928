import { describe, expect, it } from 'vitest';
import { silentLog } from './log.js';
import { preAuthLine, preAuthenticate } from './preauth.js';

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
      {
        cacheTtlMs: 0,
        log: silentLog,
      },
    );
    expect(r).toEqual({ kind: 'refused', detail: 'empty password' });
  });

  it('no reachable directory is "unavailable", not a refusal', async () => {
    const r = await preAuthenticate(
      [{ host: '127.0.0.1', port: 1 }],
      'uid=a,o=t',
      Buffer.from('x'),
      {
        cacheTtlMs: 0,
        log: silentLog,
      },
    );
    expect(r.kind).toBe('unavailable');
  });
});
