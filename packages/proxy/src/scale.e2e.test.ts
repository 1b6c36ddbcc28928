/**
 * Issue 8's features end to end, on the built ImapProxy in front of the real test bed: NumThreads
 * workers, the directory lookup cache (counted in slapd's own `stats` log), and the cap on
 * connection attempts to one store (against the test bed's hanging host).
 */

import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Testbed, childrenOf, startTestbed, waitUntil } from '@mmp/testbed';
import {
  IMAP_PROXY,
  type ProxyProcess,
  startProxyProcess,
  testbedArgs,
} from './test-support/proxyProcess.js';
import { RawClient } from './test-support/rawClient.js';
import { onWorker } from './test-support/steer.js';

let bed: Testbed;

const proxyArgs = (b: Testbed): string[] => testbedArgs(b, b.backsidePorts.imap);

beforeAll(async () => {
  bed = await startTestbed({ tls: false, bulkUsers: 4, ldapLogLevel: 'stats' });
}, 180_000);

afterAll(async () => {
  await bed?.stop();
});

/** Connect, read the greeting, log in; resolves with the client and the tagged answer. */
async function login(
  port: number,
  uid: string,
  timeoutMs = 10_000,
): Promise<{ c: RawClient; answer: string }> {
  const c = await RawClient.open(port);
  await c.line(timeoutMs);
  const user = bed.user(uid);
  c.send(`a LOGIN ${user.uid} ${user.password}\r\n`);
  const lines = await c.until('a', timeoutMs);
  return { c, answer: lines.at(-1) ?? '' };
}

/** The pid of the worker that logged this client's connection. */
async function workerOf(proxy: ProxyProcess, c: RawClient): Promise<number> {
  const client = `127.0.0.1:${c.socket.localPort ?? 0}`;
  let pid = 0;
  await waitUntil('the connection in the log', async () => {
    for (const line of (await proxy.logs()).split('\n')) {
      if (!line.includes('"client connected"') || !line.includes(`"${client}"`)) continue;
      pid = (JSON.parse(line) as { pid: number }).pid;
      return true;
    }
    return false;
  });
  return pid;
}

const alive = (pid: number): boolean => existsSync(`/proc/${pid}`);

describe('NumThreads', () => {
  it('runs 2 workers that share the listener, replaces a killed one while the other keeps its sessions, passes SIGHUP on, and stops them all on SIGTERM', async () => {
    const proxy = await startProxyProcess(proxyArgs(bed), { NumThreads: '2' });
    const primary = proxy.child.pid ?? 0;
    try {
      const workers = childrenOf(primary);
      expect(workers).toHaveLength(2);
      for (const w of workers) {
        const argv = (await readFile(`/proc/${w}/cmdline`, 'utf8')).split('\0');
        expect(argv).toContain(IMAP_PROXY);
        // forked with the proxy's Node flags even though the primary was started without them
        expect(argv).toContain('--max-semi-space-size=2');
      }

      // Logins through both workers, two each (steered: the kernel need not take them in turn).
      const sessions: { c: RawClient; pid: number }[] = [];
      for (let i = 0; i < 4; i++) {
        const { c, answer } = await onWorker(workers, workers[i % 2] ?? 0, () =>
          login(proxy.port, 'alice'),
        );
        expect(answer).toMatch(/^a OK/);
        sessions.push({ c, pid: await workerOf(proxy, c) });
      }
      expect(new Set(sessions.map((s) => s.pid))).toEqual(new Set(workers));

      // Kill one worker: its sessions end, the other worker's go on, a new worker takes its place.
      const [victim, survivor] = workers as [number, number];
      process.kill(victim, 'SIGKILL');
      for (const s of sessions.filter((x) => x.pid === victim)) await s.c.closed;
      const kept = sessions.find((s) => s.pid === survivor);
      if (kept === undefined) throw new Error('no session on the surviving worker');
      kept.c.send('b NOOP\r\n');
      expect((await kept.c.until('b')).at(-1)).toMatch(/^b OK/);
      let replaced: number[] = [];
      await waitUntil(
        'a replacement worker',
        async () => {
          replaced = childrenOf(primary);
          return replaced.length === 2 && !replaced.includes(victim);
        },
        { timeoutMs: 20_000 },
      );
      expect(replaced).toContain(survivor);
      await waitUntil('the replacement listening', async () =>
        (await proxy.logs()).includes('"worker replaced"'),
      );
      const again = await login(proxy.port, 'alice');
      expect(again.answer).toMatch(/^a OK/);
      again.c.close();

      // SIGHUP: the primary re-reads the configuration and every worker takes it.
      process.kill(primary, 'SIGHUP');
      await waitUntil('SIGHUP in every worker', async () => {
        const pids = (await proxy.logs())
          .split('\n')
          .filter((l) => l.includes('new connections get the new configuration'))
          .map((l) => (JSON.parse(l) as { pid: number }).pid);
        return replaced.every((p) => pids.includes(p));
      });

      // SIGTERM: the workers let logged-in sessions finish, then all exit with the primary.
      for (const s of sessions) if (s !== kept) s.c.close();
      proxy.signal();
      kept.c.send('c NOOP\r\n');
      expect((await kept.c.until('c')).at(-1)).toMatch(/^c OK/);
      kept.c.send('d LOGOUT\r\n');
      await kept.c.closed;
      expect(await proxy.stop()).toBe(0);
      for (const p of [...replaced, primary]) expect(alive(p)).toBe(false);
    } finally {
      for (const s of [...childrenOf(primary), primary]) {
        if (alive(s)) process.kill(s, 'SIGKILL');
      }
      await proxy.stop();
    }
  }, 90_000);
});

/** slapd `stats` lines of searches whose filter names this user. */
async function searchesFor(uid: string): Promise<number> {
  const text = await readFile(bed.ldap.logPath, 'utf8');
  return text.split('\n').filter((l) => l.includes(' SRCH ') && l.includes(`(uid=${uid})`)).length;
}

describe('directory lookup cache', () => {
  let proxy: ProxyProcess;
  beforeAll(async () => {
    proxy = await startProxyProcess(proxyArgs(bed), { LdapCacheTTL: '900' });
  }, 30_000);
  afterAll(async () => {
    await proxy?.stop();
  });

  it('a second login of a user does not search the directory', async () => {
    for (let i = 0; i < 3; i++) {
      const { c, answer } = await login(proxy.port, 'bob');
      expect(answer).toMatch(/^a OK/);
      c.close();
    }
    await waitUntil('slapd logged the search', async () => (await searchesFor('bob')) >= 1);
    expect(await searchesFor('bob')).toBe(1);
  });

  it('a failed store connection evicts the user: the next login searches again', async () => {
    // failover: first mailHost is dead, the second (B) works.
    for (let i = 0; i < 2; i++) {
      const { c, answer } = await login(proxy.port, 'failover');
      expect(answer).toMatch(/^a OK/);
      c.close();
    }
    await waitUntil('slapd logged both searches', async () => (await searchesFor('failover')) >= 2);
    expect(await searchesFor('failover')).toBe(2);
  });
});

describe('MaxConcurrentConnectionAttempts', () => {
  let proxy: ProxyProcess;
  beforeAll(async () => {
    // A connect timeout longer than this test's own timeout: only skipping the hung store can
    // make the logins below finish in time.
    proxy = await startProxyProcess(proxyArgs(bed), {
      MaxConcurrentConnectionAttempts: '2',
      StoreConnectTimeout: '20',
    });
  }, 30_000);
  afterAll(async () => {
    await proxy?.stop();
  });

  it('logins beyond the cap skip the hung store and fail over to the next mailHost, while 2 still wait on it', async () => {
    const user = bed.user('stalled');
    const clients = await Promise.all(Array.from({ length: 6 }, () => RawClient.open(proxy.port)));
    try {
      const settled: (string | undefined)[] = clients.map(() => undefined);
      for (const [i, c] of clients.entries()) {
        await c.line();
        c.send(`a LOGIN ${user.uid} ${user.password}\r\n`);
        void c.until('a', 14_000).then(
          (lines) => (settled[i] = lines.at(-1) ?? ''),
          () => undefined,
        );
      }
      // Four are answered long before the hung store's timeout: they wait for a slot only until
      // the store counts as stalled (3 s without a finished attempt), then log in through B (or,
      // should B be stalled too, get the temporary failure); none waits for the 20 s timeout.
      await waitUntil(
        'four answers',
        () => Promise.resolve(settled.filter((a) => a !== undefined).length === 4),
        { timeoutMs: 13_000 },
      );
      const answered = settled.filter((a) => a !== undefined);
      for (const a of answered) expect(a).toMatch(/^a (OK|NO \[(UNAVAILABLE|ALERT)\])/);
      expect(answered.some((a) => a.startsWith('a OK'))).toBe(true);
      // The two in flight to the hung store have no answer yet: its timeout (20 s) is not over.
      expect(settled.filter((a) => a === undefined)).toHaveLength(2);
    } finally {
      for (const c of clients) c.close();
    }
  }, 15_000);
});

describe('MaxConcurrentConnectionAttempts and a store slow to refuse', () => {
  let proxy: ProxyProcess;
  beforeAll(async () => {
    // One attempt at a time per store, and no penalty of our own: the client hears the store's
    // refusal as soon as the store gives it (Dovecot takes its time over a wrong password).
    proxy = await startProxyProcess(proxyArgs(bed), {
      MaxConcurrentConnectionAttempts: '1',
      AuthFailureDelay: '0',
    });
  }, 30_000);
  afterAll(async () => {
    await proxy?.stop();
  });

  it('a wrong password the store has not refused yet holds up no other login to that store', async () => {
    const [wrong, right] = bed.users.filter((u) => u.kind === 'bulk' && u.store === 'A');
    if (wrong === undefined || right === undefined) throw new Error('two users on store A');
    const answers: string[] = [];
    const attacker = await RawClient.open(proxy.port);
    const user = await RawClient.open(proxy.port);
    try {
      await attacker.line();
      await user.line();
      attacker.send(`a LOGIN ${wrong.uid} not-the-password\r\n`);
      const refused = attacker.until('a').then((l) => answers.push(l.at(-1) ?? ''));
      // let the wrong password reach the store and take the store's one attempt slot
      await new Promise((r) => setTimeout(r, 150));
      user.send(`b LOGIN ${right.uid} ${right.password}\r\n`);
      const accepted = user.until('b').then((l) => answers.push(l.at(-1) ?? ''));
      await Promise.all([refused, accepted]);
      expect(answers[0]).toMatch(/^b OK/);
      expect(answers[1]).toMatch(/^a NO \[AUTHENTICATIONFAILED\]/);
    } finally {
      attacker.close();
      user.close();
    }
  });
});
