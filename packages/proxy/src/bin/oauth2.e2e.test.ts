/**
 * Issue 17, point 5: OAuth2 pass-through, end to end. The built ImapProxy and PopProxy with
 * OAuth2Mechanisms in front of the test bed's stores with `oauth2: true` (Dovecot's oauth2 passdb
 * and the test bed's token introspection endpoint): logins with a valid token reach each user's
 * store, an expired token and another user's token get the store's own refusal byte for byte,
 * an unknown user gets the same bytes, and no token reaches the log at LogLevel 10. Clients: a raw
 * line client (every byte compared), imapflow's accessToken, and curl's --oauth2-bearer.
 */

import { execa } from 'execa';
import { ImapFlow } from 'imapflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  LineClient,
  type Store,
  type Testbed,
  markerSubject,
  saslOauthbearer,
  saslXoauth2,
  startTestbed,
} from '@mmp/testbed';
import {
  IMAP_PROXY,
  POP_PROXY,
  type ProxyProcess,
  startProxyProcess,
  testbedArgs,
} from '../test-support/proxyProcess.js';

type Protocol = 'imap' | 'pop3';
type Mechanism = 'XOAUTH2' | 'OAUTHBEARER';
const MECHANISMS: readonly Mechanism[] = ['XOAUTH2', 'OAUTHBEARER'];
const PROTOCOLS: readonly Protocol[] = ['imap', 'pop3'];

let bed: Testbed;
const proxies: Partial<Record<Protocol, ProxyProcess>> = {};
const running: ProxyProcess[] = [];
/** Every token and SASL message sent in this file: none may appear in a log. */
const secrets = new Set<string>();

async function startProxy(
  protocol: Protocol,
  env: Record<string, string> = {},
): Promise<ProxyProcess> {
  const backside = protocol === 'imap' ? bed.backsidePorts.imap : bed.backsidePorts.pop3;
  const proxy = await startProxyProcess(
    testbedArgs(bed, backside, { logLevel: 10 }),
    { OAuth2Mechanisms: 'XOAUTH2,OAUTHBEARER', ...env },
    protocol === 'imap' ? IMAP_PROXY : POP_PROXY,
  );
  running.push(proxy);
  return proxy;
}

beforeAll(async () => {
  bed = await startTestbed({ oauth2: true, bulkUsers: 0, tls: false });
  for (const p of PROTOCOLS) proxies[p] = await startProxy(p);
}, 120_000);

afterAll(async () => {
  await Promise.all(running.map((p) => p.stop()));
  await bed?.stop();
});

const proxyOf = (p: Protocol): ProxyProcess => {
  const proxy = proxies[p];
  if (proxy === undefined) throw new Error(`no ${p} proxy`);
  return proxy;
};

function token(uid: string, expired = false, length?: number): string {
  const t = bed.issueToken(uid, { expired, ...(length === undefined ? {} : { length }) });
  secrets.add(t);
  return t;
}

/** The client's SASL message, base64 (as an initial response or a response line). */
function message(mech: Mechanism, uid: string, t: string, port: number): string {
  const m = mech === 'XOAUTH2' ? saslXoauth2(uid, t) : saslOauthbearer(uid, t, '127.0.0.1', port);
  secrets.add(m);
  secrets.add(Buffer.from(m, 'base64').toString('latin1'));
  return m;
}

/** What a client answers to the error challenge (RFC 7628 §3.2.3; XOAUTH2 clients: empty). */
const reply = (mech: Mechanism): string => (mech === 'OAUTHBEARER' ? 'AQ==' : '');

/**
 * Connect to `host:port`, skip the greeting, authenticate with `mech` (initial response or not)
 * and, when challenged, reply as a client does; the lines the client read, the message shown as
 * `<M>`. The client is left open (logged in or not).
 */
async function authenticate(
  protocol: Protocol,
  host: string,
  port: number,
  mech: Mechanism,
  uid: string,
  t: string,
  initialResponse: boolean,
): Promise<{ lines: string[]; client: LineClient }> {
  const client = await LineClient.connect(host, port);
  await client.readLine();
  const m = message(mech, uid, t, port);
  const verb = protocol === 'imap' ? `a AUTHENTICATE ${mech}` : `AUTH ${mech}`;
  const lines: string[] = [];
  client.write(initialResponse ? `${verb} ${m}\r\n` : `${verb}\r\n`);
  if (!initialResponse) {
    lines.push(await client.readLine());
    client.write(`${m}\r\n`);
  }
  let line = await client.readLine();
  lines.push(line);
  if (line.startsWith('+ ')) {
    client.write(`${reply(mech)}\r\n`);
    line = await client.readLine();
    lines.push(line);
  }
  return { lines, client };
}

/** Logged in as `uid` on `store`: message 1 names both. */
async function expectMailboxOf(
  client: LineClient,
  protocol: Protocol,
  store: 'A' | 'B',
  uid: string,
): Promise<void> {
  if (protocol === 'imap') {
    expect((await client.imap('b', 'EXAMINE INBOX')).at(-1)).toMatch(/^b OK/);
    const fetched = await client.imap('c', 'FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])');
    expect(fetched.join('\n')).toContain(markerSubject(store, uid));
    return;
  }
  expect(await client.pop3('TOP 1 0')).toMatch(/^\+OK/);
  const header: string[] = [];
  for (let l = await client.readLine(); l !== '.'; l = await client.readLine()) header.push(l);
  expect(header.join('\n')).toContain(markerSubject(store, uid));
}

const storePort = (store: Store, protocol: Protocol): number =>
  protocol === 'imap' ? store.imapPort : store.pop3Port;

describe.each(PROTOCOLS)('%s through mmp', (protocol) => {
  it('advertises the OAuth2 mechanisms only when OAuth2Mechanisms says the stores take them', async () => {
    const on = await LineClient.connect('127.0.0.1', proxyOf(protocol).port);
    const greeting = await on.readLine();
    if (protocol === 'imap') {
      expect(greeting).toContain('AUTH=XOAUTH2 AUTH=OAUTHBEARER');
    } else {
      expect(await on.pop3('CAPA')).toMatch(/^\+OK/);
      const capa: string[] = [];
      for (let l = await on.readLine(); l !== '.'; l = await on.readLine()) capa.push(l);
      expect(capa).toContain('SASL PLAIN LOGIN XOAUTH2 OAUTHBEARER');
    }
    on.close();
    const plain = await startProxy(protocol, { OAuth2Mechanisms: '' });
    const off = await LineClient.connect('127.0.0.1', plain.port);
    const g = await off.readLine();
    if (protocol === 'imap') {
      expect(g).not.toContain('XOAUTH2');
      expect(await off.imap('a', `AUTHENTICATE XOAUTH2 ${saslXoauth2('alice', 'x')}`)).toEqual([
        'a NO [CANNOT] Unsupported authentication mechanism',
      ]);
    } else {
      expect(await off.pop3('AUTH XOAUTH2')).toBe('-ERR Unsupported authentication mechanism');
    }
    off.close();
  });

  for (const mech of MECHANISMS)
    for (const initialResponse of [true, false])
      it(`${mech} ${initialResponse ? 'with' : 'without'} an initial response: a valid token reaches each user's store`, async () => {
        for (const store of ['A', 'B'] as const) {
          const user = bed.userOn(store);
          const { lines, client } = await authenticate(
            protocol,
            '127.0.0.1',
            proxyOf(protocol).port,
            mech,
            user.uid,
            token(user.uid),
            initialResponse,
          );
          expect(lines.at(-1)).toMatch(protocol === 'imap' ? /^a OK / : /^\+OK /);
          if (!initialResponse) expect(lines[0]).toBe('+ ');
          await expectMailboxOf(client, protocol, store, user.uid);
          client.close();
        }
      });

  for (const mech of MECHANISMS)
    it(`${mech}: a 4 KiB token (a real JWT's size), with and without an initial response, reaches the store`, async () => {
      // Far beyond POP3's 512-octet command line: the AUTH line (RFC 5034 §4 initial response)
      // and the response line take MAX_POP3_AUTH_LINE_BYTES.
      const user = bed.userOn('B');
      for (const initialResponse of [true, false]) {
        const { lines, client } = await authenticate(
          protocol,
          '127.0.0.1',
          proxyOf(protocol).port,
          mech,
          user.uid,
          token(user.uid, false, 4096),
          initialResponse,
        );
        expect(lines.at(-1)).toMatch(protocol === 'imap' ? /^a OK / : /^\+OK /);
        await expectMailboxOf(client, protocol, 'B', user.uid);
        client.close();
      }
    });

  for (const mech of MECHANISMS)
    it(`${mech}: an expired token, another user's token and an unknown user get the store's bytes`, async () => {
      const alice = bed.userOn('A');
      const storeA = bed.store('A');
      // What store A itself says to a refused token, without the proxy.
      const direct = await authenticate(
        protocol,
        storeA.host,
        storePort(storeA, protocol),
        mech,
        alice.uid,
        token(alice.uid, true),
        true,
      );
      direct.client.close();
      expect(direct.lines).toHaveLength(2);
      expect(direct.lines[0]).toMatch(/^\+ /);
      const port = proxyOf(protocol).port;
      const cases: [string, string][] = [
        [alice.uid, token(alice.uid, true)], // expired
        [alice.uid, token(bed.userOn('B').uid)], // bob's token, alice's name
        ['nobody-at-all', token('nobody-at-all')], // not in the directory
      ];
      for (const [uid, t] of cases) {
        const through = await authenticate(protocol, '127.0.0.1', port, mech, uid, t, true);
        through.client.close();
        expect(through.lines, uid).toEqual(direct.lines);
      }
    });
});

describe('other clients', () => {
  it('imapflow with accessToken: OAUTHBEARER (its choice when offered) and XOAUTH2, with and without SASL-IR', async () => {
    const xoauthOnly = await startProxy('imap', {
      OAuth2Mechanisms: 'XOAUTH2',
      Capability: 'IMAP4rev1 LITERAL+ ID AUTH=PLAIN AUTH=LOGIN',
    });
    for (const [port, store] of [
      [proxyOf('imap').port, 'A'],
      [xoauthOnly.port, 'B'],
    ] as const) {
      const user = bed.userOn(store);
      const client = new ImapFlow({
        host: '127.0.0.1',
        port,
        secure: false,
        auth: { user: user.uid, accessToken: token(user.uid) },
        logger: false,
      });
      await client.connect();
      const lock = await client.getMailboxLock('INBOX');
      try {
        const first = await client.fetchOne('1', { envelope: true });
        expect(first && first.envelope?.subject).toBe(markerSubject(store, user.uid));
      } finally {
        lock.release();
      }
      await client.logout();
    }
    // An expired token: imapflow reports the failed login.
    const alice = bed.userOn('A');
    const refused = new ImapFlow({
      host: '127.0.0.1',
      port: proxyOf('imap').port,
      secure: false,
      auth: { user: alice.uid, accessToken: token(alice.uid, true) },
      logger: false,
    });
    await expect(refused.connect()).rejects.toThrow();
  });

  it.each(PROTOCOLS)('curl --oauth2-bearer over %s, with each mechanism', async (protocol) => {
    const alice = bed.userOn('A');
    for (const mech of MECHANISMS) {
      const port = proxyOf(protocol).port;
      const url =
        protocol === 'imap' ? `imap://127.0.0.1:${port}/INBOX;UID=1` : `pop3://127.0.0.1:${port}/1`;
      const args = (t: string): string[] => [
        '-s',
        '-S',
        '--max-time',
        '20',
        '-u',
        `${alice.uid}:`,
        '--oauth2-bearer',
        t,
        '--login-options',
        `AUTH=${mech}`,
        url,
      ];
      const ok = await execa('curl', args(token(alice.uid)), { reject: false });
      expect(String(ok.stdout), `${protocol} ${mech}`).toContain(
        `Subject: ${markerSubject('A', alice.uid)}`,
      );
      const expired = await execa('curl', args(token(alice.uid, true)), { reject: false });
      expect(expired.exitCode).toBe(67); // CURLE_LOGIN_DENIED
    }
  });
});

describe('logs', () => {
  it('hold no token and no SASL message at LogLevel 10', async () => {
    // Stopped, the proxies have written every record: the secrets are looked for in all of them.
    await Promise.all(running.map((p) => p.stop()));
    const logs = (await Promise.all(running.map((p) => p.logs()))).join('\n');
    expect(logs).toContain('sending the bearer token to store');
    expect(logs).toContain('store challenged the token, asking the client');
    expect(secrets.size).toBeGreaterThan(10);
    for (const secret of secrets) expect(logs.includes(secret), secret.slice(0, 12)).toBe(false);
  });
});
