/**
 * Running out of the process's resources (issue 14, points 4 and 5), on the real test bed with the
 * built proxy: a LogDir on a full disk costs log records, never sessions; the descriptor limit
 * costs new connections, never piped sessions.
 */

import { readdir } from 'node:fs/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Testbed, mountFullTmpfs, startTestbed } from '@mmp/testbed';
import { type ProxyProcess, startProxyProcess, testbedArgs } from './test-support/proxyProcess.js';
import { RawClient } from './test-support/rawClient.js';
import { DESCRIPTOR_RESERVE } from './limits.js';

let bed: Testbed;
const running: ProxyProcess[] = [];

beforeAll(async () => {
  bed = await startTestbed({ tls: false, stores: 1 });
}, 180_000);

afterAll(async () => {
  await Promise.all(running.map((p) => p.stop()));
  await bed?.stop();
});

async function proxy(options: Parameters<typeof startProxyProcess>[3] = {}): Promise<ProxyProcess> {
  const args = testbedArgs(bed, bed.backsidePorts.imap, { logLevel: 5 });
  const p = await startProxyProcess(args, {}, undefined, options);
  running.push(p);
  return p;
}

/** An IMAP client logged in as `uid` through `p`, its INBOX examined. */
async function loggedIn(p: ProxyProcess, uid: string): Promise<RawClient> {
  const user = bed.user(uid);
  const c = await RawClient.open(p.port);
  await c.line();
  c.send(`a LOGIN ${user.uid} ${user.password}\r\n`);
  expect((await c.until('a')).at(-1)).toMatch(/^a OK /);
  c.send('b EXAMINE INBOX\r\n');
  expect((await c.until('b')).at(-1)).toMatch(/^b OK /);
  return c;
}

/** Message 1 fetched whole through `c`: the untagged bytes. */
async function fetchMessage(c: RawClient, tag: string): Promise<string[]> {
  c.send(`${tag} FETCH 1 BODY.PEEK[]\r\n`);
  const lines = await c.until(tag);
  expect(lines.at(-1)).toMatch(new RegExp(`^${tag} OK `));
  return lines.slice(0, -1);
}

/** Wait until `check` holds (records and stderr are written asynchronously). */
async function until(check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition never held');
    await new Promise((r) => setTimeout(r, 50));
  }
}

function count(text: string, part: string): number {
  return text.split(part).length - 1;
}

describe('point 5: a full LogDir costs log records, never sessions', () => {
  it('sessions log in and fetch byte-exact, stderr says it once, logging comes back with space', async () => {
    const reference = await proxy();
    const r = await loggedIn(reference, 'alice');
    const expected = await fetchMessage(r, 'f');
    r.close();

    const disk = await mountFullTmpfs({ sizeKiB: 64 });
    try {
      const p = await proxy({ logDir: disk.path });
      for (const i of [1, 2, 3]) {
        const c = await loggedIn(p, 'alice');
        expect(await fetchMessage(c, `f${i}`)).toEqual(expected);
        c.close();
        // each session's records meet the full disk again
        await until(() => p.output().includes('cannot be written'));
      }
      expect(count(p.output(), 'cannot be written')).toBe(1);
      expect(p.child.exitCode).toBeNull();
      expect(await p.logs()).toBe('');

      await disk.free();
      await until(() => p.output().includes('writable again'));
      // the records that waited reach the file, the recovery is said in it, and new ones follow
      const logins = (log: string): number => count(log, 'login succeeded');
      await until(async () => logins(await p.logs()) === 3);
      const c = await loggedIn(p, 'alice');
      c.close();
      await until(async () => logins(await p.logs()) === 4);
      expect(count(await p.logs(), 'log file writable again')).toBe(1);
      expect(count(p.output(), 'cannot be written')).toBe(1);
    } finally {
      await disk.unmount();
    }
  });
});

/**
 * Under a low descriptor limit the proxy caps client connections at (limit − DESCRIPTOR_RESERVE)
 * / 2 (`clientLimits.ts`), so a flood of clients is refused with a greeting before the process runs
 * out of descriptors for its stores and directory; libuv's own EMFILE handling (accept, close at
 * once, tell Node nothing) is only the last line behind it.
 */
describe('point 5: at the descriptor limit new connections are refused at once, then service is back', () => {
  it('the piped session is untouched, new logins work once descriptors free up', async () => {
    const cap = 20;
    const p = await proxy({ maxFiles: DESCRIPTOR_RESERVE + 2 * cap });
    await until(async () =>
      (await p.logs()).includes('the descriptor limit caps client connections'),
    );
    const piped = await loggedIn(p, 'alice');
    const expected = await fetchMessage(piped, 'f0');
    // Fill the cap with clients that only read the greeting; the next ones are refused.
    const held: RawClient[] = [];
    const refusals: string[] = [];
    while (refusals.length < 5) {
      const c = await RawClient.open(p.port);
      const greeting = await c.line();
      if (greeting?.startsWith('* OK') === true) held.push(c);
      else {
        refusals.push(greeting ?? 'closed');
        c.close();
      }
      expect(held.length).toBeLessThan(cap);
    }
    expect(held.length).toBe(cap - 1);
    expect(new Set(refusals)).toEqual(
      new Set(['* BYE [UNAVAILABLE] Too many connections, try again later']),
    );
    expect(await fetchMessage(piped, 'f1')).toEqual(expected);
    expect(await p.logs()).toContain('"cap":20');
    // Five refused, one record at LogLevel 0 (the rest of the minute would be one more, counted).
    const full = 'connections refused: the server is full';
    await until(async () => count(await p.logs(), full) > 0);
    const records = (await p.logs()).split('\n').filter((l) => l.includes(full));
    expect(records).toHaveLength(1);
    expect(records[0]).toContain('"refused":1');
    expect(records[0]).toContain('"limit":"descriptor cap"');

    for (const c of held) c.close();
    await until(async () => {
      const c = await RawClient.open(p.port);
      const greeted = (await c.line())?.startsWith('* OK') === true;
      c.close();
      return greeted;
    });
    const again = await loggedIn(p, 'alice');
    expect(await fetchMessage(again, 'f2')).toEqual(expected);
    expect(await fetchMessage(piped, 'f3')).toEqual(expected);
    expect(p.child.exitCode).toBeNull();
  });

  it('MaxClientConnections refuses the same way, with the same one record naming it', async () => {
    const args = testbedArgs(bed, bed.backsidePorts.imap, { logLevel: 0 });
    const p = await startProxyProcess(args, { MaxClientConnections: '2' });
    running.push(p);
    const held = [await RawClient.open(p.port), await RawClient.open(p.port)];
    for (const c of held) expect(await c.line()).toMatch(/^\* OK/);
    for (let i = 0; i < 3; i++) {
      const c = await RawClient.open(p.port);
      expect(await c.line()).toBe('* BYE [UNAVAILABLE] Too many connections, try again later');
      c.close();
    }
    const full = 'connections refused: the server is full';
    await until(async () => count(await p.logs(), full) > 0);
    const records = (await p.logs()).split('\n').filter((l) => l.includes(full));
    expect(records).toHaveLength(1);
    expect(records[0]).toContain('"limit":"MaxClientConnections"');
    for (const c of held) c.close();
  });
});

/** How the client leaves: a FIN (half-close; it still reads) or a reset. */
type Leave = 'half-close' | 'reset';

function leave(c: RawClient, how: Leave): void {
  if (how === 'half-close') c.socket.end();
  else c.socket.resetAndDestroy();
}

/** The proxy's open descriptors, once the count has held still for half a second. */
async function stableDescriptors(pid: number): Promise<number> {
  const read = async (): Promise<number> => (await readdir(`/proc/${pid}/fd`)).length;
  let last = await read();
  let still = 0;
  while (still < 10) {
    await new Promise((r) => setTimeout(r, 50));
    const now = await read();
    still = now === last ? still + 1 : 0;
    last = now;
  }
  return last;
}

/**
 * The store-side ends of `proxyPid`'s connections to store A's IMAP port (`ss`: the store's
 * process, and the bytes it has not read). Other tests' proxies may still hold sessions there.
 */
async function storeSockets(proxyPid: number): Promise<{ pid: number; unread: number }[]> {
  const store = bed.store('A');
  const at = `${store.host}:${store.imapPort}`;
  const r = await execa('ss', ['-tnpH', 'state', 'established', `( src ${at} or dst ${at} )`]);
  const rows = r.stdout.split('\n').map((l) => l.trim().split(/\s+/));
  // Recv-Q Send-Q Local Peer Process
  const pidOf = (row: string[]): number => Number(/pid=(\d+)/.exec(row[4] ?? '')?.[1]);
  const mine = new Set(
    rows.filter((row) => row[3] === at && pidOf(row) === proxyPid).map((row) => row[2]),
  );
  return rows
    .filter((row) => row[2] === at && mine.has(row[3]))
    .map((row) => ({ unread: Number(row[0]), pid: pidOf(row) }));
}

describe('point 4: half-close and reset at every phase leak no descriptor', () => {
  it('the proxy holds as many descriptors after 30 such sessions as before', async () => {
    const p = await proxy();
    const pid = p.child.pid as number;
    const user = bed.user('alice');
    // A first login opens the directory connections that stay.
    (await loggedIn(p, 'alice')).close();
    const baseline = await stableDescriptors(pid);

    const phases: Record<string, (c: RawClient) => Promise<void>> = {
      'before login': async (c) => {
        await c.line();
      },
      // LOGIN sent, the client leaves while the proxy looks up, logs in and replays
      'during the login and replay': async (c) => {
        await c.line();
        c.send(`a LOGIN ${user.uid} ${user.password}\r\n`);
      },
      'while piping': async (c) => {
        await c.line();
        c.send(`a LOGIN ${user.uid} ${user.password}\r\n`);
        await c.until('a');
        c.send('b EXAMINE INBOX\r\n');
      },
    };
    for (const reach of Object.values(phases)) {
      for (const how of ['half-close', 'reset'] as const) {
        for (let round = 0; round < 5; round++) {
          const c = await RawClient.open(p.port);
          await reach(c);
          leave(c, how);
        }
      }
    }
    await until(async () => (await stableDescriptors(pid)) <= baseline);
    expect(await stableDescriptors(pid)).toBe(baseline);
    expect(p.child.exitCode).toBeNull();
  });

  it('from the store side while piping: its process killed (FIN) or reset, the client connection ends and no descriptor stays', async () => {
    const p = await proxy();
    const pid = p.child.pid as number;
    (await loggedIn(p, 'alice')).close();
    await until(async () => (await storeSockets(pid)).length === 0);
    const baseline = await stableDescriptors(pid);
    for (const how of ['close', 'reset'] as const) {
      for (let round = 0; round < 3; round++) {
        const c = await loggedIn(p, 'alice');
        let store: { pid: number; unread: number }[] = [];
        await until(async () => (store = await storeSockets(pid)).length === 1);
        const imap = store[0]?.pid as number;
        if (how === 'reset') {
          // Bytes the store never read make the kernel answer its death with a reset.
          process.kill(imap, 'SIGSTOP');
          c.send('c NOOP\r\n');
          await until(async () => ((await storeSockets(pid))[0]?.unread ?? 0) > 0);
        }
        process.kill(imap, 'SIGKILL');
        await c.closed;
        await until(async () => (await storeSockets(pid)).length === 0);
      }
    }
    await until(async () => (await stableDescriptors(pid)) <= baseline);
    expect(await stableDescriptors(pid)).toBe(baseline);
    expect(p.child.exitCode).toBeNull();
  });
});
