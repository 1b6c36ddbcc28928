/**
 * Hostile clients against the built ImapProxy and PopProxy on the test bed (issue 13): one
 * unauthenticated client must not hurt anyone else. Each case comes from its own address of
 * 127.0.7.0/24, so that the per-address protections (which the other test files relax for
 * 127.0.0.1, `TEST_LIMITS`) are those of a real deployment.
 */

import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Testbed, childrenOf, startTestbed } from '@mmp/testbed';
import {
  POP_PROXY,
  type ProxyProcess,
  startProxyProcess,
  testbedArgs,
} from '../test-support/proxyProcess.js';
import { RawClient } from '../test-support/rawClient.js';
import { onWorker } from '../test-support/steer.js';
import { MAX_COMMANDS_BEFORE_LOGIN } from '../limits.js';

const AUTH_FAILED = 'NO [AUTHENTICATIONFAILED] Authentication failed.';
const ADDRESS_FULL = '* BYE [UNAVAILABLE] Too many connections from your address, try again later';

let bed: Testbed;
let imap: ProxyProcess;
let pop: ProxyProcess;

/** The protections as deployed, small enough to reach in a test. */
const HOSTILE_LIMITS = {
  AuthFailureDelay: '1',
  AuthFailureDelayMax: '4',
  MaxConnectionsPerAddress: '3',
  ConnectionLimitExempt: '127.0.0.1,127.0.7.9',
  Timeout: '60',
  LdapCacheTTL: '0',
};

beforeAll(async () => {
  bed = await startTestbed({ tls: false });
  imap = await startProxyProcess(
    testbedArgs(bed, bed.backsidePorts.imap, { logLevel: 3 }),
    HOSTILE_LIMITS,
  );
  pop = await startProxyProcess(
    testbedArgs(bed, bed.backsidePorts.pop3, { logLevel: 3 }),
    HOSTILE_LIMITS,
    POP_PROXY,
  );
}, 180_000);

afterAll(async () => {
  await imap?.stop();
  await pop?.stop();
  await bed?.stop();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function greeted(proxy: ProxyProcess, from: string): Promise<RawClient> {
  const c = await RawClient.open(proxy.port, '127.0.0.1', from);
  const greeting = await c.line();
  expect(greeting).toMatch(/^(\* OK|\+OK) /);
  return c;
}

/** The log records of the proxy, parsed (JSON lines). */
async function records(proxy: ProxyProcess): Promise<Record<string, unknown>[]> {
  return (await proxy.logs())
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The delays of failed logins from `client`, in order. */
async function delaysOf(proxy: ProxyProcess, client: string): Promise<unknown[]> {
  return (await records(proxy))
    .filter((r) => r['msg'] === 'failed login delayed' && r['client'] === client)
    .map((r) => r['ms']);
}

describe('LoginTimeout: the whole time before login, whatever the client sends', () => {
  /** A proxy whose clients have 2 s to log in. */
  async function hurried(program?: string): Promise<ProxyProcess> {
    const backside = program === POP_PROXY ? bed.backsidePorts.pop3 : bed.backsidePorts.imap;
    return startProxyProcess(
      testbedArgs(bed, backside),
      { ...HOSTILE_LIMITS, LoginTimeout: '2' },
      program,
    );
  }

  it('IMAP: a client sending NOOP every 300 ms is told goodbye and closed', async () => {
    const proxy = await hurried();
    try {
      const c = await greeted(proxy, '127.0.7.30');
      const said: string[] = [];
      for (let i = 0; i < 100; i++) {
        c.send(`n${i} NOOP\r\n`);
        const line = await c.line();
        if (line === undefined) break;
        said.push(line);
        if (line.startsWith('* BYE')) break;
        await sleep(300);
      }
      expect(said.at(-1)).toBe('* BYE Autologout; no login in time');
      expect(said.filter((l) => / OK NOOP completed$/.test(l)).length).toBeGreaterThan(0);
      expect(await c.rest()).toEqual([]);
    } finally {
      await proxy.stop();
    }
  });

  it('POP3: a client dripping one byte of a line is closed', async () => {
    const proxy = await hurried(POP_PROXY);
    try {
      const c = await greeted(proxy, '127.0.7.31');
      const rest = c.rest(20_000);
      for (const b of 'USER someone-who-never-ends') {
        if (c.socket.destroyed) break;
        c.send(b);
        await sleep(200);
      }
      expect(await rest).toEqual(['-ERR Disconnected: no login in time']);
    } finally {
      await proxy.stop();
    }
  });
});

describe('bad commands: in a row and in all', () => {
  it('IMAP: garbage interleaved with NOOP is closed at the tenth, and never echoed', async () => {
    const c = await greeted(imap, '127.0.7.32');
    const said: string[] = [];
    for (let i = 0; i < 10; i++) {
      c.send(`x${i} GET<B>/index.html\r\nn${i} NOOP\r\n`);
      said.push(...(await c.until(`x${i}`)));
      if (i < 9) said.push(...(await c.until(`n${i}`)));
    }
    expect(said.filter((l) => l.includes('BAD'))).toEqual(
      Array.from({ length: 10 }, (_, i) => `x${i} BAD Unknown command`),
    );
    expect(await c.rest()).toEqual(['* BYE Too many invalid commands']);
  });

  it('POP3: an unknown command and USER are not echoed', async () => {
    const c = await greeted(pop, '127.0.7.33');
    c.send('GET<B>X / HTTP/1.1\r\nGETX /\r\nUSER <script>alice\r\nQUIT\r\n');
    expect(await c.rest()).toEqual([
      '-ERR Invalid command',
      '-ERR Unknown command',
      '+OK password required',
      '+OK Logging out',
    ]);
  });
});

describe('connection limits', () => {
  for (const [name, proxy, bye] of [
    ['IMAP', (): ProxyProcess => imap, ADDRESS_FULL],
    [
      'POP3',
      (): ProxyProcess => pop,
      '-ERR [SYS/TEMP] Too many connections from your address, try again later',
    ],
  ] as const) {
    it(`${name}: the fourth connection from one address is refused with a greeting, others are served`, async () => {
      const held = await Promise.all([1, 2, 3].map(() => greeted(proxy(), '127.0.7.10')));
      const fourth = await RawClient.open(proxy().port, '127.0.0.1', '127.0.7.10');
      expect(await fourth.rest()).toEqual([bye]);
      // Another address, and an exempt one, are not affected.
      const other = await greeted(proxy(), '127.0.7.11');
      const exempt = await Promise.all([1, 2, 3, 4, 5].map(() => greeted(proxy(), '127.0.7.9')));
      // A connection that closes makes room again.
      held[0]?.close();
      let again: string | undefined;
      for (let i = 0; i < 50 && (again === undefined || again === bye); i++) {
        const c = await RawClient.open(proxy().port, '127.0.0.1', '127.0.7.10');
        again = await c.line();
        if (again === bye) await sleep(100);
        held.push(c);
      }
      expect(again).toMatch(/^(\* OK|\+OK) /);
      for (const c of [...held, other, ...exempt]) c.close();
    });
  }

  it('MaxClientConnections: over the global cap, every address is refused with a greeting', async () => {
    const small = await startProxyProcess(testbedArgs(bed, bed.backsidePorts.imap), {
      MaxClientConnections: '2',
    });
    try {
      const held = [await greeted(small, '127.0.7.12'), await greeted(small, '127.0.7.13')];
      const third = await RawClient.open(small.port, '127.0.0.1', '127.0.7.14');
      expect(await third.rest()).toEqual([
        '* BYE [UNAVAILABLE] Too many connections, try again later',
      ]);
      for (const c of held) c.close();
    } finally {
      await small.stop();
    }
  });

  it('ConnectionLimitPrefix 24: addresses of one /24 count together', async () => {
    const grouped = await startProxyProcess(testbedArgs(bed, bed.backsidePorts.imap), {
      MaxConnectionsPerAddress: '2',
      ConnectionLimitPrefix: '24',
      ConnectionLimitExempt: '127.0.0.1',
    });
    try {
      const held = [await greeted(grouped, '127.0.7.15'), await greeted(grouped, '127.0.7.16')];
      const third = await RawClient.open(grouped.port, '127.0.0.1', '127.0.7.17');
      expect(await third.rest()).toEqual([ADDRESS_FULL]);
      held.push(await greeted(grouped, '127.0.6.17'));
      for (const c of held) c.close();
    } finally {
      await grouped.stop();
    }
  });
});

describe('failed logins wait, per client address', () => {
  /** One LOGIN on its own connection; its answer. */
  async function loginFrom(from: string, user: string, pass: string): Promise<string | undefined> {
    const c = await greeted(imap, from);
    c.send(`a LOGIN ${user} ${pass}\r\n`);
    const answer = (await c.until('a', 30_000)).at(-1);
    c.close();
    return answer;
  }

  it('doubles per address up to the cap; unknown users alike; a success resets only its own address', async () => {
    const alice = bed.userOn('A');
    const attacker = '127.0.7.20';
    const other = '127.0.7.21';
    // Wrong password, unknown user, wrong password: the same answer.
    expect(await loginFrom(attacker, alice.uid, 'wrong')).toBe(`a ${AUTH_FAILED}`);
    expect(await loginFrom(attacker, 'nobody-here', 'wrong')).toBe(`a ${AUTH_FAILED}`);
    expect(await loginFrom(attacker, alice.uid, 'wrong')).toBe(`a ${AUTH_FAILED}`);
    expect(await loginFrom(attacker, alice.uid, 'wrong')).toBe(`a ${AUTH_FAILED}`);
    // Another address starts afresh, and its success does not reset the attacker's count.
    expect(await loginFrom(other, alice.uid, 'wrong')).toBe(`a ${AUTH_FAILED}`);
    expect(await loginFrom(other, alice.uid, alice.password)).toMatch(/^a OK /);
    expect(await loginFrom(attacker, 'nobody-here', 'wrong')).toBe(`a ${AUTH_FAILED}`);
    expect(await loginFrom(other, alice.uid, 'wrong')).toBe(`a ${AUTH_FAILED}`);
    // And the real user is never locked out by the attacker's failures in her name.
    expect(await loginFrom('127.0.7.22', alice.uid, alice.password)).toMatch(/^a OK /);
    expect(await delaysOf(imap, attacker)).toEqual([1000, 2000, 4000, 4000, 4000]);
    expect(await delaysOf(imap, other)).toEqual([1000, 1000]);
  });

  it('POP3: the same penalty, shared by USER/PASS and AUTH LOGIN', async () => {
    const alice = bed.userOn('A');
    const from = '127.0.7.23';
    const c = await greeted(pop, from);
    c.send(`USER ${alice.uid}\r\nPASS wrong\r\n`);
    expect(await c.line()).toBe('+OK password required');
    expect(await c.line(30_000)).toBe('-ERR [AUTH] Authentication failed.');
    c.send('AUTH LOGIN\r\n');
    expect(await c.line()).toBe('+ VXNlcm5hbWU6');
    c.send(`${Buffer.from('nobody-here').toString('base64')}\r\n`);
    expect(await c.line()).toBe('+ UGFzc3dvcmQ6');
    c.send(`${Buffer.from('wrong').toString('base64')}\r\n`);
    expect(await c.line(30_000)).toBe('-ERR [AUTH] Authentication failed.');
    c.send('AUTH LOGIN\r\n');
    expect(await c.line()).toBe('+ VXNlcm5hbWU6');
    c.send(`${Buffer.from(alice.uid).toString('base64')}\r\n`);
    expect(await c.line()).toBe('+ UGFzc3dvcmQ6');
    c.send(`${Buffer.from(alice.password).toString('base64')}\r\n`);
    expect(await c.line(30_000)).toMatch(/^\+OK /);
    c.send('QUIT\r\n');
    await c.rest();
    expect(await delaysOf(pop, from)).toEqual([1000, 2000]);
  });
});

describe('backpressure before login', () => {
  /** The proxy's resident memory in KiB (/proc). */
  function rssKiB(proxy: ProxyProcess): number {
    const status = readFileSync(`/proc/${proxy.child.pid}/status`, 'utf8');
    return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]);
  }

  it('IMAP: a client that sends CAPABILITY in a loop and never reads gets MAX_COMMANDS_BEFORE_LOGIN answers, then goodbye', async () => {
    const before = rssKiB(imap);
    const c = await greeted(imap, '127.0.7.40');
    c.socket.pause(); // never read
    // 1 MiB of commands: their answers, some 20 MiB, would fit in no socket buffer; the kernel's
    // take in megabytes before MAX_QUEUED_REPLY_BYTES pushes back, and answering that much kept
    // the proxy busy for seconds per connection.
    const chunk = Buffer.from('a CAPABILITY\r\n'.repeat(4096));
    for (let i = 0; i < 1024 * 1024; i += chunk.length) c.socket.write(chunk);
    // Wait until the proxy took everything (it reads and drops what follows its goodbye).
    let written = -1;
    while (c.socket.writableLength > 0 && c.socket.bytesWritten !== written) {
      written = c.socket.bytesWritten;
      await sleep(1000);
    }
    expect(rssKiB(imap) - before).toBeLessThan(32 * 1024);
    // Everyone else is served meanwhile.
    const other = await RawClient.open(imap.port, '127.0.0.1', '127.0.7.41');
    expect(await other.line(30_000)).toMatch(/^\* OK /);
    other.send('b LOGOUT\r\n');
    expect(await other.rest()).toEqual(['* BYE Logging out', 'b OK LOGOUT completed']);
    // What the client finds when it reads at last: a bounded number of answers and the goodbye.
    c.socket.resume();
    const said = await c.rest(30_000);
    expect(said.filter((l) => l === 'a OK CAPABILITY completed')).toHaveLength(
      MAX_COMMANDS_BEFORE_LOGIN,
    );
    expect(said.at(-1)).toBe('* BYE Too many commands before login');
  });
});

describe('the log after a refused exchange', () => {
  it('IMAP at LogLevel 10: a SASL response sent after a refused AUTHENTICATE is neither logged nor echoed', async () => {
    const traced = await startProxyProcess(
      testbedArgs(bed, bed.backsidePorts.imap, { logLevel: 10 }),
    );
    try {
      const c = await greeted(traced, '127.0.7.50');
      const secret = Buffer.from('\0alice\0Sup3rSecretPw').toString('base64');
      c.send(`a AUTHENTICATE CRAM-MD5\r\n${secret}\r\nb LOGOUT\r\n`);
      const said = await c.rest();
      expect(said[0]).toMatch(/^a NO /);
      expect(said[1]).toMatch(/^\* BAD /);
      expect(said.join('\n')).not.toContain(secret);
      // Stopped, the proxy has written every record: the secret is looked for in all of them.
      await traced.stop();
      const logs = await traced.logs();
      expect(logs).toContain('C:');
      expect(logs).not.toContain(secret.slice(0, 12));
    } finally {
      await traced.stop();
    }
  });
});

describe('NumThreads 2: one count for the whole server', () => {
  it('the per-address cap and the failed-login penalty hold across workers', async () => {
    const workers = await startProxyProcess(
      testbedArgs(bed, bed.backsidePorts.imap, { logLevel: 3 }),
      { ...HOSTILE_LIMITS, NumThreads: '2' },
    );
    const [first = 0, second = 0] = childrenOf(workers.child.pid ?? 0);
    const both = [first, second];
    try {
      // Three connections on the first worker fill the address's cap; three more on the second
      // are refused by it (steered: the kernel need not take them in turn).
      const open3 = (): Promise<RawClient[]> =>
        Promise.all([1, 2, 3].map(() => RawClient.open(workers.port, '127.0.0.1', '127.0.7.60')));
      const onFirst = await onWorker(both, first, async () => {
        const cs = await open3();
        return { cs, lines: await Promise.all(cs.map((c) => c.line())) };
      });
      const onSecond = await onWorker(both, second, async () => {
        const cs = await open3();
        return { cs, lines: await Promise.all(cs.map((c) => c.line())) };
      });
      expect(onFirst.lines.every((l) => l?.startsWith('* OK '))).toBe(true);
      expect(onSecond.lines).toEqual([ADDRESS_FULL, ADDRESS_FULL, ADDRESS_FULL]);
      for (const c of [...onFirst.cs, ...onSecond.cs]) c.close();
      // Failed logins on connections of either worker, in turn, double one penalty.
      const alice = bed.userOn('A');
      for (let i = 0; i < 4; i++) {
        // Greeted while steered: a connection the kernel completed is not yet a worker's.
        const c = await onWorker(both, both[i % 2] ?? 0, async () => {
          const opened = await RawClient.open(workers.port, '127.0.0.1', '127.0.7.61');
          expect(await opened.line()).toMatch(/^\* OK /);
          return opened;
        });
        c.send(`a LOGIN ${alice.uid} wrong\r\n`);
        expect((await c.until('a', 30_000)).at(-1)).toBe(`a ${AUTH_FAILED}`);
        c.close();
      }
      expect(await delaysOf(workers, '127.0.7.61')).toEqual([1000, 2000, 4000, 4000]);
    } finally {
      await workers.stop();
    }
  });
});
