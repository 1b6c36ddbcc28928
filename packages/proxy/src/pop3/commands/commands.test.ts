/**
 * The POP3 commands through their dispatcher (`../dialect.ts`): the state and argument checks of
 * each declaration, the handlers' outcomes, and the lines the session says for them.
 */

import { describe, expect, it } from 'vitest';
import type { Outcome, SessionView } from '../../dialect.js';
import { silentLog } from '../../log.js';
import { testSettings } from '../../test-support/harness.js';
import { sessionSecurity } from '../../tls/security.js';
import { pop3Dialect } from '../dialect.js';
import { SpoofInbox, parseSpoofMessage } from '../spoof.js';
import { COMMANDS } from './index.js';

const PLAIN = sessionSecurity(
  { startTlsConfigured: false, restrictPlainPasswords: false, certLoginConfigured: false },
  undefined,
);

function view(more: Partial<SessionView> = {}): SessionView {
  return {
    settings: testSettings({}, 'pop3'),
    security: PLAIN,
    pendingUser: undefined,
    inbox: undefined,
    log: silentLog,
    ...more,
  };
}

/** Dispatch one command line. */
function run(v: SessionView, line: string | Buffer): Outcome {
  return pop3Dialect.dispatch(Buffer.isBuffer(line) ? line : Buffer.from(line, 'latin1'), v)
    .outcome;
}

/** What the client reads for a command line (the status line, and a multi-line body). */
function said(v: SessionView, line: string): string {
  const o = run(v, line);
  const { words } = pop3Dialect;
  switch (o.kind) {
    case 'ok':
      return `${words.ok(undefined, '', o.text)}${o.body === undefined ? '' : `\r\n${o.body.toString('latin1')}`}`;
    case 'no':
      return words.no(undefined, o.refusal);
    case 'bad':
      return words.bad(undefined, o.text);
    case 'logout':
      return words.logout(undefined).join('\r\n');
    default:
      return o.kind;
  }
}

const message = parseSpoofMessage(
  Buffer.from('From: a@b\nTo: c@d\nDate: Mon, 01 Jan 2024 00:00:00 +0000\n\n.hi\n.\n'),
);
if (!message.ok) throw new Error(message.error);
const SIZE = message.value.bytes.length;

describe('OAuth2Mechanisms (RFC 7628)', () => {
  const oauth = (): SessionView =>
    view({ settings: testSettings({ OAuth2Mechanisms: ['XOAUTH2', 'OAUTHBEARER'] }, 'pop3') });

  it('lists XOAUTH2 and OAUTHBEARER in CAPA and AUTH only when configured', () => {
    expect(said(oauth(), 'CAPA')).toContain('\r\nSASL PLAIN LOGIN XOAUTH2 OAUTHBEARER\r\n');
    expect(said(oauth(), 'AUTH')).toBe('+OK\r\nPLAIN\r\nLOGIN\r\nXOAUTH2\r\nOAUTHBEARER\r\n.\r\n');
    expect(said(view(), 'CAPA')).toContain('\r\nSASL PLAIN LOGIN\r\n');
    expect(said(view(), 'AUTH XOAUTH2')).toBe('-ERR Unsupported authentication mechanism');
  });

  it('starts the exchange: the message names the user, the token goes on untouched', () => {
    const message = 'user=alice\x01auth=Bearer t0k\x01\x01';
    const o = run(oauth(), `AUTH XOAUTH2 ${Buffer.from(message).toString('base64')}`);
    expect(o).toMatchObject({
      kind: 'sasl',
      step: { kind: 'bearer', mechanism: 'XOAUTH2', user: Buffer.from('alice') },
    });
    if (o.kind === 'sasl' && o.step.kind === 'bearer')
      expect(o.step.message.toString('latin1')).toBe(message);
    // Without an initial response: the empty challenge first (RFC 7628 §3.2.1).
    expect(run(oauth(), 'AUTH OAUTHBEARER')).toMatchObject({
      kind: 'sasl',
      step: { kind: 'challenge', challenge: Buffer.alloc(0) },
    });
  });

  it('refuses a bearer token before TLS when plaintext logins are', () => {
    const restricted = sessionSecurity(
      { startTlsConfigured: true, restrictPlainPasswords: true, certLoginConfigured: false },
      undefined,
    );
    expect(said({ ...oauth(), security: restricted }, 'AUTH XOAUTH2')).toBe(
      '-ERR [SYS/PERM] Plaintext authentication is disabled on this connection; use STLS first',
    );
    expect(said({ ...oauth(), security: restricted }, 'CAPA')).not.toContain('XOAUTH2');
  });
});

describe('CAPA (RFC 2449 §5)', () => {
  it('lists what is honoured before login, and the spoof inbox capabilities after', () => {
    expect(said(view(), 'CAPA')).toBe(
      '+OK Capability list follows\r\nUSER\r\nSASL PLAIN LOGIN\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n.\r\n',
    );
    expect(
      said(
        view({ inbox: new SpoofInbox(message.value, { outage: new Date(), user: 'alice' }) }),
        'CAPA',
      ),
    ).toBe('+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\n.\r\n');
    expect(run(view(), 'CAPA x')).toEqual({ kind: 'bad', text: 'CAPA takes no argument' });
  });

  it('STLS before TLS, no USER nor PLAIN when restricted; EXTERNAL with a verified certificate', () => {
    const policy = {
      startTlsConfigured: true,
      restrictPlainPasswords: true,
      certLoginConfigured: true,
    };
    expect(said(view({ security: sessionSecurity(policy, undefined) }), 'CAPA')).toBe(
      '+OK Capability list follows\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nSTLS\r\n.\r\n',
    );
    const verified = {
      protocol: 'TLSv1.3',
      cipher: 'TLS_AES_256_GCM_SHA384',
      peer: { verified: true, subject: 'CN=a', issuer: 'CN=ca' },
    };
    expect(said(view({ security: sessionSecurity(policy, verified) }), 'CAPA')).toBe(
      '+OK Capability list follows\r\nUSER\r\nSASL PLAIN LOGIN EXTERNAL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n.\r\n',
    );
  });
});

describe('USER and PASS (RFC 1939 §7)', () => {
  it('USER answers the same for any name and hands it on for PASS', () => {
    expect(run(view(), 'USER nobody-at-all')).toEqual({
      kind: 'ok',
      text: 'password required',
      pendingUser: Buffer.from('nobody-at-all'),
    });
  });

  it('USER refuses an empty name and control characters', () => {
    expect(run(view(), 'USER')).toEqual({ kind: 'bad', text: 'USER expects a user name' });
    expect(run(view(), 'USER ')).toEqual({ kind: 'bad', text: 'USER expects a user name' });
    expect(run(view(), 'USER a\rb')).toEqual({
      kind: 'bad',
      text: 'User name contains control characters',
    });
  });

  it('PASS takes every byte after "PASS " and asks for a login', () => {
    const password = Buffer.from(' two  spaces "q" \\ \xe9 ', 'latin1');
    const line = Buffer.concat([Buffer.from('PASS '), password]);
    expect(run(view({ pendingUser: Buffer.from('alice') }), line)).toEqual({
      kind: 'login',
      principal: {
        kind: 'password',
        credentials: { user: Buffer.from('alice'), password },
        sasl: false,
      },
    });
  });

  it('PASS needs USER first, a password, and no NUL or CR', () => {
    expect(run(view(), 'PASS x')).toEqual({ kind: 'bad', text: 'USER first' });
    const afterUser = view({ pendingUser: Buffer.from('a') });
    expect(run(afterUser, 'PASS')).toEqual({ kind: 'bad', text: 'PASS expects a password' });
    for (const bad of ['PASS a\0b', 'PASS a\rb']) expect(run(afterUser, bad).kind).toBe('bad');
  });

  it('PASS is redacted in the log description', () => {
    expect(COMMANDS.get('PASS')?.describe(Buffer.from('secret'))).toEqual({
      password: '<redacted>',
    });
  });

  it('RestrictPlainPasswords before TLS: USER, PASS and AUTH PLAIN are refused, AUTH listed', () => {
    const restricted = view({
      security: sessionSecurity(
        { startTlsConfigured: true, restrictPlainPasswords: true, certLoginConfigured: false },
        undefined,
      ),
    });
    const refused =
      '-ERR [SYS/PERM] Plaintext authentication is disabled on this connection; use STLS first';
    expect(said(restricted, 'USER alice')).toBe(refused);
    expect(said(restricted, 'PASS x')).toBe(refused);
    expect(said(restricted, 'AUTH plain')).toBe(refused);
    expect(said(restricted, 'AUTH LOGIN')).toBe(refused);
    expect(said(restricted, 'AUTH')).toBe('+OK\r\n.\r\n');
    expect(said(restricted, 'AUTH EXTERNAL =')).toMatch(/^-ERR \[AUTH\] /);
  });
});

describe('AUTH (RFC 5034)', () => {
  const b64 = (s: string): string => Buffer.from(s).toString('base64');

  it('PLAIN with an initial response completes at once', () => {
    const out = run(view(), `AUTH PLAIN ${b64('\0alice\0pw')}`);
    expect(out).toMatchObject({
      kind: 'sasl',
      step: {
        kind: 'done',
        credentials: { user: Buffer.from('alice'), password: Buffer.from('pw') },
      },
    });
  });

  it('PLAIN without one starts with the empty challenge; "=" is an empty response', () => {
    expect(run(view(), 'AUTH plain')).toMatchObject({ kind: 'sasl', step: { kind: 'challenge' } });
    expect(run(view(), 'AUTH PLAIN =')).toMatchObject({ kind: 'sasl', step: { kind: 'failed' } });
  });

  it('lists mechanisms without argument, refuses others and bad base64', () => {
    expect(said(view(), 'AUTH')).toBe('+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n');
    expect(said(view(), 'AUTH CRAM-MD5')).toBe('-ERR Unsupported authentication mechanism');
    expect(run(view(), 'AUTH PLAIN !!!')).toEqual({
      kind: 'bad',
      text: 'Invalid initial response',
    });
    expect(run(view(), 'AUTH PLAIN a b')).toEqual({
      kind: 'bad',
      text: 'AUTH expects a mechanism and an optional initial response',
    });
    expect(COMMANDS.get('AUTH')?.describe(Buffer.from('PLAIN c2VjcmV0'))).toEqual({
      mechanism: 'PLAIN',
      initialResponse: '<redacted>',
    });
  });

  it('EXTERNAL without a verified certificate says why', () => {
    expect(said(view(), 'AUTH EXTERNAL')).toBe(
      '-ERR [AUTH] EXTERNAL needs a TLS connection with a client certificate',
    );
  });
});

describe('APOP, QUIT, NOOP', () => {
  it('APOP is refused with the reason', () => {
    expect(run(view(), 'APOP alice 0123')).toEqual({
      kind: 'bad',
      text: expect.stringContaining('needs the password'),
    });
  });

  it('QUIT says goodbye and ends; NOOP answers +OK', () => {
    expect(said(view(), 'QUIT')).toBe('+OK Logging out');
    expect(said(view(), 'NOOP')).toBe('+OK');
    expect(run(view(), 'NOOP x')).toEqual({ kind: 'bad', text: 'NOOP takes no argument' });
  });
});

describe('spoof inbox commands (RFC 1939 §5, §7)', () => {
  it('STAT, LIST, UIDL, RETR, TOP, DELE, RSET', () => {
    const v = view({ inbox: new SpoofInbox(message.value, { outage: new Date(), user: 'alice' }) });
    const lines = ['STAT', 'LIST', 'LIST 1', 'UIDL 1', 'RETR 1', 'TOP 1 0', 'DELE 1', 'RETR 1'];
    expect([...lines, 'RSET'].map((l) => said(v, l))).toEqual([
      `+OK 1 ${SIZE}`,
      `+OK 1 messages\r\n1 ${SIZE}\r\n.\r\n`,
      `+OK 1 ${SIZE}`,
      `+OK 1 ${message.value.uid}`,
      `+OK ${SIZE} octets\r\nFrom: a@b\r\nTo: c@d\r\nDate: Mon, 01 Jan 2024 00:00:00 +0000\r\n\r\n..hi\r\n.\r\n`,
      '+OK Top of message follows\r\nFrom: a@b\r\nTo: c@d\r\nDate: Mon, 01 Jan 2024 00:00:00 +0000\r\n\r\n.\r\n',
      '+OK message 1 deleted',
      '-ERR message 1 already deleted',
      `+OK maildrop has 1 message (${SIZE} octets)`,
    ]);
  });

  it('refuse malformed arguments, each saying what it expects', () => {
    const v = view({ inbox: new SpoofInbox(message.value, { outage: new Date(), user: 'alice' }) });
    for (const line of ['RETR', 'RETR x', 'TOP 1', 'DELE 1 2', 'STAT x', 'LIST 0'])
      expect(run(v, line).kind).toBe('bad');
    expect(run(v, 'RETR 1 2')).toEqual({ kind: 'bad', text: 'RETR expects a message number' });
    expect(run(v, 'DELE')).toEqual({ kind: 'bad', text: 'DELE expects a message number' });
    expect(run(v, 'LIST 1 2')).toEqual({
      kind: 'bad',
      text: 'LIST expects an optional message number',
    });
    expect(run(v, 'TOP 1 x')).toEqual({
      kind: 'bad',
      text: 'TOP expects a message number and a line count',
    });
  });

  it('each command is valid only in its states', () => {
    const states = Object.fromEntries([...COMMANDS].map(([n, c]) => [n, c.states.join(',')]));
    expect(states).toEqual({
      CAPA: 'authorization,transaction',
      USER: 'authorization',
      PASS: 'authorization',
      AUTH: 'authorization',
      APOP: 'authorization',
      STLS: 'authorization',
      QUIT: 'authorization,transaction',
      NOOP: 'authorization,transaction',
      STAT: 'transaction',
      LIST: 'transaction',
      UIDL: 'transaction',
      RETR: 'transaction',
      TOP: 'transaction',
      DELE: 'transaction',
      RSET: 'transaction',
    });
    expect(run(view(), 'STAT')).toEqual({ kind: 'bad', text: 'STAT is not valid before login' });
    expect(
      run(
        view({ inbox: new SpoofInbox(message.value, { outage: new Date(), user: 'alice' }) }),
        'USER a',
      ),
    ).toEqual({
      kind: 'bad',
      text: 'USER is not valid after login',
    });
  });
});
