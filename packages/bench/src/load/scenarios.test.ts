// The login loop's two ways of choosing accounts, against a fake IMAP server that counts the
// logins of each user: random picks for a duration, or every account once (filling a lookup cache).
// The fetch loop's unmeasured warm-up, against a fake that answers FETCH with a literal.
import { afterEach, describe, expect, it } from 'vitest';
import { type FakeImap, startFakeImap } from '../test-support/fakeImap.js';
import { type LoginsJob, runFetch, runLogins } from './scenarios.js';

let fake: FakeImap | undefined;
afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

async function countingImap(logins: Map<string, number>): Promise<number> {
  fake = await startFakeImap(() => ({ tag, verb, arg }, socket) => {
    if (verb === 'LOGIN') {
      logins.set(arg, (logins.get(arg) ?? 0) + 1);
      socket.write(`${tag} OK logged in\r\n`);
    } else if (verb === 'LOGOUT') socket.end(`* BYE\r\n${tag} OK\r\n`);
    else socket.write(`${tag} OK\r\n`);
  });
  return fake.port;
}

function job(port: number, users: string[], extra: Partial<LoginsJob>): LoginsJob {
  return {
    kind: 'logins',
    endpoint: { protocol: 'imap', host: '127.0.0.1', port },
    accounts: users.map((user) => ({ user, pass: 'p' })),
    concurrency: 3,
    warmupMs: 0,
    durationMs: 0,
    localAddresses: [],
    timeoutMs: 5000,
    ...extra,
  };
}

describe('runLogins', () => {
  it('with eachAccountOnce logs in with every account exactly once, then stops', async () => {
    const logins = new Map<string, number>();
    const port = await countingImap(logins);
    const users = Array.from({ length: 23 }, (_, i) => `user${i}`);
    const result = await runLogins(job(port, users, { eachAccountOnce: true }));
    expect(result.errors).toBe(0);
    expect(result.cycles).toBe(users.length);
    expect([...logins.keys()].sort()).toEqual([...users].sort());
    expect([...logins.values()].every((n) => n === 1)).toBe(true);
  });

  it('without it picks accounts at random for the duration (repeats included)', async () => {
    const logins = new Map<string, number>();
    const port = await countingImap(logins);
    const result = await runLogins(job(port, ['a', 'b'], { durationMs: 300 }));
    expect(result.errors).toBe(0);
    // far more cycles than accounts in 300 ms against a local fake
    expect(result.cycles).toBeGreaterThan(10);
    expect((logins.get('a') ?? 0) + (logins.get('b') ?? 0)).toBeGreaterThanOrEqual(result.cycles);
  });
});

/** A fake IMAP store answering every FETCH with a `size`-byte literal; records sessions and tags. */
async function fetchingImap(
  size: number,
  seen: { sessions: number; tags: string[] },
): Promise<number> {
  const body = Buffer.alloc(size, 0x78);
  fake = await startFakeImap(() => {
    seen.sessions++;
    return ({ tag, verb }, socket) => {
      if (verb === 'FETCH') {
        seen.tags.push(tag);
        socket.write(`* 3 FETCH (BODY[] {${size}}\r\n`);
        socket.write(body);
        socket.write(`)\r\n${tag} OK\r\n`);
      } else if (verb === 'LOGOUT') socket.end(`* BYE\r\n${tag} OK\r\n`);
      else socket.write(`${tag} OK\r\n`);
    };
  });
  return fake.port;
}

describe('runFetch', () => {
  it('fetches unmeasured for warmupMs in the same session, and counts only the window', async () => {
    const size = 4096;
    const seen = { sessions: 0, tags: [] as string[] };
    const port = await fetchingImap(size, seen);
    const result = await runFetch({
      kind: 'fetch',
      endpoint: { protocol: 'imap', host: '127.0.0.1', port },
      account: { user: 'u', pass: 'p' },
      message: 3,
      messageSize: size,
      warmupMs: 300,
      durationMs: 100,
      timeoutMs: 5000,
    });
    expect(seen.sessions).toBe(1);
    // far more than the one warm-up fetch there always was, in 300 ms against a local fake
    expect(result.warmupFetches).toBeGreaterThan(1);
    expect(seen.tags.filter((t) => t.startsWith('w'))).toHaveLength(result.warmupFetches);
    expect(seen.tags.filter((t) => t.startsWith('f'))).toHaveLength(result.fetches);
    // the window's bytes are its own fetches' answers (a few dozen bytes of framing each)
    expect(result.bytes).toBeGreaterThanOrEqual(result.fetches * size);
    expect(result.bytes).toBeLessThan(result.fetches * (size + 100));
  });
});
