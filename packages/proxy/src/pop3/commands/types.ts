/**
 * The shape of a POP3 command handler (one file per command, as in WildDuck's imap-core): the
 * states it is valid in, how its argument may appear in the log, and the handler. The session
 * (`../session.ts`) frames, parses, checks the state and dispatches; a handler answers and returns
 * an outcome.
 */

import type { LogFields } from '../../log.js';
import type { Credentials, SaslExchange, SaslStep } from '../../sasl.js';
import type { SessionSecurity } from '../../tls/security.js';
import type { InboxAnswer, SpoofInbox } from '../spoof.js';
import { messageNumber, words } from '../parser.js';

/** The states in which commands are read (RFC 1939 §3): before login, and the spoof inbox's
 * TRANSACTION state. (Once a store accepted the login, the store reads the commands.) */
export type CommandState = 'authorization' | 'transaction';

/** How the credentials were given; the replay uses the same way when it can (replay.ts). */
export type LoginMethod = 'user-pass' | 'sasl-plain';

/** What a handler may see and do in its session. */
export interface Pop3Context {
  /** Send one response line; CRLF is added. */
  send(line: string): void;
  /** Send a multi-line response: its first line, then `body` (dot-stuffed, ending in `.` CRLF). */
  sendMultiline(first: string, body: Buffer): void;
  /** The name given by USER, waiting for PASS (RFC 1939 §7). */
  pendingUser: Buffer | undefined;
  /** The spoof inbox (TRANSACTION state only). */
  readonly inbox: SpoofInbox | undefined;
  /** TLS state and what it allows (`tls/security.ts`); undefined: plain, nothing restricted. */
  readonly security?: SessionSecurity;
}

export type CommandOutcome =
  /** Answered (`+OK`, or `-ERR` for a valid command that failed, e.g. no such message). */
  | { kind: 'done' }
  /** Not valid (syntax, wrong state): the session answers `-ERR message` and counts it. */
  | { kind: 'error'; message: string }
  /** Answered; the session closes the connection (QUIT). */
  | { kind: 'quit' }
  /** Log in with these credentials (PASS). */
  | { kind: 'login'; credentials: Credentials; method: LoginMethod }
  /** A SASL exchange began (AUTH): the session carries it on from this step. */
  | { kind: 'sasl'; exchange: SaslExchange; step: SaslStep }
  /** STLS accepted: the session answers +OK and negotiates TLS (RFC 2595 §4). */
  | { kind: 'stls' };

export interface CommandSpec {
  /** Upper-case keyword. */
  readonly name: string;
  readonly states: readonly CommandState[];
  /** The argument as it may appear in the log: never a password. */
  describe(arg: Buffer | undefined): LogFields;
  handle(ctx: Pop3Context, arg: Buffer | undefined): CommandOutcome;
}

/** For commands whose arguments are not secret (message numbers, mechanism names). */
export function describePlain(arg: Buffer | undefined): LogFields {
  if (arg === undefined) return {};
  return { arg: arg.length > 64 ? `<${arg.length} bytes>` : arg.toString('latin1') };
}

/** A user name for the log (lossy decoding is fine here, the bytes sent on are untouched). */
export function nameForLog(bytes: Buffer): string {
  const s = bytes.toString('utf8');
  return s.length > 128 ? `${s.slice(0, 128)}…` : s;
}

/** Send a spoof inbox answer: `+OK line` (and its body) or `-ERR line`. */
export function answer(ctx: Pop3Context, a: InboxAnswer): CommandOutcome {
  if (a.kind === 'err') ctx.send(`-ERR ${a.line}`);
  else if (a.body !== undefined) ctx.sendMultiline(`+OK ${a.line}`, a.body);
  else ctx.send(`+OK ${a.line}`);
  return { kind: 'done' };
}

/** The spoof inbox, or the refusal when a handler runs without one (cannot happen by state). */
export function inboxOf(ctx: Pop3Context): SpoofInbox | CommandOutcome {
  return ctx.inbox ?? { kind: 'error', message: 'No mailbox' };
}

/**
 * A spoof-inbox command taking one message number (RETR, DELE): the inbox's answer for it, or
 * `NAME expects a message number`.
 */
export function messageCommand(
  name: string,
  run: (inbox: SpoofInbox, n: number) => InboxAnswer,
): CommandSpec {
  return inboxCommand(name, 'a message number', (inbox, w) => {
    const n = messageNumber(w[0]);
    return w.length !== 1 || n === undefined ? undefined : run(inbox, n);
  });
}

/** A spoof-inbox command whose message number is optional (LIST, UIDL: all when absent). */
export function listingCommand(
  name: string,
  run: (inbox: SpoofInbox, n: number | undefined) => InboxAnswer,
): CommandSpec {
  return inboxCommand(name, 'an optional message number', (inbox, w) => {
    if (w.length === 0) return run(inbox, undefined);
    const n = messageNumber(w[0]);
    return w.length > 1 || n === undefined ? undefined : run(inbox, n);
  });
}

/** `parse` answers from the argument's words, or undefined when they are not what `expects` says. */
function inboxCommand(
  name: string,
  expects: string,
  parse: (inbox: SpoofInbox, words: string[]) => InboxAnswer | undefined,
): CommandSpec {
  return {
    name,
    states: ['transaction'],
    describe: describePlain,
    handle(ctx, arg) {
      const inbox = inboxOf(ctx);
      if ('kind' in inbox) return inbox;
      const a = parse(inbox, words(arg));
      if (a === undefined) return { kind: 'error', message: `${name} expects ${expects}` };
      return answer(ctx, a);
    },
  };
}
