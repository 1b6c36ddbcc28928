// The login loop's two ways of choosing accounts, against a fake IMAP server that counts the
// logins of each user: random picks for a duration, or every account once (filling a lookup cache).
import { afterEach, describe, expect, it } from 'vitest';
import { type FakeImap, startFakeImap } from '../test-support/fakeImap.js';
import { type LoginsJob, runLogins } from './scenarios.js';

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
