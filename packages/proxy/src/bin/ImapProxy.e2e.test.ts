/**
 * ImapProxy end to end: the built executable in front of the test bed's real slapd and Dovecot
 * stores, driven by clients we did not write (imapflow, curl) and by raw sockets for the bytes
 * no polite client sends.
 */

import { createHash } from 'node:crypto';
import { execa } from 'execa';
import { ImapFlow } from 'imapflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SPECIAL_PASSWORD, type Testbed, curl, markerSubject, startTestbed } from '@mmp/testbed';
import {
  IMAP_PROXY,
  type ProxyProcess,
  logsUpToNow,
  proxyEnv,
  startProxyProcess,
  testbedArgs,
} from '../test-support/proxyProcess.js';
import { RawClient } from '../test-support/rawClient.js';

const AUTH_FAILED = 'NO [AUTHENTICATIONFAILED] Authentication failed.';
const ALERT = 'NO [ALERT] Your IMAP server appears to be temporarily out of service.';

let bed: Testbed;
let proxy: ProxyProcess;

const proxyArgs = (b: Testbed): string[] => testbedArgs(b, b.backsidePorts.imap, { logLevel: 10 });

beforeAll(async () => {
  bed = await startTestbed({ tls: false });
  // Timeout has no flag: the environment sets it (guide, Table 13.2). StoreConnectTimeout keeps
  // its default: under 200 simultaneous logins the test bed's Dovecot takes seconds to greet.
  // LdapCacheTTL 0: these cases ask the directory each time (a stopped directory must show);
  // the cache is tested in scale.e2e.test.ts.
  proxy = await startProxyProcess(proxyArgs(bed), { Timeout: '3', LdapCacheTTL: '0' });
}, 180_000);

afterAll(async () => {
  await proxy?.stop();
  await bed?.stop();
});

function client(user: string, pass: string, loginMethod?: string): ImapFlow {
  return new ImapFlow({
    host: '127.0.0.1',
    port: proxy.port,
    secure: false,
    auth: loginMethod === undefined ? { user, pass } : { user, pass, loginMethod },
    logger: false,
    disableAutoIdle: true,
  });
}

/** Log in with imapflow and read the marker message's subject (names the store). */
async function markerVia(
  user: string,
  pass: string,
  loginMethod?: string,
): Promise<string | undefined> {
  const c = client(user, pass, loginMethod);
  await c.connect();
  try {
    await c.mailboxOpen('INBOX');
    const msg = await c.fetchOne('1', { envelope: true });
    return msg ? msg.envelope?.subject : undefined;
  } finally {
    await c.logout();
  }
}

async function raw(): Promise<RawClient> {
  const c = await RawClient.open(proxy.port);
  expect(await c.line()).toMatch(
    /^\* OK \[CAPABILITY IMAP4rev1 .*\] Netscape Messaging Multiplexor ready$/,
  );
  return c;
}

describe('routing to the right store', () => {
  it('imapflow: users on store A and on store B land on their own store (LOGIN and AUTH=PLAIN)', async () => {
    const alice = bed.userOn('A');
    const bob = bed.userOn('B');
    expect(await markerVia(alice.uid, alice.password, 'LOGIN')).toBe(markerSubject('A', alice.uid));
    expect(await markerVia(bob.uid, bob.password, 'AUTH=PLAIN')).toBe(markerSubject('B', bob.uid));
    expect(await markerVia(bob.uid, bob.password, 'AUTH=LOGIN')).toBe(markerSubject('B', bob.uid));
  });

  it('curl: users on store A and B (PLAIN with SASL-IR, and LOGIN)', async () => {
    for (const store of ['A', 'B']) {
      const u = bed.userOn(store);
      const url = `imap://127.0.0.1:${proxy.port}/INBOX;UID=1`;
      const plain = await curl(['-u', `${u.uid}:${u.password}`, url]);
      expect(plain.stderr).toBe('');
      expect(plain.stdout.toString()).toContain(`Subject: ${markerSubject(store, u.uid)}`);
      const login = await curl([
        '--login-options',
        'AUTH=LOGIN',
        '-u',
        `${u.uid}:${u.password}`,
        url,
      ]);
      expect(login.stdout.toString()).toContain(`Subject: ${markerSubject(store, u.uid)}`);
    }
  });

  it('fails over from a dead first mailHost to the second', async () => {
    const u = bed.user('failover');
    expect(await markerVia(u.uid, u.password)).toBe(markerSubject('B', u.uid));
  });

  it('fails over when the first store is stopped, and comes back when it restarts', async () => {
    const u = bed.user('dual');
    expect(await markerVia(u.uid, u.password)).toBe(markerSubject('A', u.uid));
    await bed.store('A').stop();
    try {
      expect(await markerVia(u.uid, u.password)).toBe(markerSubject('B', u.uid));
    } finally {
      await bed.store('A').start();
    }
    expect(await markerVia(u.uid, u.password)).toBe(markerSubject('A', u.uid));
  });
});

describe('credentials byte for byte', () => {
  const special = (): { uid: string; password: string } => bed.user('quoted');

  it('the special-character password via imapflow', async () => {
    expect(special().password).toBe(SPECIAL_PASSWORD);
    expect(await markerVia(special().uid, special().password)).toBe(
      markerSubject('A', special().uid),
    );
  });

  it('via a raw quoted string with escapes, a literal, a LITERAL+ literal and SASL-IR', async () => {
    const { uid } = special();
    const pw = Buffer.from(SPECIAL_PASSWORD, 'utf8');
    const quoted = Buffer.from(`"${SPECIAL_PASSWORD.replace(/[\\"]/g, (c) => `\\${c}`)}"`, 'utf8');
    const ok = /^\w+ OK \[CAPABILITY IMAP4rev1 .*\] Logged in$/;

    const a = await raw();
    a.send(Buffer.concat([Buffer.from(`a1 LOGIN ${uid} `), quoted, Buffer.from('\r\n')]));
    expect(await a.line()).toMatch(ok);
    a.send('a2 SELECT INBOX\r\n');
    expect((await a.until('a2')).at(-1)).toMatch(/^a2 OK/);
    a.send('a3 LOGOUT\r\n');
    expect((await a.rest()).at(-1)).toMatch(/^a3 OK/);

    const b = await raw();
    b.send(`b1 LOGIN {${uid.length}}\r\n`);
    expect(await b.line()).toBe('+ Ready for literal data');
    b.send(`${uid} {${pw.length}}\r\n`);
    expect(await b.line()).toBe('+ Ready for literal data');
    b.send(Buffer.concat([pw, Buffer.from('\r\n')]));
    expect(await b.line()).toMatch(ok);
    b.close();

    const c = await raw();
    c.send(
      Buffer.concat([Buffer.from(`c1 LOGIN ${uid} {${pw.length}+}\r\n`), pw, Buffer.from('\r\n')]),
    );
    expect(await c.line()).toMatch(ok);
    c.close();

    const d = await raw();
    const ir = Buffer.concat([Buffer.from(`\0${uid}\0`), pw]).toString('base64');
    d.send(`d1 AUTHENTICATE PLAIN ${ir}\r\n`);
    expect(await d.line()).toMatch(ok);
    d.close();
  });

  it('AUTHENTICATE PLAIN without an initial response, and cancelled', async () => {
    const u = bed.userOn('B');
    const c = await raw();
    c.send('p1 AUTHENTICATE PLAIN\r\n');
    expect(await c.line()).toBe('+ ');
    c.send('*\r\n');
    expect(await c.line()).toBe('p1 BAD Authentication cancelled');
    c.send('p2 AUTHENTICATE PLAIN\r\n');
    expect(await c.line()).toBe('+ ');
    c.send(`${Buffer.from(`\0${u.uid}\0${u.password}`).toString('base64')}\r\n`);
    expect(await c.line()).toMatch(/^p2 OK \[CAPABILITY .*\] Logged in$/);
    c.send('p3 SELECT INBOX\r\n');
    expect((await c.until('p3')).at(-1)).toMatch(/^p3 OK/);
    c.close();
  });
});

describe('refusals', () => {
  it('wrong password and unknown user get the same answer; the session stays usable', async () => {
    const u = bed.userOn('A');
    const c = await raw();
    c.send(`w1 LOGIN ${u.uid} wrong-password\r\n`);
    expect(await c.line()).toBe(`w1 ${AUTH_FAILED}`);
    c.send('w2 LOGIN no-such-user whatever\r\n');
    expect(await c.line()).toBe(`w2 ${AUTH_FAILED}`);
    c.close();
    const d = await raw();
    d.send(`w3 LOGIN ${u.uid} ${u.password}\r\n`);
    expect(await d.line()).toMatch(/^w3 OK /);
    d.close();
  });

  it('imapflow sees a failed login for both', async () => {
    await expect(markerVia('no-such-user', 'x')).rejects.toThrow();
    await expect(markerVia(bed.userOn('A').uid, 'x')).rejects.toThrow();
  });

  it('an LDAP filter injection in the user name matches nobody', async () => {
    for (const name of ['*', '*)(uid=*', 'alice)(|(uid=*', '\\2a']) {
      const c = await raw();
      c.send(`i1 LOGIN "${name.replace(/[\\"]/g, (ch) => `\\${ch}`)}" x\r\n`);
      expect(await c.line()).toBe(`i1 ${AUTH_FAILED}`);
      c.close();
    }
  });

  it('all mailHosts dead: the ServerDownAlert', async () => {
    const u = bed.user('nohost');
    const c = await raw();
    c.send(`n1 LOGIN ${u.uid} ${u.password}\r\n`);
    expect(await c.line()).toBe(`n1 ${ALERT}`);
    c.close();
  });

  it('directory stopped: UNAVAILABLE; restarted: the login works again', async () => {
    const u = bed.userOn('B');
    await bed.ldap.stop();
    try {
      const c = await raw();
      c.send(`l1 LOGIN ${u.uid} ${u.password}\r\n`);
      expect(await c.line(20_000)).toMatch(/^l1 NO \[UNAVAILABLE\] /);
      c.close();
      // Marked dead: the next login is answered at once, without a search (issue 14).
      const again = await raw();
      again.send(`l2 LOGIN ${u.uid} ${u.password}\r\n`);
      expect(await again.line()).toMatch(/^l2 NO \[UNAVAILABLE\] /);
      again.close();
    } finally {
      await bed.ldap.start();
    }
    // A probe finds it alive within a second of its start; until then logins fail at once.
    for (let i = 0; i < 50; i++) {
      const c = await raw();
      c.send(`l3 LOGIN ${u.uid} ${u.password}\r\n`);
      const answer = await c.line();
      c.close();
      if (!/^l3 NO \[UNAVAILABLE\] /.test(answer ?? '')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(await markerVia(u.uid, u.password)).toBe(markerSubject('B', u.uid));
  });
});

describe('after login', () => {
  it('the 1 MiB message is byte-identical through imapflow and curl', async () => {
    const u = bed.userOn('B');
    const big = bed.bigMessage;
    const c = client(u.uid, u.password);
    await c.connect();
    try {
      await c.mailboxOpen('INBOX');
      const { content } = await c.download(String(big.number), undefined, { uid: false });
      expect(content).toBeDefined();
      const chunks: Buffer[] = [];
      for await (const chunk of content ?? []) chunks.push(chunk as Buffer);
      const bytes = Buffer.concat(chunks);
      expect(bytes.length).toBe(big.size);
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(big.sha256);
    } finally {
      await c.logout();
    }
    const r = await curl([
      '-u',
      `${u.uid}:${u.password}`,
      `imap://127.0.0.1:${proxy.port}/INBOX;UID=${big.number}`,
    ]);
    expect(createHash('sha256').update(r.stdout).digest('hex')).toBe(big.sha256);
  });

  it('200 concurrent sessions each reach their own store', async () => {
    const users = bed.usersOfKind('bulk').slice(0, 200);
    expect(users).toHaveLength(200);
    const subjects = await Promise.all(
      users.map((u) =>
        Promise.race([
          markerVia(u.uid, u.password).catch((e: Error & { responseText?: string }) => {
            return `${u.uid}: ${e.message} ${e.responseText ?? ''}`;
          }),
          new Promise<string>((r) => setTimeout(() => r(`${u.uid}: pending`), 40_000)),
        ]),
      ),
    );
    expect(subjects).toEqual(users.map((u) => markerSubject(u.store ?? '?', u.uid)));
  });

  it('a pipelined LOGOUT after the login reaches the store', async () => {
    const u = bed.userOn('A');
    const c = await raw();
    c.send(`q1 LOGIN ${u.uid} ${u.password}\r\nq2 LOGOUT\r\n`);
    c.socket.end();
    const lines = await c.rest();
    expect(lines[0]).toMatch(/^q1 OK /);
    expect(lines.some((l) => l.startsWith('* BYE'))).toBe(true);
    expect(lines.at(-1)).toMatch(/^q2 OK /);
  });
});

describe('hostile input before login', () => {
  let bystander: ImapFlow;
  beforeAll(async () => {
    const u = bed.userOn('A');
    bystander = client(u.uid, u.password);
    await bystander.connect();
    await bystander.mailboxOpen('INBOX');
  });
  afterAll(async () => {
    // Other sessions are untouched by everything below.
    await bystander.noop();
    expect(bystander.usable).toBe(true);
    await bystander.logout();
  });

  it('a line over 8 KiB', async () => {
    const c = await raw();
    c.send(`a1 LOGIN ${'x'.repeat(9000)}`);
    expect(await c.rest()).toEqual(['* BYE Command line too long']);
  });

  it('a literal over the limit (synchronising: refused; non-synchronising: closed)', async () => {
    const c = await raw();
    c.send('a1 LOGIN {100000}\r\n');
    expect(await c.line()).toBe('a1 BAD Literal too large');
    c.send(`a2 LOGIN {100000+}\r\n${'x'.repeat(1000)}`);
    expect(await c.rest()).toEqual(['a2 BAD Literal too large', '* BYE Literal too large']);
  });

  it('three bad commands in a row, and an HTTP request (ALPACA)', async () => {
    const c = await raw();
    c.send('a1 FOO\r\na2 SELECT INBOX\r\na3 BAR\r\na4 NOOP\r\n');
    expect(await c.rest()).toEqual([
      'a1 BAD Unknown command',
      'a2 BAD SELECT is not valid before login',
      'a3 BAD Unknown command',
      '* BYE Too many invalid commands',
    ]);
    const h = await raw();
    h.send('POST / HTTP/1.1\r\nHost: imap\r\nContent-Length: 20\r\n\r\na LOGIN alice x\r\n');
    const lines = await h.rest();
    expect(lines.at(-1)).toBe('* BYE Too many invalid commands');
    expect(lines.filter((l) => l.includes('LOGIN'))).toEqual([]);
  });

  it('binary garbage', async () => {
    const c = await raw();
    const garbage = Buffer.alloc(20_000);
    for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 2654435761) >>> 24;
    c.send(garbage);
    const lines = await c.rest();
    expect(lines.at(-1)).toMatch(/^\* BYE /);
  });

  it('a client idle for Timeout seconds', async () => {
    const c = await raw();
    const started = Date.now();
    expect(await c.rest(10_000)).toEqual(['* BYE Autologout; idle for too long']);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_500);
  });
});

describe('the log', () => {
  it('records logins with client, user, store and outcome, and never a password', async () => {
    // Every record made so far, so that the absences below are looked for in all of them.
    const logs = await logsUpToNow(proxy);
    const alice = bed.userOn('A');
    expect(logs).toMatch(
      /"lvl":1,"phase":"login".*"user":"alice","store":"127\.0\.0\.2:\d+".*"msg":"login succeeded"/,
    );
    expect(logs).toContain('"msg":"login refused by store"');
    const secrets = [
      ...bed.users.map((u) => u.password),
      bed.ldap.bindPassword,
      'wrong-password',
      Buffer.from(`\0${alice.uid}\0${alice.password}`).toString('base64'),
      Buffer.from(SPECIAL_PASSWORD).toString('base64'),
    ];
    for (const s of secrets) expect(logs.includes(s), `log holds ${s}`).toBe(false);
    for (const line of logs.trim().split('\n')) {
      const record = JSON.parse(line) as Record<string, unknown>;
      expect(record['sid']).toBeDefined();
      expect(record['proto']).toBe('imap');
      expect(record['phase']).toBeDefined();
    }
  });
});

describe('the executable', () => {
  it('-h lists the configuration, install prints config syntax, a bad flag exits 2', async () => {
    const list = await execa('node', [IMAP_PROXY, '-h'], { reject: false });
    expect(list.exitCode).toBe(0);
    expect(list.stdout).toMatch(/ListenPort\s+"143"/);
    const install = await execa('node', [IMAP_PROXY, 'install', '-p', '1143'], { reject: false });
    expect(install.exitCode).toBe(0);
    expect(install.stdout).toMatch(/^ListenPort='1143'$/m);
    const bad = await execa('node', [IMAP_PROXY, '--frobnicate'], { reject: false });
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/^ImapProxy: .*--frobnicate/);
    expect(bad.stderr).not.toMatch(/\bat .*\.js:\d+/);
  });

  it('a port in use is a clear error', async () => {
    const r = await execa(
      'node',
      [IMAP_PROXY, '-p', `127.0.0.1:${proxy.port}`, '-o', proxy.logDir],
      { reject: false, extendEnv: false, env: proxyEnv() },
    );
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/cannot listen on ListenPort 127\.0\.0\.1:\d+: .*EADDRINUSE/);
  });

  it('a missing LogDir: no log file, one warning', async () => {
    const p = await startProxyProcess([...proxyArgs(bed), '-o', '/nonexistent/mmp-logs']);
    expect(p.output()).toMatch(/LogDir '\/nonexistent\/mmp-logs' does not exist/);
    expect(await p.stop()).toBe(0);
  });

  it('SIGTERM: stops accepting, says BYE before login, lets a logged-in session finish', async () => {
    const p = await startProxyProcess(proxyArgs(bed));
    const u = bed.userOn('B');
    const pre = await RawClient.open(p.port);
    expect(await pre.line()).toMatch(/^\* OK /);
    const logged = await RawClient.open(p.port);
    await logged.line();
    logged.send(`t1 LOGIN ${u.uid} ${u.password}\r\n`);
    expect(await logged.line()).toMatch(/^t1 OK /);
    p.signal();
    expect(await pre.rest()).toEqual(['* BYE Server shutting down']);
    await expect(RawClient.open(p.port)).rejects.toThrow(/ECONNREFUSED/);
    logged.send('t2 NOOP\r\n');
    expect(await logged.line()).toMatch(/^t2 OK /);
    logged.send('t3 LOGOUT\r\n');
    expect((await logged.rest()).at(-1)).toMatch(/^t3 OK /);
    const started = Date.now();
    expect(await p.stop()).toBe(0);
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
