// XOAUTH2 and OAUTHBEARER straight at the test bed's Dovecot stores (no proxy): the logins that
// work, and the exact bytes of a refusal, which the proxy's pass-through must carry unchanged.
import { afterAll, describe, expect, it } from 'vitest';
import {
  DOVECOT_OAUTHBEARER_ERROR,
  DOVECOT_XOAUTH2_ERROR,
  imapLoginCommand,
  LineClient,
  saslOauthbearer,
  saslPlain,
  saslXoauth2,
  startTestbed,
  type Store,
  type Testbed,
} from './index.js';

const testbed: Testbed = await startTestbed({ oauth2: true, bulkUsers: 0, tls: false });
afterAll(async () => {
  await testbed.stop();
});

type Protocol = 'imap' | 'pop3';
type Mechanism = 'XOAUTH2' | 'OAUTHBEARER';

const portOf = (store: Store, protocol: Protocol): number =>
  protocol === 'imap' ? store.imapPort : store.pop3Port;

function initialResponse(
  mech: Mechanism,
  store: Store,
  protocol: Protocol,
  user: string,
  token: string,
): string {
  return mech === 'XOAUTH2'
    ? saslXoauth2(user, token)
    : saslOauthbearer(user, token, store.host, portOf(store, protocol));
}

/**
 * Connect, skip the greeting, then send each line and read one line back; the transcript as
 * `C: …` / `S: …`, with every occurrence of `hide` (the initial response) shown as `<IR>`.
 */
async function transcript(
  store: Store,
  protocol: Protocol,
  lines: readonly string[],
  hide: string,
): Promise<{ lines: string[]; client: LineClient }> {
  const client = await LineClient.connect(store.host, portOf(store, protocol));
  await client.readLine();
  const seen: string[] = [];
  for (const line of lines) {
    client.write(`${line}\r\n`);
    seen.push(`C: ${line.replace(hide, '<IR>')}`);
    seen.push(`S: ${(await client.readLine()).replace(hide, '<IR>')}`);
  }
  return { lines: seen, client };
}

function authCommand(protocol: Protocol, mech: Mechanism, ir?: string): string {
  const verb = protocol === 'imap' ? `a AUTHENTICATE ${mech}` : `AUTH ${mech}`;
  return ir === undefined ? verb : `${verb} ${ir}`;
}

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');
/** The reply a client sends to the error challenge (RFC 7628 section 3.2.3; XOAUTH2: empty). */
const dummyReply = (mech: Mechanism): string => (mech === 'OAUTHBEARER' ? b64('\x01') : '');

/** Logged in as `uid`? IMAP: message 1 names its owner; POP3: STAT sees three messages. */
async function loggedInAs(client: LineClient, protocol: Protocol, uid: string): Promise<void> {
  if (protocol === 'imap') {
    expect((await client.imap('b', 'EXAMINE INBOX')).at(-1)).toMatch(/^b OK/);
    const lines = await client.imap('c', 'FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])');
    expect(lines.join('\n')).toContain(`Subject: Welcome to store A, ${uid}`);
  } else {
    expect(await client.pop3('STAT')).toMatch(/^\+OK 3 \d+$/);
    expect(await client.pop3('TOP 1 0')).toMatch(/^\+OK/);
    const header: string[] = [];
    for (let line = await client.readLine(); line !== '.'; line = await client.readLine()) {
      header.push(line);
    }
    expect(header).toContain(`Subject: Welcome to store A, ${uid}`);
  }
}

const OK_LINE: Record<Protocol, RegExp> = {
  imap: /^S: a OK \[CAPABILITY IMAP4rev1 .*\] Logged in$/,
  pop3: /^S: \+OK Logged in\.$/,
};
const REFUSED: Record<Protocol, string> = {
  imap: 'S: a NO [AUTHENTICATIONFAILED] Authentication failed.',
  pop3: 'S: -ERR [AUTH] Authentication failed.',
};
const CHALLENGE: Record<Mechanism, string> = {
  XOAUTH2: 'S: + eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwic2NvcGUiOiJtYWlsIn0=',
  OAUTHBEARER: 'S: + eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0=',
};

describe('the stores offer XOAUTH2 and OAUTHBEARER', () => {
  it('in the IMAP greeting and the POP3 CAPA, beside PLAIN and LOGIN', async () => {
    const store = testbed.store('A');
    const imap = await LineClient.connect(store.host, store.imapPort);
    expect(await imap.readLine()).toContain('AUTH=PLAIN AUTH=LOGIN AUTH=XOAUTH2 AUTH=OAUTHBEARER]');
    imap.close();
    const pop3 = await LineClient.connect(store.host, store.pop3Port);
    await pop3.readLine();
    expect(await pop3.pop3('CAPA')).toBe('+OK');
    const capa: string[] = [];
    for (let line = await pop3.readLine(); line !== '.'; line = await pop3.readLine())
      capa.push(line);
    expect(capa).toContain('SASL PLAIN LOGIN XOAUTH2 OAUTHBEARER');
    pop3.close();
  });

  it('the refusal challenges decode to the RFC 7628 JSON errors', () => {
    expect(Buffer.from(CHALLENGE.XOAUTH2.slice(5), 'base64').toString()).toBe(
      DOVECOT_XOAUTH2_ERROR,
    );
    expect(Buffer.from(CHALLENGE.OAUTHBEARER.slice(5), 'base64').toString()).toBe(
      DOVECOT_OAUTHBEARER_ERROR,
    );
  });
});

for (const protocol of ['imap', 'pop3'] as const) {
  for (const mech of ['XOAUTH2', 'OAUTHBEARER'] as const) {
    describe(`${protocol.toUpperCase()} ${mech}`, () => {
      const store = (): Store => testbed.store('A');

      it('logs in with a valid token, the initial response on the command line', async () => {
        const ir = initialResponse(mech, store(), protocol, 'alice', testbed.issueToken('alice'));
        const { lines, client } = await transcript(
          store(),
          protocol,
          [authCommand(protocol, mech, ir)],
          ir,
        );
        try {
          expect(lines[0]).toBe(`C: ${authCommand(protocol, mech, '<IR>')}`);
          expect(lines[1]).toMatch(OK_LINE[protocol]);
          await loggedInAs(client, protocol, 'alice');
        } finally {
          client.close();
        }
      });

      it('logs in with a valid token sent after an empty continuation', async () => {
        const ir = initialResponse(mech, store(), protocol, 'alice', testbed.issueToken('alice'));
        const { lines, client } = await transcript(
          store(),
          protocol,
          [authCommand(protocol, mech), ir],
          ir,
        );
        client.close();
        expect(lines.slice(0, 3)).toEqual([
          `C: ${authCommand(protocol, mech)}`,
          'S: + ',
          'C: <IR>',
        ]);
        expect(lines[3]).toMatch(OK_LINE[protocol]);
      });

      for (const [what, token] of [
        ['an expired token', () => testbed.issueToken('alice', { expired: true })],
        ["another user's token", () => testbed.issueToken('bob')],
        ['a token nobody issued', () => 'mmp-testbed.never-issued'],
        ["the user's password as a token", () => testbed.user('alice').password],
      ] as const) {
        it(`refuses ${what}: the JSON error challenge, the client's reply, then the refusal`, async () => {
          const ir = initialResponse(mech, store(), protocol, 'alice', token());
          const reply = dummyReply(mech);
          const { lines, client } = await transcript(
            store(),
            protocol,
            [authCommand(protocol, mech, ir), reply],
            ir,
          );
          client.close();
          expect(lines).toEqual([
            `C: ${authCommand(protocol, mech, '<IR>')}`,
            CHALLENGE[mech],
            `C: ${reply}`,
            REFUSED[protocol],
          ]);
        });
      }

      it('answers `*` after the challenge as an aborted exchange', async () => {
        const ir = initialResponse(
          mech,
          store(),
          protocol,
          'alice',
          testbed.issueToken('alice', { expired: true }),
        );
        const { lines, client } = await transcript(
          store(),
          protocol,
          [authCommand(protocol, mech, ir), '*'],
          ir,
        );
        client.close();
        expect(lines.slice(1)).toEqual([
          CHALLENGE[mech],
          'C: *',
          protocol === 'imap'
            ? 'S: a BAD Authentication aborted by client.'
            : 'S: -ERR Authentication aborted by client.',
        ]);
      });
    });
  }
}

describe('with the oauth2 passdb in place', () => {
  const store = (): Store => testbed.store('A');

  it('password logins keep working: IMAP LOGIN, POP3 USER/PASS, the master user', async () => {
    const alice = testbed.user('alice');
    const imap = await LineClient.connect(store().host, store().imapPort);
    await imap.readLine();
    expect((await imap.imap('a', imapLoginCommand(alice.uid, alice.password))).at(-1)).toMatch(
      /^a OK/,
    );
    await loggedInAs(imap, 'imap', 'alice');
    imap.close();

    const pop3 = await LineClient.connect(store().host, store().pop3Port);
    await pop3.readLine();
    expect(await pop3.pop3(`USER ${alice.uid}`)).toMatch(/^\+OK/);
    expect(await pop3.pop3(`PASS ${alice.password}`)).toBe('+OK Logged in.');
    pop3.close();

    const master = testbed.masterUser;
    const viaMaster = await LineClient.connect(store().host, store().imapPort);
    await viaMaster.readLine();
    const answer = await viaMaster.imap(
      'a',
      `AUTHENTICATE PLAIN ${saslPlain(master.name, master.password, alice.uid)}`,
    );
    expect(answer.at(-1)).toMatch(/^a OK/);
    await loggedInAs(viaMaster, 'imap', 'alice');
    viaMaster.close();
  });

  it('a token is no password', async () => {
    const token = testbed.issueToken('alice');
    const imap = await LineClient.connect(store().host, store().imapPort);
    await imap.readLine();
    expect((await imap.imap('a', imapLoginCommand('alice', token))).at(-1)).toBe(
      'a NO [AUTHENTICATIONFAILED] Authentication failed.',
    );
    imap.close();
  });

  it('Dovecot asks the endpoint once per login, the token as a POST form field', async () => {
    const before = testbed.oauth2?.introspections.length ?? 0;
    const ir = saslXoauth2('bob', testbed.issueToken('bob'));
    const b = testbed.store('B');
    const { lines, client } = await transcript(b, 'imap', [`a AUTHENTICATE XOAUTH2 ${ir}`], ir);
    client.close();
    expect(lines[1]).toMatch(OK_LINE.imap);
    expect(testbed.oauth2?.introspections.slice(before)).toEqual([
      { via: 'form', active: true, username: 'bob' },
    ]);
  });
});

describe('the introspection endpoint (RFC 7662)', () => {
  const introspect = async (token: string): Promise<unknown> => {
    const url = testbed.oauth2?.introspectionUrl ?? '';
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token }).toString(),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json');
    return response.json();
  };

  it('says active with the user, scope and expiry for a valid token', async () => {
    const now = Math.floor(Date.now() / 1000);
    const answer = (await introspect(testbed.issueToken('carol'))) as Record<string, unknown>;
    expect(answer).toMatchObject({
      active: true,
      username: 'carol',
      scope: 'mail',
      token_type: 'Bearer',
    });
    expect(answer.exp).toBeGreaterThan(now);
  });

  it('says only `active: false` for an expired or unknown token', async () => {
    expect(await introspect(testbed.issueToken('carol', { expired: true }))).toEqual({
      active: false,
    });
    expect(await introspect('nonsense')).toEqual({ active: false });
  });

  it('is absent unless asked for', async () => {
    const plain = await startTestbed({ bulkUsers: 0, tls: false, stores: 1 });
    try {
      expect(plain.oauth2).toBeUndefined();
      expect(() => plain.issueToken('alice')).toThrow(/oauth2: true/);
      const imap = await LineClient.connect(plain.store('A').host, plain.store('A').imapPort);
      const greeting = await imap.readLine();
      imap.close();
      expect(greeting).toContain('AUTH=PLAIN AUTH=LOGIN]');
      expect(greeting).not.toContain('XOAUTH2');
    } finally {
      await plain.stop();
    }
  });
});
