/**
 * TLS end to end (issue 5): the built ImapProxy and PopProxy with SSLEnable in front of the test
 * bed (its CA, server and client certificates, Dovecot stores with TLS listeners and a master
 * user), driven by openssl s_client, curl, imapflow and raw TLS sockets.
 */

import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type AddressInfo, createServer } from 'node:net';
import { execa } from 'execa';
import { ImapFlow } from 'imapflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../test-support/tempDirs.js';
import { type Testbed, type TestbedTls, freePort, markerSubject, startTestbed } from '@mmp/testbed';
import {
  IMAP_PROXY,
  POP_PROXY,
  type ProxyProcess,
  proxyEnv,
  startProxyProcess,
  testbedArgs,
} from '../test-support/proxyProcess.js';
import { selfSignedCertificate } from '../test-support/selfSigned.js';
import { storeLoginLine } from '../test-support/storeLog.js';
import { TlsLineClient } from '../test-support/tlsClient.js';

let bed: Testbed;
let tls: TestbedTls;
let work: string;
const running: ProxyProcess[] = [];

const ldapArgs = (b: Testbed, backsidePort: number): string[] =>
  testbedArgs(b, backsidePort, { logLevel: 10 });

interface Started {
  proxy: ProxyProcess;
  tlsPort: number;
}

async function start(
  program: 'imap' | 'pop3',
  env: Record<string, string> = {},
  args: string[] = [],
): Promise<Started> {
  const tlsPort = await freePort('127.0.0.1');
  const backside = program === 'imap' ? bed.backsidePorts.imap : bed.backsidePorts.pop3;
  const proxy = await startProxyProcess(
    [...ldapArgs(bed, backside), ...args],
    {
      Timeout: '10',
      SSLEnable: 'yes',
      SSLListenPort: `127.0.0.1:${tlsPort}`,
      SSLCertFile: tls.certFile,
      SSLKeyFile: tls.keyFile,
      ...env,
    },
    program === 'imap' ? IMAP_PROXY : POP_PROXY,
  );
  running.push(proxy);
  return { proxy, tlsPort };
}

/** Run the executable expecting it to refuse to start. */
async function startFails(
  env: Record<string, string>,
): Promise<{ exitCode: number | undefined; stderr: string }> {
  const port = await freePort('127.0.0.1');
  const r = await execa('node', [IMAP_PROXY, '-p', `127.0.0.1:${port}`], {
    reject: false,
    extendEnv: false,
    env: proxyEnv({
      SSLEnable: 'yes',
      SSLListenPort: `127.0.0.1:${port + 1}`,
      SSLCertFile: tls.certFile,
      SSLKeyFile: tls.keyFile,
      ...env,
    }),
    timeout: 20_000,
  });
  return { exitCode: r.exitCode, stderr: String(r.stderr) };
}

async function sClient(
  args: string[],
  input: string,
): Promise<{ exitCode: number | undefined; stdout: string; stderr: string }> {
  const r = await execa(
    'openssl',
    ['s_client', '-CAfile', tls.caFile, '-verify_return_error', '-crlf', '-ign_eof', ...args],
    { input, reject: false, timeout: 20_000 },
  );
  return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
}

beforeAll(async () => {
  bed = await startTestbed();
  if (bed.tls === undefined) throw new Error('the test bed has no TLS');
  tls = bed.tls;
  work = await tempDir('mmp-tls-test-');
}, 180_000);

afterAll(async () => {
  await Promise.all(running.map((p) => p.stop()));
  await bed?.stop();
});

describe('IMAP: implicit TLS and STARTTLS', () => {
  let imap: Started;
  beforeAll(async () => {
    imap = await start('imap');
  }, 60_000);

  it('openssl s_client: implicit TLS on SSLListenPort, verified against the test CA; no STARTTLS there', async () => {
    const r = await sClient(
      ['-connect', `127.0.0.1:${imap.tlsPort}`, '-servername', 'localhost'],
      'a CAPABILITY\nb LOGOUT\n',
    );
    expect(r.stdout).toContain('Verify return code: 0 (ok)');
    expect(r.stdout).toMatch(
      /\* OK \[CAPABILITY IMAP4rev1 [^\]]*\] Netscape Messaging Multiplexor/,
    );
    expect(r.stdout).toMatch(/\* CAPABILITY IMAP4rev1/);
    expect(r.stdout).not.toContain('STARTTLS');
    expect(r.stdout).toContain('b OK LOGOUT completed');
    expect(r.stdout).toMatch(/Protocol\s*: TLSv1\.[23]/);
  });

  it('openssl s_client -starttls imap: upgrade on ListenPort, then LOGIN reaches the store', async () => {
    const alice = bed.userOn('A');
    const r = await sClient(
      ['-connect', `127.0.0.1:${imap.proxy.port}`, '-starttls', 'imap'],
      `a CAPABILITY\nb LOGIN ${alice.uid} ${alice.password}\nc LOGOUT\n`,
    );
    expect(r.stdout).toContain('Verify return code: 0 (ok)');
    // After TLS, the capability list no longer offers STARTTLS (RFC 3501 §6.2.1).
    const caps = /\* CAPABILITY (.*)/.exec(r.stdout)?.[1] ?? '';
    expect(caps).toContain('IMAP4rev1');
    expect(caps).not.toContain('STARTTLS');
    expect(caps).not.toContain('LOGINDISABLED');
    expect(r.stdout).toMatch(/b OK/);
  });

  it('the plain greeting advertises STARTTLS', async () => {
    const c = await TlsLineClient.plain(imap.proxy.port);
    expect(await c.line()).toMatch(/^\* OK \[CAPABILITY IMAP4rev1 STARTTLS /);
    c.close();
  });

  it('STARTTLS injection: a command sent in the clear after STARTTLS is never executed', async () => {
    const alice = bed.userOn('A');
    const c = await TlsLineClient.plain(imap.proxy.port);
    await c.line();
    // One write: STARTTLS and an injected LOGIN (CVE-2011-0411).
    c.send(`a STARTTLS\r\nb LOGIN ${alice.uid} ${alice.password}\r\n`);
    expect(await c.line()).toBe('a OK Begin TLS negotiation now');
    await c.upgrade({ ca: tls.caPem, servername: 'localhost' });
    c.send('c NOOP\r\n');
    // The first thing said in TLS answers our NOOP: no answer to `b` and still not logged in.
    expect(await c.line()).toBe('c OK NOOP completed');
    c.send('d SELECT INBOX\r\n');
    expect(await c.line()).toBe('d BAD SELECT is not valid before login');
    c.close();
  });

  it('strict ALPN (ALPACA): an https client is refused, imap or no ALPN is served', async () => {
    const http = await sClient(
      ['-connect', `127.0.0.1:${imap.tlsPort}`, '-servername', 'localhost', '-alpn', 'http/1.1'],
      '',
    );
    expect(http.stdout + http.stderr).toMatch(/no application protocol/i);
    const ok = await sClient(
      ['-connect', `127.0.0.1:${imap.tlsPort}`, '-servername', 'localhost', '-alpn', 'imap'],
      'a LOGOUT\n',
    );
    expect(ok.stdout).toContain('ALPN protocol: imap');
    const upgraded = await sClient(
      ['-connect', `127.0.0.1:${imap.proxy.port}`, '-starttls', 'imap', '-alpn', 'h2'],
      '',
    );
    expect(upgraded.stdout + upgraded.stderr).toMatch(/no application protocol/i);
  });

  it('STARTTLS twice is refused', async () => {
    const c = await TlsLineClient.implicit(imap.tlsPort, {
      ca: tls.caPem,
      servername: 'localhost',
    });
    await c.line();
    c.send('a STARTTLS\r\n');
    expect(await c.line()).toBe('a BAD TLS is already active');
    c.close();
  });

  it('imapflow over implicit TLS and over STARTTLS reads the marker of its own store', async () => {
    const bob = bed.userOn('B');
    for (const [port, secure] of [
      [imap.tlsPort, true],
      [imap.proxy.port, false],
    ] as const) {
      const client = new ImapFlow({
        host: '127.0.0.1',
        port,
        secure,
        doSTARTTLS: secure ? undefined : true,
        tls: { ca: tls.caPem, servername: 'localhost' },
        auth: { user: bob.uid, pass: bob.password },
        logger: false,
        disableAutoIdle: true,
      });
      await client.connect();
      try {
        await client.mailboxOpen('INBOX');
        const msg = await client.fetchOne('1', { envelope: true });
        expect(msg ? msg.envelope?.subject : undefined).toBe(markerSubject('B', bob.uid));
      } finally {
        await client.logout();
      }
    }
  });

  it('curl imaps:// with the test CA', async () => {
    const alice = bed.userOn('A');
    const r = await execa(
      'curl',
      [
        '-s',
        '-S',
        '--max-time',
        '20',
        '--cacert',
        tls.caFile,
        '-u',
        `${alice.uid}:${alice.password}`,
        `imaps://localhost:${imap.tlsPort}/INBOX;UID=1`,
      ],
      { reject: false },
    );
    expect(r.stderr).toBe('');
    expect(String(r.stdout)).toContain(`Subject: ${markerSubject('A', alice.uid)}`);
  });
});

describe('POP3: implicit TLS and STLS', () => {
  let pop: Started;
  beforeAll(async () => {
    pop = await start('pop3');
  }, 60_000);

  it('openssl s_client: implicit TLS on SSLListenPort and -starttls pop3 on ListenPort', async () => {
    const alice = bed.userOn('A');
    const implicit = await sClient(
      ['-connect', `127.0.0.1:${pop.tlsPort}`, '-servername', 'localhost'],
      'CAPA\nQUIT\n',
    );
    expect(implicit.stdout).toContain('Verify return code: 0 (ok)');
    expect(implicit.stdout).toContain('+OK Netscape Messaging Multiplexor ready');
    expect(implicit.stdout).toContain('SASL PLAIN');
    expect(implicit.stdout).not.toContain('STLS');
    const upgraded = await sClient(
      ['-connect', `127.0.0.1:${pop.proxy.port}`, '-starttls', 'pop3'],
      `USER ${alice.uid}\nPASS ${alice.password}\nSTAT\nQUIT\n`,
    );
    expect(upgraded.stdout).toContain('Verify return code: 0 (ok)');
    expect(upgraded.stdout).toMatch(/\+OK \d+ \d+/);
  });

  it('CAPA on the plain port lists STLS', async () => {
    const c = await TlsLineClient.plain(pop.proxy.port);
    await c.line();
    c.send('CAPA\r\n');
    const lines = await c.until('.');
    expect(lines).toContain('STLS');
    expect(lines).toContain('USER');
    c.close();
  });

  it('STLS injection: a command sent in the clear after STLS is never executed', async () => {
    const alice = bed.userOn('A');
    const c = await TlsLineClient.plain(pop.proxy.port);
    await c.line();
    c.send(`STLS\r\nUSER ${alice.uid}\r\n`);
    expect(await c.line()).toBe('+OK Begin TLS negotiation');
    await c.upgrade({ ca: tls.caPem, servername: 'localhost' });
    // Had the injected USER run, PASS would now be accepted.
    c.send(`PASS ${alice.password}\r\n`);
    expect(await c.line()).toBe('-ERR USER first');
    c.close();
  });
});

describe('SNI and start-up checks', () => {
  let otherCert: string;
  let otherKey: string;

  beforeAll(async () => {
    otherKey = join(work, 'other.key');
    otherCert = join(work, 'other.pem');
    await selfSignedCertificate({
      keyFile: otherKey,
      certFile: otherCert,
      subject: '/O=Other/CN=mail.other.example',
      altName: 'DNS:mail.other.example',
    });
  });

  it('several certificates: the SNI name picks one, SSLCertNickname the default', async () => {
    const { tlsPort } = await start('imap', {
      SSLCertFile: `${otherCert},${tls.certFile}`,
      SSLKeyFile: `${otherKey},${tls.keyFile}`,
      SSLCertNickname: 'localhost',
    });
    const subjectFor = async (servername: string | undefined): Promise<string> => {
      const args = ['s_client', '-connect', `127.0.0.1:${tlsPort}`];
      if (servername !== undefined) args.push('-servername', servername);
      else args.push('-noservername');
      const r = await execa('openssl', args, { input: '', reject: false, timeout: 20_000 });
      return /subject=(.*)/.exec(String(r.stdout))?.[1] ?? '';
    };
    expect(await subjectFor('mail.other.example')).toContain('mail.other.example');
    expect(await subjectFor('localhost')).toContain('CN = localhost');
    expect(await subjectFor(undefined)).toContain('CN = localhost');
    expect(await subjectFor('unknown.example')).toContain('CN = localhost');
  });

  it('a legacy cipher list is refused at start-up with the reason (exit 2)', async () => {
    const r = await startFails({ SSLCipherSpecs: 'SSL_RSA_WITH_RC4_128_MD5:AES128-SHA' });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('SSL_RSA_WITH_RC4_128_MD5 is refused: RC4 is broken');
    const des = await startFails({ SSLCipherSpecs: 'DES-CBC3-SHA' });
    expect(des.exitCode).toBe(2);
    expect(des.stderr).toContain('3DES');
  });

  it('a wrong key password stops the start (exit 2)', async () => {
    const encrypted = join(work, 'server-encrypted.key');
    await execa('openssl', [
      'pkey',
      '-in',
      tls.keyFile,
      '-aes256',
      '-passout',
      'pass:right-password',
      '-out',
      encrypted,
    ]);
    const wrong = await startFails({ SSLKeyFile: encrypted, SSLKeyPasswd: 'wrong' });
    expect(wrong.exitCode).toBe(2);
    expect(wrong.stderr).toContain('SSLKeyPasswd does not decrypt SSLKeyFile');
    const none = await startFails({ SSLKeyFile: encrypted });
    expect(none.exitCode).toBe(2);
    expect(none.stderr).toContain('is encrypted and SSLKeyPasswd is not set');
    // The right password starts.
    const { tlsPort } = await start('imap', {
      SSLKeyFile: encrypted,
      SSLKeyPasswd: 'right-password',
    });
    const c = await TlsLineClient.implicit(tlsPort, { ca: tls.caPem, servername: 'localhost' });
    expect(await c.line()).toMatch(/^\* OK /);
    c.close();
  });

  it('an NSS database is refused with the export recipe', async () => {
    const db = join(work, 'cert7.db');
    await writeFile(db, Buffer.from([0, 6, 21, 97, 0, 0, 0, 2]));
    const r = await startFails({ SSLCertFile: db });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('is an NSS database');
    expect(r.stderr).toContain('pk12util');
    expect(r.stderr).toContain('openssl pkcs12');
  });
});

describe('RestrictPlainPasswords', () => {
  it('IMAP: LOGINDISABLED and PRIVACYREQUIRED before STARTTLS, LOGIN works after', async () => {
    const { proxy } = await start('imap', { RestrictPlainPasswords: 'yes' });
    const alice = bed.userOn('A');
    const c = await TlsLineClient.plain(proxy.port);
    const greeting = await c.line();
    expect(greeting).toContain('STARTTLS');
    expect(greeting).toContain('LOGINDISABLED');
    expect(greeting).not.toContain('AUTH=PLAIN');
    c.send(`a LOGIN ${alice.uid} ${alice.password}\r\n`);
    expect(await c.line()).toMatch(/^a NO \[PRIVACYREQUIRED\] /);
    // A literal-using client is refused before `+`, so it never sends the password in the clear.
    c.send(`l LOGIN {${alice.uid.length}}\r\n`);
    expect(await c.line()).toMatch(/^l NO \[PRIVACYREQUIRED\] /);
    c.send('b AUTHENTICATE PLAIN\r\n');
    expect(await c.line()).toMatch(/^b NO \[PRIVACYREQUIRED\] .*STARTTLS/);
    c.send('c STARTTLS\r\n');
    expect(await c.line()).toBe('c OK Begin TLS negotiation now');
    await c.upgrade({ ca: tls.caPem, servername: 'localhost' });
    c.send('d CAPABILITY\r\n');
    const caps = await c.until('d ');
    expect(caps[0]).toContain('AUTH=PLAIN');
    expect(caps[0]).not.toContain('LOGINDISABLED');
    c.send(`e LOGIN ${alice.uid} ${alice.password}\r\n`);
    const answer = await c.until('e ');
    expect(answer.at(-1)).toMatch(/^e OK /);
    c.close();
  });

  it('POP3: USER and AUTH PLAIN refused before STLS, CAPA without USER', async () => {
    const { proxy } = await start('pop3', { RestrictPlainPasswords: 'yes' });
    const alice = bed.userOn('A');
    const c = await TlsLineClient.plain(proxy.port);
    await c.line();
    c.send('CAPA\r\n');
    const caps = await c.until('.');
    expect(caps).toContain('STLS');
    expect(caps).not.toContain('USER');
    expect(caps.join('\n')).not.toContain('SASL');
    c.send(`USER ${alice.uid}\r\n`);
    expect(await c.line()).toMatch(/^-ERR \[SYS\/PERM\] Plaintext authentication is disabled/);
    c.send('AUTH PLAIN\r\n');
    expect(await c.line()).toMatch(/^-ERR \[SYS\/PERM\] /);
    c.send('AUTH\r\n');
    expect(await c.until('.')).toEqual(['+OK', '.']);
    c.send('STLS\r\n');
    expect(await c.line()).toBe('+OK Begin TLS negotiation');
    await c.upgrade({ ca: tls.caPem, servername: 'localhost' });
    c.send(`USER ${alice.uid}\r\n`);
    expect(await c.line()).toMatch(/^\+OK /);
    c.send(`PASS ${alice.password}\r\n`);
    expect(await c.line()).toMatch(/^\+OK /);
    c.close();
  });
});

describe('TLS to the store (SSLBacksidePort)', () => {
  it('verified against SSLCAFile: the login reaches the store over TLS', async () => {
    const { proxy } = await start('imap', {
      SSLBacksidePort: String(bed.backsidePorts.imaps),
      SSLCAFile: tls.caFile,
    });
    const alice = bed.userOn('A');
    const c = await TlsLineClient.plain(proxy.port);
    await c.line();
    c.send(`a LOGIN ${alice.uid} ${alice.password}\r\n`);
    const answer = await c.until('a ');
    expect(answer.at(-1)).toMatch(/^a OK /);
    c.send('b LOGOUT\r\n');
    await c.until('b ');
    c.close();
    await proxy.waitForLog(`:${bed.backsidePorts.imaps}`);
  });

  it('a store certificate from another CA is refused: the store counts as failed (ALERT)', async () => {
    const otherCa = join(work, 'other-ca.pem');
    await selfSignedCertificate({
      keyFile: join(work, 'other-ca.key'),
      certFile: otherCa,
      subject: '/CN=Some other CA',
    });
    const { proxy } = await start('imap', {
      SSLBacksidePort: String(bed.backsidePorts.imaps),
      SSLCAFile: otherCa,
    });
    const alice = bed.userOn('A');
    const c = await TlsLineClient.plain(proxy.port);
    await c.line();
    c.send(`a LOGIN ${alice.uid} ${alice.password}\r\n`);
    expect(await c.line(20_000)).toMatch(/^a NO \[ALERT\] /);
    c.close();
    await proxy.waitForLog(/TLS: .*(certificate|verify)/i);
  });

  it('SSLBacksideVerify=no is the explicit opt-out', async () => {
    const { proxy } = await start('pop3', {
      SSLBacksidePort: String(bed.backsidePorts.pop3s),
      SSLCAFile: join(work, 'other-ca.pem'),
      SSLBacksideVerify: 'no',
    });
    const alice = bed.userOn('A');
    const c = await TlsLineClient.plain(proxy.port);
    await c.line();
    c.send(`USER ${alice.uid}\r\nPASS ${alice.password}\r\n`);
    expect(await c.line()).toMatch(/^\+OK password required/);
    expect(await c.line()).toMatch(/^\+OK /);
    c.close();
  });
});

describe('PreAuth', () => {
  it('binds as the user first: success logs the guide line, failure never reaches the store', async () => {
    const { proxy } = await start('imap', {}, ['-pre']);
    const alice = bed.userOn('A');
    const c = await TlsLineClient.plain(proxy.port);
    await c.line();
    c.send(`a LOGIN ${alice.uid} ${alice.password}\r\n`);
    expect((await c.until('a ')).at(-1)).toMatch(/^a OK /);
    c.close();
    const bob = bed.userOn('B');
    const d = await TlsLineClient.plain(proxy.port);
    await d.line();
    d.send(`a LOGIN ${bob.uid} wrong-password\r\n`);
    expect(await d.line()).toBe('a NO [AUTHENTICATIONFAILED] Authentication failed.');
    d.close();
    // Stopped, the proxy has written every record: the absences below are looked for in all.
    await proxy.stop();
    const logs = await proxy.logs();
    expect(logs).toMatch(
      new RegExp(
        `\\d{8} \\d{6} \\(sid 0x[0-9a-f]+\\) ${alice.uid} pre-authenticated - 127\\.0\\.0\\.1`,
      ),
    );
    expect(logs).not.toContain(`${bob.uid} pre-authenticated`);
    // Bob's store (B) was never contacted.
    expect(logs).not.toContain(`"store":"${bed.store('B').host}:`);
  });
});

describe('certificate login (AUTHENTICATE EXTERNAL / AUTH EXTERNAL)', () => {
  let certmap: string;
  beforeAll(async () => {
    certmap = join(work, 'certmap.conf');
    // The guide's example: the subject's ou is the user's uid.
    await writeFile(
      certmap,
      [`certmap testca ${tls.issuer}`, 'testca:DNComps', 'testca:FilterComps ou=uid', ''].join(
        '\n',
      ),
    );
  });

  const certEnv = (): Record<string, string> => ({
    CertMapFile: certmap,
    SSLClientCAFile: tls.caFile,
    StoreAdmin: bed.masterUser.name,
    StoreAdminPass: bed.masterUser.password,
  });

  it('IMAP: a verified certificate with ou=<uid> lands on the right store through the master user', async () => {
    const { tlsPort } = await start('imap', certEnv());
    for (const store of ['A', 'B'] as const) {
      const user = bed.userOn(store);
      const cert = tls.clientCerts.find((k) => k.uid === user.uid);
      if (cert === undefined) continue;
      const c = await TlsLineClient.implicit(tlsPort, {
        ca: tls.caPem,
        servername: 'localhost',
        cert: await readFile(cert.certFile, 'utf8'),
        key: await readFile(cert.keyFile, 'utf8'),
      });
      expect(await c.line()).toContain('AUTH=EXTERNAL');
      c.send('a AUTHENTICATE EXTERNAL =\r\n');
      expect((await c.until('a ')).at(-1)).toMatch(/^a OK /);
      c.send('b SELECT INBOX\r\nc FETCH 1 (BODY[HEADER.FIELDS (SUBJECT)])\r\n');
      const fetched = (await c.until('c ')).join('\n');
      expect(fetched).toContain(markerSubject(store, user.uid));
      c.close();
    }
  });

  it('IMAP: no certificate, or EXTERNAL on a plain connection, gets a clear refusal', async () => {
    const { proxy, tlsPort } = await start('imap', certEnv());
    const c = await TlsLineClient.implicit(tlsPort, { ca: tls.caPem, servername: 'localhost' });
    expect(await c.line()).not.toContain('AUTH=EXTERNAL');
    c.send('a AUTHENTICATE EXTERNAL =\r\n');
    expect(await c.line()).toBe('a NO [AUTHENTICATIONFAILED] No client certificate was presented');
    c.close();
    const p = await TlsLineClient.plain(proxy.port);
    await p.line();
    p.send('a AUTHENTICATE EXTERNAL =\r\n');
    expect(await p.line()).toMatch(
      /^a NO \[AUTHENTICATIONFAILED\] EXTERNAL needs a TLS connection/,
    );
    p.close();
  });

  it('IMAP: a certificate from another CA is not trusted', async () => {
    const { tlsPort } = await start('imap', certEnv());
    const selfKey = join(work, 'mallory.key');
    const selfCert = join(work, 'mallory.pem');
    await selfSignedCertificate({
      keyFile: selfKey,
      certFile: selfCert,
      subject: '/O=mmp.test/OU=alice/CN=Mallory',
    });
    const c = await TlsLineClient.implicit(tlsPort, {
      ca: tls.caPem,
      servername: 'localhost',
      cert: await readFile(selfCert, 'utf8'),
      key: await readFile(selfKey, 'utf8'),
    });
    expect(await c.line()).not.toContain('AUTH=EXTERNAL');
    c.send('a AUTHENTICATE EXTERNAL =\r\n');
    expect(await c.line()).toMatch(
      /^a NO \[AUTHENTICATIONFAILED\] The client certificate is not trusted/,
    );
    c.close();
  });

  it('POP3: AUTH EXTERNAL after STLS with a certificate reaches the user mailbox', async () => {
    const { proxy } = await start('pop3', certEnv());
    const user = bed.userOn('A');
    const cert = tls.clientCerts.find((k) => k.uid === user.uid);
    expect(cert).toBeDefined();
    if (cert === undefined) return;
    const c = await TlsLineClient.plain(proxy.port);
    await c.line();
    c.send('STLS\r\n');
    expect(await c.line()).toBe('+OK Begin TLS negotiation');
    await c.upgrade({
      ca: tls.caPem,
      servername: 'localhost',
      cert: await readFile(cert.certFile, 'utf8'),
      key: await readFile(cert.keyFile, 'utf8'),
    });
    c.send('CAPA\r\n');
    expect(await c.until('.')).toContain('SASL PLAIN LOGIN EXTERNAL');
    c.send('AUTH\r\n');
    expect(await c.until('.')).toEqual(['+OK', 'PLAIN', 'LOGIN', 'EXTERNAL', '.']);
    c.send('AUTH EXTERNAL =\r\n');
    expect(await c.line()).toMatch(/^\+OK /);
    c.send('TOP 1 0\r\n');
    const top = (await c.until('.')).join('\n');
    expect(top).toContain(markerSubject('A', user.uid));
    c.close();
  });

  /** A TLS client presenting `uid`'s certificate, from `localAddress` when given. */
  async function withCertificate(
    port: number,
    uid: string,
    localAddress?: string,
  ): Promise<TlsLineClient> {
    const cert = tls.clientCerts.find((k) => k.uid === uid);
    if (cert === undefined) throw new Error(`the test bed has no certificate for ${uid}`);
    return TlsLineClient.implicit(port, {
      ca: tls.caPem,
      servername: 'localhost',
      cert: await readFile(cert.certFile, 'utf8'),
      key: await readFile(cert.keyFile, 'utf8'),
      ...(localAddress === undefined ? {} : { localAddress }),
    });
  }

  it('ForwardClientAddress: the store logs the certificate user’s own address, as for a password login', async () => {
    // A client address no other test uses (127.0.1.0/24 is this suite's).
    const from = '127.0.1.79';
    const alice = bed.userOn('A');
    const forward = { ...certEnv(), ForwardClientAddress: 'yes' };
    const imap = await start('imap', forward);
    const imapLine = await storeLoginLine(bed.store('A').logPath, 'imap', async () => {
      const c = await withCertificate(imap.tlsPort, alice.uid, from);
      await c.line();
      c.send('a AUTHENTICATE EXTERNAL =\r\n');
      expect((await c.until('a ')).at(-1)).toMatch(/^a OK /);
      c.close();
    });
    expect(imapLine).toContain(`user=<${alice.uid}>`);
    expect(imapLine).toContain(`rip=${from},`);
    const pop = await start('pop3', forward);
    const popLine = await storeLoginLine(bed.store('A').logPath, 'pop3', async () => {
      const c = await withCertificate(pop.tlsPort, alice.uid, from);
      await c.line();
      c.send('AUTH EXTERNAL =\r\n');
      expect(await c.line()).toMatch(/^\+OK /);
      c.close();
    });
    expect(popLine).toContain(`user=<${alice.uid}>`);
    expect(popLine).toContain(`rip=${from},`);
  });

  it('MaxConcurrentConnectionAttempts: a store that timed out is skipped at once, for a certificate login as for a password login', async () => {
    // On store A's own address, where alice's mailHost points, a store that accepts and never
    // greets; BacksidePort leads there.
    const hung = createServer(() => undefined);
    await new Promise<void>((resolve) => hung.listen(0, bed.store('A').host, resolve));
    const hungPort = (hung.address() as AddressInfo).port;
    const tlsPort = await freePort('127.0.0.1');
    const proxy = await startProxyProcess(
      testbedArgs(bed, hungPort, { logLevel: 10 }),
      {
        Timeout: '10',
        StoreConnectTimeout: '1',
        SSLEnable: 'yes',
        SSLListenPort: `127.0.0.1:${tlsPort}`,
        SSLCertFile: tls.certFile,
        SSLKeyFile: tls.keyFile,
        ...certEnv(),
      },
      IMAP_PROXY,
    );
    running.push(proxy);
    try {
      const alice = bed.userOn('A');
      const c = await withCertificate(tlsPort, alice.uid);
      await c.line();
      // The first waits out the greeting (StoreConnectTimeout): the store is marked down …
      c.send('a AUTHENTICATE EXTERNAL =\r\n');
      expect(await c.line(20_000)).toMatch(/^a NO \[ALERT\] /);
      // … so the next certificate login skips it without connecting, and so does a password.
      c.send('b AUTHENTICATE EXTERNAL =\r\n');
      expect(await c.line()).toMatch(/^b NO \[ALERT\] /);
      c.close();
      const p = await TlsLineClient.plain(proxy.port);
      await p.line();
      p.send(`c LOGIN ${alice.uid} ${alice.password}\r\n`);
      expect(await p.line()).toMatch(/^c NO \[ALERT\] /);
      p.close();
      // Stopped, the proxy has written every record: exactly two skips, not two so far.
      await proxy.stop();
      const skipped = (await proxy.logs())
        .split('\n')
        .filter((l) => l.includes('"msg":"store skipped"'));
      expect(skipped).toHaveLength(2);
      for (const line of skipped) {
        expect(line).toContain(`"store":"${bed.store('A').host}:${hungPort}"`);
        expect(line).toContain('"reason":"marked down after a timeout"');
      }
    } finally {
      hung.close();
    }
  });

  it('a certmap asking for verifycert (not carried out) stops the start (exit 2)', async () => {
    const strict = join(work, 'certmap-verifycert.conf');
    await writeFile(
      strict,
      'certmap default default\ndefault:FilterComps ou=uid\ndefault:verifycert on\n',
    );
    const r = await startFails({ ...certEnv(), CertMapFile: strict });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('verifycert on is not supported');
  });

  it('curl --cert over imaps:// completes the TLS handshake with the client certificate', async () => {
    const { tlsPort } = await start('imap', certEnv());
    const alice = bed.userOn('A');
    const cert = tls.clientCerts.find((k) => k.uid === alice.uid);
    if (cert === undefined) return;
    const r = await execa(
      'curl',
      [
        '-s',
        '-S',
        '--max-time',
        '20',
        '--cacert',
        tls.caFile,
        '--cert',
        cert.certFile,
        '--key',
        cert.keyFile,
        '-u',
        `${alice.uid}:${alice.password}`,
        `imaps://localhost:${tlsPort}/INBOX;UID=1`,
      ],
      { reject: false },
    );
    expect(r.stderr).toBe('');
    expect(String(r.stdout)).toContain(`Subject: ${markerSubject('A', alice.uid)}`);
  });
});
