/**
 * Many multiplexors (issue 16, point 2): the test bed's real HAProxy (`send-proxy-v2`, TCP health
 * checks every 500 ms) in front of two built ImapProxy and two PopProxy processes, over a
 * replicated directory (an OpenLDAP provider and its syncrepl consumer, `LDAPHost` listing both).
 * The store sees the real client address through HAProxy and mmp; a login works while the
 * provider is stopped; an mmp killed with SIGKILL under load costs only its own sessions, and
 * new logins go to the other once HAProxy's check has marked it down.
 */

import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Haproxy, type Testbed, startHaproxy, startTestbed, waitUntil } from '@mmp/testbed';
import {
  IMAP_PROXY,
  POP_PROXY,
  type ProxyProcess,
  startProxyProcess,
} from './test-support/proxyProcess.js';
import { RawClient } from './test-support/rawClient.js';
import { storeLoginLine } from './test-support/storeLog.js';

/** Client addresses in this helper's loopback range. */
const IMAP_CLIENT = '127.0.9.30';
const POP_CLIENT = '127.0.9.31';
const DIRECTORY_CLIENT = '127.0.9.32';
const LOAD_CLIENT = '127.0.9.33';
const AFTER_KILL_CLIENT = '127.0.9.34';

const CHECK_INTERVAL_MS = 500;

let bed: Testbed;
const imap: ProxyProcess[] = [];
const pop: ProxyProcess[] = [];
let haproxy: Haproxy;

function proxyArgs(b: Testbed, backsidePort: number): string[] {
  // LDAPHost: provider first, then the consumer (a failover list).
  return [
    '-h',
    b.ldapHost,
    '-b',
    b.ldap.baseDn,
    '-D',
    b.ldap.bindDn,
    '-w',
    b.ldap.bindPassword,
  ].concat(['-c', String(backsidePort), '-v', '5']);
}

const behindHaproxy = {
  ProxyProtocol: 'ListenPort',
  ProxyProtocolTrustedNetworks: '127.0.0.1',
  ForwardClientAddress: 'yes',
};

beforeAll(async () => {
  bed = await startTestbed({
    tls: false,
    stores: 2,
    bulkUsers: 40,
    replicatedDirectory: true,
    ldapLogLevel: 'stats',
  });
  const started = await Promise.all([
    startProxyProcess(proxyArgs(bed, bed.backsidePorts.imap), behindHaproxy, IMAP_PROXY),
    startProxyProcess(proxyArgs(bed, bed.backsidePorts.imap), behindHaproxy, IMAP_PROXY),
    startProxyProcess(proxyArgs(bed, bed.backsidePorts.pop3), behindHaproxy, POP_PROXY),
    startProxyProcess(proxyArgs(bed, bed.backsidePorts.pop3), behindHaproxy, POP_PROXY),
  ]);
  imap.push(started[0], started[1]);
  pop.push(started[2], started[3]);
  // Server names are per backend: `mmp1` is the first ImapProxy, `pop1` the first PopProxy.
  const servers = (
    ps: ProxyProcess[],
    name = 'mmp',
  ): { name: string; host: string; port: number }[] =>
    ps.map((p, i) => ({ name: `${name}${i + 1}`, host: '127.0.0.1', port: p.port }));
  haproxy = await startHaproxy({
    listeners: [
      { name: 'imap', servers: servers(imap) },
      { name: 'pop3', servers: servers(pop, 'pop') },
    ],
    servers: servers(imap),
    proxyProtocol: 'v2',
    checkIntervalMs: CHECK_INTERVAL_MS,
    fall: 1,
    rise: 1,
    balance: 'roundrobin',
  });
  for (const name of ['mmp1', 'mmp2', 'pop1', 'pop2']) await haproxy.waitForServer(name, 'UP');
}, 180_000);

afterAll(async () => {
  await haproxy?.stop();
  await Promise.all([...imap, ...pop].map((p) => p.stop()));
  await bed?.stop();
});

/** Connect through HAProxy's IMAP listener from `from` and log in. */
async function imapLogin(uid: string, from: string): Promise<RawClient> {
  const user = bed.user(uid);
  const c = await RawClient.open(haproxy.listener('imap').port, '127.0.0.1', from);
  expect(await c.line()).toMatch(/^\* OK /);
  c.send(`a LOGIN "${user.uid}" "${user.password}"\r\n`);
  expect((await c.until('a')).at(-1)).toMatch(/^a OK /);
  return c;
}

/** Which of the IMAP proxies logged this client connection (by its real address and port). */
async function servedBy(c: RawClient, from: string): Promise<number> {
  const client = `"client":"${from}:${c.socket.localPort}"`;
  let found = -1;
  await waitUntil(`the proxy that served ${from}:${c.socket.localPort}`, async () => {
    for (const [i, p] of imap.entries()) {
      if ((await p.logs()).includes(client)) found = i;
    }
    return found >= 0;
  });
  return found;
}

describe('two mmp behind HAProxy', () => {
  it('the store sees the real client address through HAProxy and each mmp (IMAP ID, POP3 XCLIENT)', async () => {
    const served = new Set<number>();
    for (const uid of ['user001', 'user003']) {
      const line = await storeLoginLine(bed.store('A').logPath, 'imap', async () => {
        const c = await imapLogin(uid, IMAP_CLIENT);
        served.add(await servedBy(c, IMAP_CLIENT));
        c.send('z LOGOUT\r\n');
        await c.until('z');
        c.close();
      });
      expect(line).toContain(`rip=${IMAP_CLIENT},`);
    }
    // Round robin: the two logins went through both multiplexors.
    expect([...served].sort()).toEqual([0, 1]);
    const user = bed.user('user005');
    const line = await storeLoginLine(bed.store('A').logPath, 'pop3', async () => {
      const c = await RawClient.open(haproxy.listener('pop3').port, '127.0.0.1', POP_CLIENT);
      expect(await c.line()).toMatch(/^\+OK /);
      c.send(`USER ${user.uid}\r\n`);
      expect(await c.line()).toMatch(/^\+OK/);
      c.send(`PASS ${user.password}\r\n`);
      expect(await c.line()).toMatch(/^\+OK/);
      c.send('QUIT\r\n');
      await c.line();
      c.close();
    });
    expect(line).toContain(`rip=${POP_CLIENT},`);
  });

  it('a login works while the LDAP provider is stopped: the syncrepl consumer answers', async () => {
    const { provider, consumer } = bed.replication ?? {};
    if (provider === undefined || consumer === undefined) throw new Error('no replication');
    await provider.stop();
    try {
      // Users no proxy looked up before (the lookup cache cannot answer), one per mmp.
      for (const uid of ['user011', 'user012']) {
        const c = await imapLogin(uid, DIRECTORY_CLIENT);
        c.send('b SELECT INBOX\r\n');
        expect((await c.until('b')).at(-1)).toMatch(/^b OK /);
        c.close();
        const searches = (await readFile(consumer.logPath, 'utf8'))
          .split('\n')
          .filter((l) => l.includes(' SRCH ') && l.includes(`(uid=${uid})`));
        expect(searches.length).toBeGreaterThan(0);
      }
    } finally {
      await provider.start();
    }
  });

  it('SIGKILL of one mmp under load costs only its sessions; new logins go to the other once HAProxy marks it DOWN', async () => {
    // 12 logged-in sessions fetching in a loop, spread over both by round robin.
    const sessions = await Promise.all(
      Array.from({ length: 12 }, (_, i) => `user0${String(20 + i)}`).map(async (uid) => {
        const c = await imapLogin(uid, LOAD_CLIENT);
        c.send('s SELECT INBOX\r\n');
        expect((await c.until('s')).at(-1)).toMatch(/^s OK /);
        return { c, on: await servedBy(c, LOAD_CLIENT), fetched: 0, failed: '' };
      }),
    );
    expect(new Set(sessions.map((s) => s.on))).toEqual(new Set([0, 1]));
    let running = true;
    const loops = sessions.map(async (s) => {
      for (let n = 0; running; n++) {
        s.c.send(`f${n} FETCH 2 BODY[]\r\n`);
        const last = (await s.c.until(`f${n}`)).at(-1);
        if (last === undefined || !last.startsWith(`f${n} OK`)) {
          s.failed = last ?? 'closed';
          return;
        }
        s.fetched++;
      }
    });
    // Let every session fetch a few times, then kill mmp1 in the middle of it.
    await waitUntil('every session fetching', () =>
      Promise.resolve(sessions.every((s) => s.fetched >= 3)),
    );
    const victim = imap[0];
    if (victim === undefined) throw new Error('no mmp1');
    victim.child.kill('SIGKILL');
    await haproxy.waitForServer('mmp1', 'DOWN');
    // The survivors keep fetching after the kill.
    const counts = sessions.map((s) => s.fetched);
    await waitUntil('the survivors fetching on', () =>
      Promise.resolve(sessions.every((s, i) => s.on === 0 || s.fetched >= (counts[i] ?? 0) + 3)),
    );
    running = false;
    await Promise.all(loops);
    for (const s of sessions) {
      if (s.on === 0) {
        // mmp1's sessions ended with it: their connections closed mid-conversation.
        expect(s.failed).not.toBe('');
        await s.c.closed;
      } else {
        expect(s.failed).toBe('');
      }
    }
    // New logins: all succeed, all on mmp2.
    for (const uid of ['user033', 'user034', 'user035', 'user036']) {
      const c = await imapLogin(uid, AFTER_KILL_CLIENT);
      expect(await servedBy(c, AFTER_KILL_CLIENT)).toBe(1);
      c.close();
    }
    for (const s of sessions) s.c.close();
  }, 120_000);
});
