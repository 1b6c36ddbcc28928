/**
 * Issue 17, point 2, as an operator meets it: the guide's certificate-login recipe (SSLEnable,
 * CertMapFile, StoreAdmin, StoreAdminPass) with the built ImapProxy in front of the test bed,
 * `openssl s_client` presenting a certificate and AUTHENTICATE EXTERNAL; the start-up refusal
 * without a client CA; certmap.conf's subject-DN map and DNComps; and SSLRequireClientCert.
 */

import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../test-support/tempDirs.js';
import {
  type Testbed,
  type TestbedTls,
  freePort,
  freePortsOnAll,
  markerSubject,
  startTestbed,
} from '@mmp/testbed';
import {
  IMAP_PROXY,
  type ProxyProcess,
  logsUpToNow,
  proxyEnv,
  startProxyProcess,
  testbedArgs,
} from '../test-support/proxyProcess.js';
import { selfSignedCertificate } from '../test-support/selfSigned.js';
import { TlsLineClient } from '../test-support/tlsClient.js';

let bed: Testbed;
let tls: TestbedTls;
let work: string;
const running: ProxyProcess[] = [];

beforeAll(async () => {
  bed = await startTestbed({ stores: 2, bulkUsers: 0 });
  if (bed.tls === undefined) throw new Error('the test bed has no TLS');
  tls = bed.tls;
  work = await tempDir('mmp-certrecipe-');
}, 120_000);

afterAll(async () => {
  await Promise.all(running.map((p) => p.stop()));
  await bed?.stop();
});

/** A certmap.conf with these lines. */
async function certmap(name: string, lines: string[]): Promise<string> {
  const path = join(work, `${name}.conf`);
  await writeFile(path, `${lines.join('\n')}\n`);
  return path;
}

/** The guide's recipe, as its text has it, plus the client CA. */
const recipe = (mapFile: string): Record<string, string> => ({
  SSLEnable: 'yes',
  SSLCertFile: tls.certFile,
  SSLKeyFile: tls.keyFile,
  CertMapFile: mapFile,
  StoreAdmin: bed.masterUser.name,
  StoreAdminPass: bed.masterUser.password,
  SSLClientCAFile: tls.caFile,
});

async function start(
  env: Record<string, string>,
  /** Addresses besides 127.0.0.1 the TLS port must be free on (a vdmap entry's). */
  alsoOn: readonly string[] = [],
): Promise<{ proxy: ProxyProcess; tls: number }> {
  const [tlsPort = 0] = await freePortsOnAll(['127.0.0.1', ...alsoOn], 1);
  const proxy = await startProxyProcess(
    testbedArgs(bed, bed.backsidePorts.imap, { logLevel: 10 }),
    {
      Timeout: '10',
      SSLListenPort: `127.0.0.1:${tlsPort}`,
      ...env,
    },
  );
  running.push(proxy);
  return { proxy, tls: tlsPort };
}

/** `openssl s_client` on the implicit-TLS port, typing `lines` (CRLF), until the server closes. */
async function sClient(
  port: number,
  lines: string[],
  cert?: { certFile: string; keyFile: string },
  host = '127.0.0.1',
): Promise<{ out: string; err: string; code: number | undefined }> {
  const r = await execa(
    'openssl',
    [
      's_client',
      '-connect',
      `${host}:${port}`,
      '-servername',
      'localhost',
      '-CAfile',
      tls.caFile,
      '-verify_return_error',
      '-quiet',
      '-crlf',
      ...(cert === undefined ? [] : ['-cert', cert.certFile, '-key', cert.keyFile]),
    ],
    { input: `${lines.join('\n')}\n`, reject: false, timeout: 30_000 },
  );
  return { out: String(r.stdout), err: String(r.stderr), code: r.exitCode };
}

const entryCert = (uid: string): { certFile: string; keyFile: string } => {
  const cert = tls.entryDnCerts.find((c) => c.uid === uid);
  if (cert === undefined) throw new Error(`no entry-DN certificate for ${uid}`);
  return cert;
};

const EXTERNAL_SESSION = [
  'a AUTHENTICATE EXTERNAL =',
  'b SELECT INBOX',
  'c FETCH 1 (BODY[HEADER.FIELDS (SUBJECT)])',
  'd LOGOUT',
];

describe("the guide's certificate recipe (issue 17)", () => {
  it('without a client CA the proxy refuses to start, saying which parameter to set', async () => {
    const port = await freePort('127.0.0.1');
    const env = recipe(await certmap('plain', ['certmap default default']));
    delete env['SSLClientCAFile'];
    const r = await execa('node', [IMAP_PROXY, '-p', `127.0.0.1:${port}`], {
      reject: false,
      extendEnv: false,
      env: proxyEnv({ ...env, SSLListenPort: `127.0.0.1:${await freePort('127.0.0.1')}` }),
      timeout: 20_000,
    });
    expect(r.exitCode).toBe(2);
    expect(String(r.stderr)).toContain('set SSLClientCAFile');
  });

  it('a certmap without FilterComps maps the subject DN to the entry: openssl s_client and EXTERNAL reach each user’s store', async () => {
    // certmap.conf's default map and nothing else: the certificate's subject is the entry's DN.
    const { proxy, tls: port } = await start(
      recipe(await certmap('subject-dn', ['certmap default default'])),
    );
    for (const store of ['A', 'B'] as const) {
      const user = bed.userOn(store);
      if (tls.entryDnCerts.every((c) => c.uid !== user.uid)) continue;
      const r = await sClient(port, EXTERNAL_SESSION, entryCert(user.uid));
      expect(r.out).toContain('AUTH=EXTERNAL');
      expect(r.out).toMatch(/\r?\na OK /);
      expect(r.out).toContain(markerSubject(store, user.uid));
    }
    // The entry was read where the subject names it (a base-scope search).
    await proxy.waitForLog('"base":"UID=alice,OU=people,O=mmp.test","scope":"base"');
  });

  it('DNComps narrows the search base as the Netscape format defines it', async () => {
    const alice = bed.userOn('A');
    const cert = tls.clientCerts.find((c) => c.uid === alice.uid);
    if (cert === undefined) throw new Error('no certificate for alice');
    // CN=Alice Example,OU=alice,O=mmp.test: DNComps o gives the base o=mmp.test, where
    // (uid=alice) is found; DNComps ou,o gives ou=alice,o=mmp.test, where nobody is.
    const wide = await start(
      recipe(
        await certmap('dncomps-o', [
          'certmap default default',
          'default:DNComps o',
          'default:FilterComps ou=uid',
        ]),
      ),
    );
    const found = await sClient(wide.tls, EXTERNAL_SESSION, cert);
    expect(found.out).toContain(markerSubject('A', alice.uid));
    const narrow = await start(
      recipe(
        await certmap('dncomps-ou-o', [
          'certmap default default',
          'default:DNComps ou,o',
          'default:FilterComps ou=uid',
        ]),
      ),
    );
    const refused = await sClient(narrow.tls, ['a AUTHENTICATE EXTERNAL =', 'b LOGOUT'], cert);
    expect(refused.out).toContain('a NO [AUTHENTICATIONFAILED] Authentication failed.');
    await narrow.proxy.waitForLog('"base":"ou=alice,o=mmp.test","scope":"sub"');
  });
});

describe('SSLRequireClientCert (issue 17)', () => {
  const greeting = /^\* OK \[CAPABILITY /m;

  it('implicit: the SSLListenPort handshake is refused without a certificate, with a record; STARTTLS is not', async () => {
    const { proxy, tls: port } = await start({
      SSLEnable: 'yes',
      SSLCertFile: tls.certFile,
      SSLKeyFile: tls.keyFile,
      SSLClientCAFile: tls.caFile,
      SSLRequireClientCert: 'implicit',
    });
    const without = await sClient(port, ['a LOGOUT']);
    expect(without.out).not.toMatch(greeting);
    expect(without.err).toContain('certificate required');
    // A certificate from another CA: refused too, and the record says why.
    const mallory = { keyFile: join(work, 'mallory.key'), certFile: join(work, 'mallory.pem') };
    await selfSignedCertificate({ ...mallory, subject: '/O=mmp.test/OU=people/UID=alice' });
    const untrusted = await sClient(port, ['a LOGOUT'], mallory);
    expect(untrusted.out).not.toMatch(greeting);
    const alice = bed.userOn('A');
    const withCert = await sClient(port, ['a LOGOUT'], entryCert(alice.uid));
    expect(withCert.out).toMatch(greeting);
    // Every record made so far (the proxy serves STARTTLS below): these refusals and no others.
    const refusals = (await logsUpToNow(proxy))
      .split('\n')
      .filter((l) => l.includes('"msg":"TLS handshake failed"'));
    expect(refusals).toEqual([
      expect.stringContaining(
        '"error":"no client certificate (SSLRequireClientCert requires one)"',
      ),
      expect.stringMatching(/"error":"client certificate not trusted \([A-Z_]+; /),
    ]);
    // The plain port's STARTTLS still takes clients without one (`all` would not).
    const c = await TlsLineClient.plain(proxy.port);
    await c.line();
    c.send('a STARTTLS\r\n');
    expect(await c.line()).toBe('a OK Begin TLS negotiation now');
    await c.upgrade({ ca: tls.caPem, servername: 'localhost' });
    c.send('b CAPABILITY\r\n');
    expect((await c.until('b ')).at(-1)).toMatch(/^b OK/);
    c.close();
  });

  it('all: STARTTLS without a certificate is refused too, and nothing logs in before TLS', async () => {
    const { proxy } = await start({
      SSLEnable: 'yes',
      SSLCertFile: tls.certFile,
      SSLKeyFile: tls.keyFile,
      SSLClientCAFile: tls.caFile,
      SSLRequireClientCert: 'all',
    });
    const alice = bed.userOn('A');
    const c = await TlsLineClient.plain(proxy.port);
    expect(await c.line()).toContain('LOGINDISABLED');
    c.send(`a LOGIN ${alice.uid} ${alice.password}\r\n`);
    expect(await c.line()).toMatch(/^a NO \[PRIVACYREQUIRED\] /);
    c.send('b STARTTLS\r\n');
    expect(await c.line()).toBe('b OK Begin TLS negotiation now');
    // The handshake fails (TLS 1.3: the server's alert may come after the client's Finished):
    // either way no command is ever answered.
    const answered = await (async () => {
      try {
        await c.upgrade({ ca: tls.caPem, servername: 'localhost' });
        c.send('c CAPABILITY\r\n');
        return await c.line(5_000);
      } catch {
        return undefined;
      }
    })();
    expect(answered).toBeUndefined();
    c.close();
    // With alice's certificate the same upgrade logs her in.
    const ok = await TlsLineClient.plain(proxy.port);
    await ok.line();
    ok.send('a STARTTLS\r\n');
    await ok.line();
    const cert = entryCert(alice.uid);
    await ok.upgrade({
      ca: tls.caPem,
      servername: 'localhost',
      cert: await readFile(cert.certFile, 'utf8'),
      key: await readFile(cert.keyFile, 'utf8'),
    });
    ok.send(`b LOGIN ${alice.uid} ${alice.password}\r\n`);
    expect((await ok.until('b ')).at(-1)).toMatch(/^b OK /);
    ok.close();
    await proxy.waitForLog('"error":"no client certificate (SSLRequireClientCert requires one)"');
  });

  it('a vdmap entry requires a certificate on its address alone: s_client without one is refused there, served elsewhere', async () => {
    // The loopback range of this test file (127.0.12.0/24): a mapped address with its own rule.
    const STRICT = '127.0.12.1';
    const vdmap = join(work, 'strict.vdmap');
    await writeFile(vdmap, `vdmap strict ${STRICT}\nstrict:SSLRequireClientCert implicit\n`);
    const { proxy, tls: port } = await start(
      {
        SSLEnable: 'yes',
        SSLCertFile: tls.certFile,
        SSLKeyFile: tls.keyFile,
        SSLClientCAFile: tls.caFile,
        VirtualDomainFile: vdmap,
      },
      [STRICT],
    );
    const alice = bed.userOn('A');
    // The global listener asks for a certificate and takes a client without one.
    const global = await sClient(port, ['a LOGOUT']);
    expect(global.out).toMatch(greeting);
    // The mapped address's listener refuses the same handshake (certificate_required)…
    const strict = await sClient(port, ['a LOGOUT'], undefined, STRICT);
    expect(strict.out).not.toMatch(greeting);
    expect(strict.err).toContain('certificate required');
    // …and serves a client with a certificate of the client CA.
    const withCert = await sClient(port, ['a LOGOUT'], entryCert(alice.uid), STRICT);
    expect(withCert.out).toMatch(greeting);
    // Stopped, the proxy has written every record: these refusals and no others.
    await proxy.stop();
    const refusals = (await proxy.logs())
      .split('\n')
      .filter((l) => l.includes('"msg":"TLS handshake failed"'));
    expect(refusals).toEqual([
      expect.stringContaining(
        '"error":"no client certificate (SSLRequireClientCert requires one)"',
      ),
    ]);
    expect(refusals[0]).toContain(`"listener":"${STRICT}:${port}"`);
  });
});
