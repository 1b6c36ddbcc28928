// The login loop's two ways of choosing accounts, against a fake IMAP server that counts the
// logins of each user: random picks for a duration, or every account once (filling a lookup cache).
import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type LoginsJob, runLogins } from './scenarios.js';

let server: net.Server | undefined;
const sockets = new Set<net.Socket>();
afterEach(async () => {
  for (const s of sockets) s.destroy();
  await new Promise<void>((r) => (server === undefined ? r() : server.close(() => r())));
  server = undefined;
});

async function countingImap(logins: Map<string, number>): Promise<number> {
  server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.write('* OK fake\r\n');
    let buffer = '';
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('latin1');
      let i: number;
      while ((i = buffer.indexOf('\r\n')) >= 0) {
        const [tag, verb, arg] = buffer.slice(0, i).split(' ');
        buffer = buffer.slice(i + 2);
        if (verb === 'LOGIN') {
          const user = (arg ?? '').replace(/"/g, '');
          logins.set(user, (logins.get(user) ?? 0) + 1);
          socket.write(`${tag} OK logged in\r\n`);
        } else if (verb === 'LOGOUT') socket.end(`* BYE\r\n${tag} OK\r\n`);
        else socket.write(`${tag} OK\r\n`);
      }
    });
  });
  await new Promise<void>((r) => server?.listen(0, '127.0.0.1', r));
  return (server?.address() as net.AddressInfo).port;
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
