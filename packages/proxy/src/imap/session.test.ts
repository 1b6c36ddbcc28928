import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeStore, startFakeStore } from '../test-support/fakeStore.js';
import { FakeDirectory, startTestProxy, testRuntime } from '../test-support/harness.js';
import { RawClient } from '../test-support/rawClient.js';
import type { ProxyServer } from '../server.js';
import { MAX_COMMANDS_BEFORE_LOGIN } from '../limits.js';

const SPECIAL = Buffer.from('p "q\\ r\xe9\xff', 'latin1');
const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');

let storeA: FakeStore;
let storeB: FakeStore;
let hung: FakeStore;
let directory: FakeDirectory;
let proxy: { server: ProxyServer; port: number };

async function connect(port = proxy.port): Promise<RawClient> {
  const c = await RawClient.open(port);
  expect(await c.line()).toMatch(/^\* OK \[CAPABILITY IMAP4rev1 .*\] Test multiplexor ready$/);
  return c;
}

beforeAll(async () => {
  storeA = await startFakeStore({
    name: 'A',
    accounts: { alice: 'secret', special: SPECIAL, 'store-a-alias': 'x' },
  });
  storeB = await startFakeStore({ name: 'B', accounts: { bob: 'hunter2', carol: 'pw' } });
  hung = await startFakeStore({ name: 'H', accounts: {}, hang: true });
  const dead = { host: '127.0.0.1', port: 1 };
  directory = new FakeDirectory([
    { uid: 'alice', mailHosts: [{ host: '127.0.0.1', port: storeA.port }] },
    { uid: 'special', mailHosts: [{ host: '127.0.0.1', port: storeA.port }] },
    { uid: 'bob', mailHosts: [{ host: '127.0.0.1', port: storeB.port }] },
    {
      uid: 'carol',
      mailHosts: [
        dead,
        { host: '127.0.0.1', port: hung.port },
        { host: '127.0.0.1', port: storeB.port },
      ],
    },
    { uid: 'nostore', mailHosts: [dead, { host: '127.0.0.1', port: 2 }] },
    {
      uid: 'aliased',
      mailHosts: [{ host: '127.0.0.1', port: storeA.port }],
      replayName: 'store-a-alias',
    },
  ]);
  proxy = await startTestProxy(testRuntime(directory, { StoreConnectTimeout: 1 }));
});

afterAll(async () => {
  await proxy.server.stop();
  await Promise.all([storeA.close(), storeB.close(), hung.close()]);
});

describe('before login', () => {
  it('answers CAPABILITY, NOOP, ID and LOGOUT', async () => {
    const c = await connect();
    c.send('a1 capability\r\n');
    expect(await c.until('a1')).toEqual([
      '* CAPABILITY IMAP4rev1 LITERAL+ SASL-IR ID AUTH=PLAIN AUTH=LOGIN',
      'a1 OK CAPABILITY completed',
    ]);
    c.send('a2 NOOP\r\n');
    expect(await c.until('a2')).toEqual(['a2 OK NOOP completed']);
    c.send('a3 ID ("name" "imapflow" "version" {3}\r\n');
    expect(await c.line()).toBe('+ Ready for literal data');
    c.send('1.0)\r\n');
    expect(await c.until('a3')).toEqual(['* ID NIL', 'a3 OK ID completed']);
    c.send('a4 ID NIL\r\n');
    expect(await c.until('a4')).toEqual(['* ID NIL', 'a4 OK ID completed']);
    c.send('a5 LOGOUT\r\n');
    expect(await c.rest()).toEqual(['* BYE Logging out', 'a5 OK LOGOUT completed']);
  });

  it("announces each listener's own Capability, in its greeting and to CAPABILITY", async () => {
    // Lists are made once and shared between connections: the first proxy's must not reach
    // the second's clients.
    await connect();
    const other = await startTestProxy(
      testRuntime(directory, { Capability: 'IMAP4rev1 X-OTHER AUTH=PLAIN' }),
    );
    try {
      const c = await RawClient.open(other.port);
      expect(await c.line()).toBe(
        '* OK [CAPABILITY IMAP4rev1 X-OTHER AUTH=PLAIN] Test multiplexor ready',
      );
      c.send('a1 CAPABILITY\r\n');
      expect(await c.until('a1')).toEqual([
        '* CAPABILITY IMAP4rev1 X-OTHER AUTH=PLAIN',
        'a1 OK CAPABILITY completed',
      ]);
      c.socket.destroy();
    } finally {
      await other.server.stop();
    }
  });

  it('answers other commands BAD, and closes after three in a row', async () => {
    const c = await connect();
    c.send('a1 SELECT INBOX\r\n');
    expect(await c.line()).toBe('a1 BAD SELECT is not valid before login');
    c.send('a2 NOOP\r\n');
    expect(await c.line()).toBe('a2 OK NOOP completed');
    c.send('a3 FROB\r\nbad"tag NOOP\r\n');
    expect(await c.line()).toBe('a3 BAD Unknown command');
    expect(await c.line()).toBe('* BAD Missing or invalid tag');
    c.send('a4 LOGIN "unterminated\r\n');
    expect(await c.rest()).toEqual([
      'a4 BAD Unterminated quoted string',
      '* BYE Too many invalid commands',
    ]);
  });

  it('closes a cross-protocol (HTTP) client after three lines', async () => {
    const c = await connect();
    c.send('GET / HTTP/1.1\r\nHost: example\r\nAccept: */*\r\nUser-Agent: x\r\n\r\n');
    const lines = await c.rest();
    expect(lines.at(-1)).toBe('* BYE Too many invalid commands');
    expect(lines).toHaveLength(4);
  });

  it('refuses a literal announced by a command that takes none, without a continuation', async () => {
    const c = await connect();
    c.send('a1 NOOP {5}\r\n');
    expect(await c.line()).toBe('a1 BAD NOOP takes no literal here');
    c.send('a2 NOOP\r\n');
    expect(await c.line()).toBe('a2 OK NOOP completed');
    c.close();
  });

  it('never reads the bytes of a literal as a command, even after an invalid command', async () => {
    const c = await connect();
    // nginx's mail_imap.t case: the literal of a bad command holds what looks like a command.
    c.send('a1 FROB {11+}\r\na2 LOGOUT\r\n\r\na3 NOOP\r\n');
    expect(await c.line()).toBe('a1 BAD Unknown command');
    expect(await c.line()).toBe('a3 OK NOOP completed');
    // An unknown command is named as such even when its arguments are malformed.
    c.send('a4 FROB "unterminated\r\n');
    expect(await c.line()).toBe('a4 BAD Unknown command');
    c.close();
  });

  it('answers MAX_COMMANDS_BEFORE_LOGIN pipelined commands, then says goodbye instead of the next', async () => {
    const c = await connect();
    // what a client that never reads sends: the kernel's buffers would take all of the answers
    const commands = Array.from({ length: 4 * MAX_COMMANDS_BEFORE_LOGIN }, (_, i) =>
      i % 2 === 0 ? `c${i} CAPABILITY\r\n` : `n${i} NOOP\r\n`,
    );
    c.send(commands.join(''));
    const said = await c.rest();
    const answered = said.filter((l) => / OK (CAPABILITY|NOOP) completed$/.test(l));
    expect(answered).toHaveLength(MAX_COMMANDS_BEFORE_LOGIN);
    expect(answered.at(-1)).toBe(`n${MAX_COMMANDS_BEFORE_LOGIN - 1} OK NOOP completed`);
    expect(said.at(-1)).toBe('* BYE Too many commands before login');
  });

  it('reads nothing more from a client after saying goodbye to its flood', async () => {
    const c = await connect();
    c.send('n NOOP\r\n'.repeat(MAX_COMMANDS_BEFORE_LOGIN + 1));
    expect((await c.until('*')).at(-1)).toBe('* BYE Too many commands before login');
    // Then 128 MiB more, 64 KiB at a time, counting what reaches the kernel: taken in and
    // dropped, they would cost the proxy as much as they cost us. Not read, at most what the
    // socket buffers hold gets through (tcp_wmem's and tcp_rmem's maxima: 4 + 32 MiB here)
    // before the proxy cuts the connection at the end of its linger.
    const chunk = Buffer.alloc(64 * 1024, 'x');
    let flushed = 0;
    for (let i = 0; i < 2048; i++) {
      c.socket.write(chunk, (error) => {
        if (error === undefined || error === null) flushed += chunk.length;
      });
    }
    await c.closed;
    expect(flushed).toBeLessThan(48 * 1024 * 1024);
  });

  it('refuses a synchronising literal over the limit and carries on', async () => {
    const c = await connect();
    c.send('a1 LOGIN {5000}\r\n');
    expect(await c.line()).toBe('a1 BAD Literal too large');
    c.send('a2 NOOP\r\n');
    expect(await c.line()).toBe('a2 OK NOOP completed');
    c.close();
  });

  it('closes on a non-synchronising literal over the limit', async () => {
    const c = await connect();
    c.send(`a1 LOGIN {5000+}\r\n${'x'.repeat(5000)}`);
    expect(await c.rest()).toEqual(['a1 BAD Literal too large', '* BYE Literal too large']);
  });

  it('closes on a line over 8 KiB, and on binary garbage', async () => {
    const c = await connect();
    c.send(Buffer.alloc(9000, 0x41));
    expect(await c.rest()).toEqual(['* BYE Command line too long']);
    const g = await connect();
    const garbage = Buffer.alloc(3000);
    for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 7919 + 13) % 256;
    g.send(garbage);
    g.send('\r\n\r\n\r\n');
    const lines = await g.rest();
    expect(lines.at(-1)).toMatch(/^\* BYE /);
  });

  it('says goodbye to a client idle for Timeout', async () => {
    const p = await startTestProxy(testRuntime(directory, { Timeout: 1 }));
    const c = await connect(p.port);
    const started = Date.now();
    expect(await c.rest()).toEqual(['* BYE Autologout; idle for too long']);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    await p.server.stop();
  });
});

describe('LOGIN', () => {
  it('routes to the store, passes its tagged OK, and pipes pipelined commands', async () => {
    const c = await connect();
    c.send('x1 LOGIN alice "secret"\r\nx2 NOOP\r\n');
    expect(await c.line()).toBe('x1 OK [CAPABILITY IMAP4rev1 X-STORE-A] Logged in');
    expect(await c.line()).toBe('x2 OK NOOP on store A');
    c.send('x3 LOGOUT\r\n');
    expect(await c.rest()).toEqual(['* BYE store A logging out', 'x3 OK LOGOUT completed']);
  });

  it('passes the untagged lines a store says before its answer, but BYE (nginx does too)', async () => {
    const chatty = await startFakeStore({
      name: 'U',
      accounts: { alice: 'secret' },
      untagged: ['* CAPABILITY IMAP4rev1 X-UNTAGGED', '* OK [ALERT] Quota nearly full', '* BYE no'],
    });
    const dir = new FakeDirectory([
      { uid: 'alice', mailHosts: [{ host: '127.0.0.1', port: chatty.port }] },
    ]);
    const p = await startTestProxy(testRuntime(dir));
    try {
      const c = await connect(p.port);
      c.send('u1 LOGIN alice wrong\r\nu2 LOGIN alice secret\r\n');
      expect(await c.until('u1')).toEqual([
        '* CAPABILITY IMAP4rev1 X-UNTAGGED',
        '* OK [ALERT] Quota nearly full',
        'u1 NO [AUTHENTICATIONFAILED] Authentication failed.',
      ]);
      expect(await c.until('u2')).toEqual([
        '* CAPABILITY IMAP4rev1 X-UNTAGGED',
        '* OK [ALERT] Quota nearly full',
        'u2 OK [CAPABILITY IMAP4rev1 X-STORE-U] Logged in',
      ]);
      c.close();
    } finally {
      await p.server.stop();
      await chatty.close();
    }
  });

  it('replays with synchronising literals to a store that does not announce LITERAL+', async () => {
    const c = await connect();
    c.send('s1 LOGIN alice secret\r\n');
    expect(await c.line()).toBe('s1 OK [CAPABILITY IMAP4rev1 X-STORE-A] Logged in');
    expect(storeA.logins.at(-1)).toMatchObject({ nonSync: false });
    c.close();
  });

  it('replays in one write, with non-synchronising literals, to a store that announces LITERAL+', async () => {
    const plus = await startFakeStore({
      name: 'P',
      accounts: { special: SPECIAL },
      greeting: '* OK [CAPABILITY IMAP4rev1 LITERAL+ ID] fake store P ready',
    });
    const dir = new FakeDirectory([
      { uid: 'special', mailHosts: [{ host: '127.0.0.1', port: plus.port }] },
    ]);
    const p = await startTestProxy(testRuntime(dir));
    try {
      const c = await connect(p.port);
      c.send('p1 LOGIN "special" {' + SPECIAL.length + '}\r\n');
      expect(await c.line()).toBe('+ Ready for literal data');
      c.send(Buffer.concat([SPECIAL, Buffer.from('\r\n')]));
      expect(await c.line()).toBe('p1 OK [CAPABILITY IMAP4rev1 X-STORE-P] Logged in');
      const login = plus.logins.at(-1);
      expect(login?.nonSync).toBe(true);
      expect(login?.user.toString()).toBe('special');
      expect(login?.password.equals(SPECIAL)).toBe(true);
      c.close();
    } finally {
      await p.server.stop();
      await plus.close();
    }
  });

  it('replays quoted escapes and literals byte for byte', async () => {
    const c = await connect();
    c.send('q1 LOGIN "special" {' + SPECIAL.length + '}\r\n');
    expect(await c.line()).toBe('+ Ready for literal data');
    c.send(Buffer.concat([SPECIAL, Buffer.from('\r\n')]));
    expect(await c.line()).toBe('q1 OK [CAPABILITY IMAP4rev1 X-STORE-A] Logged in');
    expect(storeA.logins.at(-1)?.password.equals(SPECIAL)).toBe(true);
    c.close();
    const d = await connect();
    d.send(
      Buffer.concat([
        Buffer.from('q2 LOGIN special "p \\"q\\\\ r'),
        Buffer.from('\xe9\xff"\r\n', 'latin1'),
      ]),
    );
    expect(await d.line()).toBe('q2 OK [CAPABILITY IMAP4rev1 X-STORE-A] Logged in');
    d.close();
    const e = await connect();
    e.send(
      Buffer.concat([
        Buffer.from(`q3 LOGIN {7+}\r\nspecial {${SPECIAL.length}+}\r\n`),
        SPECIAL,
        Buffer.from('\r\n'),
      ]),
    );
    expect(await e.line()).toBe('q3 OK [CAPABILITY IMAP4rev1 X-STORE-A] Logged in');
    e.close();
  });

  it('gives the same answer for a wrong password and an unknown user, and stays usable', async () => {
    const c = await connect();
    c.send('w1 LOGIN alice wrong\r\nw2 NOOP\r\n');
    expect(await c.line()).toBe('w1 NO [AUTHENTICATIONFAILED] Authentication failed.');
    expect(await c.line()).toBe('w2 OK NOOP completed');
    c.send('w3 LOGIN nobody wrong\r\n');
    expect(await c.line()).toBe('w3 NO [AUTHENTICATIONFAILED] Authentication failed.');
    c.send('w4 LOGIN "*)(uid=*" x\r\n');
    expect(await c.line()).toBe('w4 NO [AUTHENTICATIONFAILED] Authentication failed.');
    expect(directory.filters.at(-1)).toBe('(uid=\\2a\\29\\28uid=\\2a)');
    expect(await c.rest()).toEqual(['* BYE Too many failed logins']);
  });

  it('answers an unknown user no sooner than a store refuses a wrong password', async () => {
    const slow = await startFakeStore({ name: 'S', accounts: { slow: 'pw' }, loginDelayMs: 400 });
    const dir = new FakeDirectory([
      { uid: 'slow', mailHosts: [{ host: '127.0.0.1', port: slow.port }] },
    ]);
    const p = await startTestProxy(testRuntime(dir));
    const timed = async (user: string): Promise<[string | undefined, number]> => {
      const c = await connect(p.port);
      const t0 = Date.now();
      c.send(`t1 LOGIN ${user} wrong\r\n`);
      const line = await c.line();
      c.close();
      return [line, Date.now() - t0];
    };
    const [wrong, wrongMs] = await timed('slow');
    const [unknown, unknownMs] = await timed('nobody-here');
    expect(unknown).toBe(wrong);
    expect(wrongMs).toBeGreaterThanOrEqual(390);
    expect(unknownMs).toBeGreaterThanOrEqual(wrongMs * 0.85);
    await p.server.stop();
    await slow.close();
  });

  it('replays the UidAttr name when the directory gives one', async () => {
    const c = await connect();
    c.send('u1 LOGIN aliased x\r\n');
    expect(await c.line()).toBe('u1 OK [CAPABILITY IMAP4rev1 X-STORE-A] Logged in');
    expect(storeA.logins.at(-1)?.user.toString()).toBe('store-a-alias');
    c.close();
  });

  it('skips a dead and a hung mail host for the next one', async () => {
    const c = await connect();
    c.send('f1 LOGIN carol pw\r\n');
    expect(await c.line()).toBe('f1 OK [CAPABILITY IMAP4rev1 X-STORE-B] Logged in');
    c.close();
  });

  it('answers ALERT when no store is reachable, UNAVAILABLE when the directory is down', async () => {
    const c = await connect();
    c.send('d1 LOGIN nostore pw\r\n');
    expect(await c.line()).toBe(
      'd1 NO [ALERT] Your IMAP server appears to be temporarily out of service.',
    );
    directory.down = true;
    c.send('d2 LOGIN alice secret\r\n');
    expect(await c.line()).toMatch(/^d2 NO \[UNAVAILABLE\] /);
    directory.down = false;
    c.send('d3 LOGIN alice secret\r\n');
    expect(await c.line()).toBe('d3 OK [CAPABILITY IMAP4rev1 X-STORE-A] Logged in');
    c.close();
  });

  it('queues what the client pipelines during a slow login (bounded) and forwards it in order', async () => {
    const slow = await startFakeStore({ name: 'S', accounts: { slow: 'pw' }, loginDelayMs: 300 });
    const dir = new FakeDirectory([
      { uid: 'slow', mailHosts: [{ host: '127.0.0.1', port: slow.port }] },
    ]);
    const p = await startTestProxy(testRuntime(dir));
    const c = await connect(p.port);
    // 4000 commands, ~200 KiB: more than MAX_PIPELINED_BYTES, so the proxy stops reading a while.
    const echoes = Array.from(
      { length: 4000 },
      (_, i) => `e${i} ECHO ${'x'.repeat(40)}${i}\r\n`,
    ).join('');
    c.send(`s1 LOGIN slow pw\r\n${echoes}s2 LOGOUT\r\n`);
    expect(await c.line()).toBe('s1 OK [CAPABILITY IMAP4rev1 X-STORE-S] Logged in');
    const lines = await c.rest(20_000);
    expect(lines.filter((l) => l.startsWith('* ECHO '))).toHaveLength(4000);
    expect(lines[2 * 3999]).toBe(`* ECHO ${'x'.repeat(40)}3999`);
    expect(lines.at(-1)).toBe('s2 OK LOGOUT completed');
    await p.server.stop();
    await slow.close();
  });

  it('lets go of the store when the client left before its login finished', async () => {
    const slow = await startFakeStore({ name: 'S', accounts: { slow: 'pw' }, loginDelayMs: 300 });
    const dir = new FakeDirectory([
      { uid: 'slow', mailHosts: [{ host: '127.0.0.1', port: slow.port }] },
    ]);
    const p = await startTestProxy(testRuntime(dir));
    const c = await connect(p.port);
    c.send('s1 LOGIN slow pw\r\n');
    while (slow.logins.length === 0) await new Promise((r) => setTimeout(r, 10));
    // A reset: the session is gone at once (a FIN would leave it half open, waiting on the login).
    c.socket.resetAndDestroy();
    // The store accepts the login after the client is gone: the proxy closes that connection.
    while (slow.connections > 0) await new Promise((r) => setTimeout(r, 10));
    expect(slow.logins).toHaveLength(1);
    await p.server.stop();
    await slow.close();
  });

  it('after a failed login, parses what was pipelined behind it', async () => {
    const c = await connect();
    c.send('r1 LOGIN alice nope\r\nr2 NOOP\r\nr3 LOGIN alice secret\r\nr4 NOOP\r\n');
    expect(await c.line()).toBe('r1 NO [AUTHENTICATIONFAILED] Authentication failed.');
    expect(await c.line()).toBe('r2 OK NOOP completed');
    expect(await c.line()).toBe('r3 OK [CAPABILITY IMAP4rev1 X-STORE-A] Logged in');
    expect(await c.line()).toBe('r4 OK NOOP on store A');
    c.close();
  });

  it('forwards a pipelined LOGOUT after a half-close', async () => {
    const c = await connect();
    c.send('h1 LOGIN bob hunter2\r\nh2 LOGOUT\r\n');
    c.socket.end();
    expect(await c.rest()).toEqual([
      'h1 OK [CAPABILITY IMAP4rev1 X-STORE-B] Logged in',
      '* BYE store B logging out',
      'h2 OK LOGOUT completed',
    ]);
  });
});

describe('after login', () => {
  it('passes large responses through and says BYE when the store closes mid-session', async () => {
    const c = await connect();
    c.send('p1 LOGIN bob hunter2\r\np2 SEND 300000\r\n');
    expect(await c.line()).toBe('p1 OK [CAPABILITY IMAP4rev1 X-STORE-B] Logged in');
    expect(await c.line()).toBe('* 1 FETCH (BODY[] {300000}');
    expect((await c.line())?.length).toBe(300000 + 1);
    expect(await c.line()).toBe('p2 OK SEND done');
    c.send('p3 DIE\r\n');
    expect(await c.rest()).toEqual(['* 1 EXISTS', '* BYE Connection to the mail store was closed']);
  });

  it('closes the store connection when the client goes away', async () => {
    const c = await connect();
    c.send('c1 LOGIN bob hunter2\r\n');
    expect(await c.line()).toBe('c1 OK [CAPABILITY IMAP4rev1 X-STORE-B] Logged in');
    c.send('c2 ECHO hello\r\n');
    expect(await c.until('c2')).toEqual(['* ECHO hello', 'c2 OK ECHO done']);
    const before = proxy.server.sessionCount;
    c.close();
    await new Promise((r) => setTimeout(r, 200));
    expect(proxy.server.sessionCount).toBe(before - 1);
  });
});

describe('AUTHENTICATE', () => {
  it('PLAIN with an initial response', async () => {
    const c = await connect();
    c.send(`s1 AUTHENTICATE PLAIN ${b64('\0alice\0secret')}\r\n`);
    expect(await c.line()).toBe('s1 OK [CAPABILITY IMAP4rev1 X-STORE-A] Logged in');
    c.close();
  });

  it('PLAIN without an initial response, and with a binary password', async () => {
    const c = await connect();
    c.send('s2 AUTHENTICATE plain\r\n');
    expect(await c.line()).toBe('+ ');
    c.send(`${b64(Buffer.concat([Buffer.from('special\0special\0'), SPECIAL]))}\r\n`);
    expect(await c.line()).toBe('s2 OK [CAPABILITY IMAP4rev1 X-STORE-A] Logged in');
    c.close();
  });

  it('LOGIN mechanism, cancellation, bad base64, foreign authzid, unknown mechanism', async () => {
    const c = await connect();
    c.send('s3 AUTHENTICATE LOGIN\r\n');
    expect(await c.line()).toBe(`+ ${b64('Username:')}`);
    c.send('*\r\n');
    expect(await c.line()).toBe('s3 BAD Authentication cancelled');
    c.send('s4 AUTHENTICATE PLAIN\r\n');
    expect(await c.line()).toBe('+ ');
    c.send('not base64!\r\n');
    expect(await c.line()).toBe('s4 BAD Invalid base64 data');
    c.send(`s5 AUTHENTICATE PLAIN ${b64('admin\0alice\0secret')}\r\n`);
    expect(await c.line()).toBe('s5 NO Authorization identity not supported');
    c.send('s6 AUTHENTICATE CRAM-MD5\r\n');
    expect(await c.line()).toBe('s6 NO [CANNOT] Unsupported authentication mechanism');
    c.send(`s7 AUTHENTICATE LOGIN ${b64('bob')}\r\n`);
    expect(await c.line()).toBe(`+ ${b64('Password:')}`);
    c.send(`${b64('hunter2')}\r\n`);
    expect(await c.line()).toBe('s7 OK [CAPABILITY IMAP4rev1 X-STORE-B] Logged in');
    c.close();
  });
});

describe('shutdown', () => {
  it('says goodbye before login, lets piped sessions run for the grace period, then closes', async () => {
    const p = await startTestProxy(testRuntime(directory), undefined, 700);
    const idle = await connect(p.port);
    const piped = await connect(p.port);
    piped.send('g1 LOGIN bob hunter2\r\n');
    expect(await piped.line()).toBe('g1 OK [CAPABILITY IMAP4rev1 X-STORE-B] Logged in');
    const stopped = p.server.stop();
    expect(await idle.rest()).toEqual(['* BYE Server shutting down']);
    piped.send('g2 NOOP\r\n');
    expect(await piped.line()).toBe('g2 OK NOOP on store B');
    await expect(RawClient.open(p.port)).rejects.toThrow();
    await stopped;
    await piped.closed;
  });
});
