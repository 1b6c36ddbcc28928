import { describe, expect, it } from 'vitest';
import { parseSpoofMessage } from '../spoof.js';
import { SpoofInbox } from '../spoof.js';
import { COMMANDS } from './index.js';
import type { CommandOutcome, Pop3Context } from './types.js';

/** A context that records what a handler sends. */
function context(inbox?: SpoofInbox): Pop3Context & { sent: string[] } {
  const sent: string[] = [];
  return {
    sent,
    pendingUser: undefined,
    inbox,
    send: (line) => sent.push(line),
    sendMultiline: (first, body) => sent.push(`${first}\r\n${body.toString('latin1')}`),
  };
}

function run(ctx: Pop3Context, verb: string, arg?: string | Buffer): CommandOutcome {
  const spec = COMMANDS.get(verb);
  if (spec === undefined) throw new Error(`no ${verb}`);
  return spec.handle(ctx, typeof arg === 'string' ? Buffer.from(arg, 'latin1') : arg);
}

const message = parseSpoofMessage(
  Buffer.from('From: a@b\nDate: Mon, 01 Jan 2024 00:00:00 +0000\n\n.hi\n.\n'),
);
if (!message.ok) throw new Error(message.error);
const SIZE = message.value.bytes.length;

describe('CAPA (RFC 2449 §5)', () => {
  it('lists what is honoured before login, and the spoof inbox capabilities after', () => {
    const ctx = context();
    expect(run(ctx, 'CAPA')).toEqual({ kind: 'done' });
    expect(ctx.sent).toEqual([
      '+OK Capability list follows\r\nUSER\r\nSASL PLAIN\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n.\r\n',
    ]);
    const spoof = context(new SpoofInbox(message.value));
    run(spoof, 'CAPA');
    expect(spoof.sent[0]).toBe(
      '+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\n.\r\n',
    );
    expect(run(ctx, 'CAPA', 'x')).toEqual({ kind: 'error', message: 'CAPA takes no argument' });
  });
});

describe('USER and PASS (RFC 1939 §7)', () => {
  it('USER answers the same for any name and remembers it', () => {
    const ctx = context();
    expect(run(ctx, 'USER', 'nobody-at-all')).toEqual({ kind: 'done' });
    expect(ctx.sent).toEqual(['+OK password required for user nobody-at-all']);
    expect(ctx.pendingUser).toEqual(Buffer.from('nobody-at-all'));
  });

  it('USER refuses an empty name and control characters', () => {
    const ctx = context();
    expect(run(ctx, 'USER')).toMatchObject({ kind: 'error' });
    expect(run(ctx, 'USER', '')).toMatchObject({ kind: 'error' });
    expect(run(ctx, 'USER', 'a\rb')).toEqual({
      kind: 'error',
      message: 'User name contains control characters',
    });
    expect(ctx.pendingUser).toBeUndefined();
  });

  it('PASS takes every byte after "PASS " and asks for a login', () => {
    const ctx = context();
    ctx.pendingUser = Buffer.from('alice');
    const password = Buffer.from(' two  spaces "q" \\ \xe9 ', 'latin1');
    expect(run(ctx, 'PASS', password)).toEqual({
      kind: 'login',
      credentials: { user: Buffer.from('alice'), password },
      method: 'user-pass',
    });
    expect(ctx.pendingUser).toBeUndefined();
    expect(ctx.sent).toEqual([]);
  });

  it('PASS needs USER first, a password, and no NUL or CR', () => {
    const ctx = context();
    expect(run(ctx, 'PASS', 'x')).toEqual({ kind: 'error', message: 'USER first' });
    ctx.pendingUser = Buffer.from('a');
    expect(run(ctx, 'PASS')).toEqual({ kind: 'error', message: 'PASS expects a password' });
    for (const bad of ['a\0b', 'a\rb']) {
      ctx.pendingUser = Buffer.from('a');
      expect(run(ctx, 'PASS', bad)).toMatchObject({ kind: 'error' });
    }
  });

  it('PASS is redacted in the log description', () => {
    expect(COMMANDS.get('PASS')?.describe(Buffer.from('secret'))).toEqual({
      password: '<redacted>',
    });
  });
});

describe('AUTH (RFC 5034)', () => {
  const b64 = (s: string): string => Buffer.from(s).toString('base64');

  it('PLAIN with an initial response completes at once', () => {
    const out = run(context(), 'AUTH', `PLAIN ${b64('\0alice\0pw')}`);
    expect(out.kind).toBe('sasl');
    if (out.kind === 'sasl') {
      expect(out.step).toEqual({
        kind: 'done',
        credentials: { user: Buffer.from('alice'), password: Buffer.from('pw') },
      });
    }
  });

  it('PLAIN without one starts with the empty challenge; "=" is an empty response', () => {
    const out = run(context(), 'AUTH', 'plain');
    expect(out).toMatchObject({ kind: 'sasl', step: { kind: 'challenge' } });
    expect(run(context(), 'AUTH', 'PLAIN =')).toMatchObject({
      kind: 'sasl',
      step: { kind: 'failed' },
    });
  });

  it('lists mechanisms without argument, refuses others and bad base64', () => {
    const ctx = context();
    expect(run(ctx, 'AUTH')).toEqual({ kind: 'done' });
    expect(ctx.sent).toEqual(['+OK\r\nPLAIN\r\n.\r\n']);
    expect(run(ctx, 'AUTH', 'CRAM-MD5')).toEqual({
      kind: 'error',
      message: 'Unsupported authentication mechanism',
    });
    expect(run(ctx, 'AUTH', 'PLAIN !!!')).toEqual({
      kind: 'error',
      message: 'Invalid initial response',
    });
    expect(COMMANDS.get('AUTH')?.describe(Buffer.from('PLAIN c2VjcmV0'))).toEqual({
      mechanism: 'PLAIN',
      initialResponse: '<redacted>',
    });
  });
});

describe('APOP, QUIT, NOOP', () => {
  it('APOP is refused with the reason', () => {
    expect(run(context(), 'APOP', 'alice 0123')).toMatchObject({
      kind: 'error',
      message: expect.stringContaining('needs the password'),
    });
  });

  it('QUIT says goodbye and ends; NOOP answers +OK', () => {
    const ctx = context();
    expect(run(ctx, 'QUIT')).toEqual({ kind: 'quit' });
    expect(run(ctx, 'NOOP')).toEqual({ kind: 'done' });
    expect(ctx.sent).toEqual(['+OK Logging out', '+OK']);
  });
});

describe('spoof inbox commands (RFC 1939 §5, §7)', () => {
  it('STAT, LIST, UIDL, RETR, TOP, DELE, RSET', () => {
    const ctx = context(new SpoofInbox(message.value));
    run(ctx, 'STAT');
    run(ctx, 'LIST');
    run(ctx, 'LIST', '1');
    run(ctx, 'UIDL', '1');
    run(ctx, 'RETR', '1');
    run(ctx, 'TOP', '1 0');
    run(ctx, 'DELE', '1');
    run(ctx, 'RETR', '1');
    run(ctx, 'RSET');
    expect(ctx.sent).toEqual([
      `+OK 1 ${SIZE}`,
      `+OK 1 messages\r\n1 ${SIZE}\r\n.\r\n`,
      `+OK 1 ${SIZE}`,
      `+OK 1 ${message.value.uid}`,
      `+OK ${SIZE} octets\r\nFrom: a@b\r\nDate: Mon, 01 Jan 2024 00:00:00 +0000\r\n\r\n..hi\r\n.\r\n`,
      '+OK Top of message follows\r\nFrom: a@b\r\nDate: Mon, 01 Jan 2024 00:00:00 +0000\r\n\r\n.\r\n',
      '+OK message 1 deleted',
      '-ERR message 1 already deleted',
      `+OK maildrop has 1 message (${SIZE} octets)`,
    ]);
  });

  it('refuse malformed arguments', () => {
    const ctx = context(new SpoofInbox(message.value));
    expect(run(ctx, 'RETR')).toMatchObject({ kind: 'error' });
    expect(run(ctx, 'RETR', 'x')).toMatchObject({ kind: 'error' });
    expect(run(ctx, 'TOP', '1')).toMatchObject({ kind: 'error' });
    expect(run(ctx, 'DELE', '1 2')).toMatchObject({ kind: 'error' });
    expect(run(ctx, 'STAT', 'x')).toMatchObject({ kind: 'error' });
    expect(run(ctx, 'LIST', '0')).toMatchObject({ kind: 'error' });
    // Each says what it expects.
    expect(run(ctx, 'RETR', '1 2')).toEqual({
      kind: 'error',
      message: 'RETR expects a message number',
    });
    expect(run(ctx, 'DELE')).toEqual({ kind: 'error', message: 'DELE expects a message number' });
    expect(run(ctx, 'LIST', '1 2')).toEqual({
      kind: 'error',
      message: 'LIST expects an optional message number',
    });
    expect(run(ctx, 'UIDL', 'x')).toEqual({
      kind: 'error',
      message: 'UIDL expects an optional message number',
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
  });
});
