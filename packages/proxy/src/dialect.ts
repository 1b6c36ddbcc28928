/**
 * What a protocol gives the pre-login session (`session.ts`), nginx's split between one generic
 * mail session and small per-protocol parts: the session owns the state, queueing, timeouts,
 * shutdown, the STARTTLS hand-over, the login and what its outcome does; a dialect (IMAP
 * `imap/dialect.ts`, POP3 `pop3/dialect.ts`) brings its greeting, its framing, its command table
 * and their dispatch, its words for each outcome, and (POP3) the spoof inbox.
 *
 * Command handlers return an Outcome; they never write. Only the session says a status line,
 * in the dialect's Words.
 */

import type { Protocol } from '@mmp/config';
import type { Log } from './log.js';
import type { Principal } from './login.js';
import type { Farewell } from './pipe.js';
import type { SpoofInbox } from './pop3/spoof.js';
import type { ProxyRuntime } from './proxyRuntime.js';
import type { SaslExchange, SaslStep } from './sasl.js';
import type { ProxySettings } from './settings.js';
import type { Replay } from './store.js';
import type { SessionSecurity } from './tls/security.js';

/** A multi-line answer's bytes: one buffer, or parts written in order (shared, never copied). */
export type Body = Buffer | readonly Buffer[];

/** What a command concluded. */
export type Outcome =
  /**
   * Done. IMAP: `data` (untagged lines, as they are), then `tag OK text`; POP3: `+OK text`, then
   * `body` (a multi-line answer, dot-stuffed and ending in `.` CRLF). `pendingUser`: POP3 USER's
   * name, waiting for PASS (RFC 1939 §7). `clientId`: what IMAP ID said, for the login record.
   */
  | {
      kind: 'ok';
      text?: string;
      data?: readonly string[];
      body?: Body;
      pendingUser?: Buffer;
      clientId?: string;
    }
  /** A valid command that failed (IMAP `NO`, POP3 `-ERR`). */
  | { kind: 'no'; refusal: Refusal }
  /** Not valid here (syntax, arguments, state): IMAP `BAD`, POP3 `-ERR`; counted. */
  | { kind: 'bad'; text: string }
  /** LOGOUT, QUIT: the goodbye, then close. */
  | { kind: 'logout' }
  /** LOGIN, PASS: log in with a password. */
  | { kind: 'login'; principal: Principal }
  /** AUTHENTICATE, AUTH: a SASL exchange began; the session carries it on from this step. */
  | { kind: 'sasl'; exchange: SaslExchange; step: SaslStep }
  /** STARTTLS, STLS: the session answers and negotiates TLS (RFC 3501 §6.2.1, RFC 2595 §4). */
  | { kind: 'starttls' };

/** Why a valid command failed; each dialect says it with its response codes. */
export type Refusal =
  /** As given (the spoof inbox's "no such message", a failed SASL exchange). */
  | { kind: 'text'; text: string }
  /** RestrictPlainPasswords before TLS (RFC 5530 PRIVACYREQUIRED, RFC 8314 §3). */
  | { kind: 'plaintext' }
  /** EXTERNAL cannot be used on this connection, and why (`certlogin.ts`). */
  | { kind: 'external'; reason: string }
  /** A SASL mechanism that is not offered. */
  | { kind: 'mechanism' }
  /** STARTTLS accepted but no TLS configuration to start (cannot happen once the runtime is up). */
  | { kind: 'tls-unavailable' }
  /** A wrong password or an unknown user: one answer, so that names cannot be probed. */
  | { kind: 'auth-failed' }
  | { kind: 'directory-down' }
  /** No store reachable: ServerDownAlert. */
  | { kind: 'stores-down'; alert: string };

/** Why the session closes on its own. */
export type Goodbye =
  | 'bad-commands'
  /** MAX_COMMANDS_BEFORE_LOGIN: said instead of answering one more. */
  | 'too-many-commands'
  | 'failed-logins'
  | 'idle'
  /** LoginTimeout passed without a login. */
  | 'login-timeout'
  /** Connection limits (`clientLimits.ts`): said instead of the greeting. */
  | 'server-full'
  | 'address-full'
  | 'shutdown'
  | 'internal-error'
  /** A framing limit that leaves the stream out of step: its text. */
  | { fatal: string };

/** A dialect's words for each outcome. */
export interface Words {
  /** IMAP `tag OK text` (text defaults to `VERB completed`); POP3 `+OK text`. */
  ok(tag: string | undefined, verb: string, text: string | undefined): string;
  /** IMAP `tag NO …`; POP3 `-ERR …`. */
  no(tag: string | undefined, refusal: Refusal): string;
  /** IMAP `tag BAD text` (`*` without a tag); POP3 `-ERR text`. */
  bad(tag: string | undefined, text: string): string;
  /** Everything said to LOGOUT / QUIT before closing. */
  logout(tag: string | undefined): readonly string[];
  /** The go-ahead for the TLS handshake. */
  startTls(tag: string | undefined): string;
  /** The last line when the session closes on its own: IMAP `* BYE …`, POP3 `-ERR …`. */
  goodbye(reason: Goodbye): string;
  /** The store's answer to the replayed login, as the client gets it (IMAP: under its tag). */
  storeAnswer(tag: string | undefined, answer: Buffer): Buffer;
}

/** What a dialect sees of its session when it dispatches a command. */
export interface SessionView {
  readonly settings: ProxySettings;
  readonly security: SessionSecurity;
  /** POP3: USER's name, waiting for PASS. */
  readonly pendingUser: Buffer | undefined;
  /** POP3: the spoof inbox, in its TRANSACTION state. */
  readonly inbox: SpoofInbox | undefined;
  readonly log: Log;
}

/** A dispatched command: its tag (IMAP), its name and outcome. */
export interface Reply {
  tag: string | undefined;
  verb: string;
  outcome: Outcome;
}

/** What a dialect's reader made of the client's bytes. */
export type Input<Command> =
  | { kind: 'command'; command: Command }
  /** A line answering a SASL challenge. */
  | { kind: 'sasl-response'; line: Buffer }
  /** A synchronising literal the command may carry: say this, the reader then reads it. */
  | { kind: 'continue'; line: string }
  /** A valid command refused before its literal is read (IMAP `NO` instead of `+`). */
  | { kind: 'refuse'; tag: string | undefined; refusal: Refusal }
  /** Not a command that can be dispatched: answered as invalid (counted). */
  | { kind: 'invalid'; tag: string | undefined; text: string }
  /** A limit that leaves the stream out of step: the answer (if any), the goodbye, close. */
  | { kind: 'fatal'; answer: { tag: string | undefined; text: string } | undefined; text: string };

/** The dialect's framing of the client's bytes: one input at a time, resumable across reads. */
export interface Reader<Command> {
  /** Read from `buf` at `offset` until one input is complete or the bytes end. */
  feed(buf: Buffer, offset: number): { consumed: number; input?: Input<Command> };
  /** The next line answers a SASL challenge. */
  expectSaslResponse(): void;
  /** Commands again (the exchange ended). */
  expectCommands(): void;
  /** Forget anything partly read (STARTTLS, piping). */
  reset(): void;
}

export interface Dialect<Command> {
  readonly protocol: Protocol;
  readonly words: Words;
  greeting(view: SessionView): string;
  /** `view`: the session as it is now (its security changes with STARTTLS). */
  reader(view: () => SessionView): Reader<Command>;
  /** Check the command's state and arguments, log it, and run its handler. */
  dispatch(command: Command, view: SessionView): Reply;
  /** The login replay to the store. */
  replay(runtime: ProxyRuntime): Replay;
  /** Said to the client when the store closes the pipe first; undefined: nothing. */
  readonly farewell: Farewell | undefined;
  /** POP3 (SpoofMessageFile): the inbox served when no store is reachable, and its `+OK`. */
  readonly spoof?: {
    /** The inbox of `user` (the name as typed) whose stores were just found down. */
    inbox(runtime: ProxyRuntime, user: string): SpoofInbox | undefined;
    loggedIn: string;
  };
}

/** An argument as a command declares it: its kind (the dialect's), what it is, for the refusal
 * (`LOGIN expects a user name and a password`), and whether it may be left out. */
export interface ArgSpec<Kind extends string = string> {
  readonly kind: Kind;
  readonly text: string;
  readonly optional?: boolean;
}

/** The values of checked arguments, by their declaration; `Values` maps each kind to its value. */
export type ArgsOf<Values, A extends readonly ArgSpec[]> = {
  -readonly [I in keyof A]: A[I] extends { kind: infer K extends keyof Values }
    ? A[I] extends { optional: true }
      ? Values[K] | undefined
      : Values[K]
    : never;
};

/**
 * Check arguments against a declaration: their number, then each one's kind (`valueOf` makes the
 * value, undefined when the argument is not of that kind). The values, or the refusal's text.
 */
export function checkArgs<Arg>(
  name: string,
  specs: readonly ArgSpec[],
  args: readonly Arg[],
  valueOf: (kind: string, arg: Arg) => unknown,
  takesNone: string,
): { ok: true; values: unknown[] } | { ok: false; text: string } {
  const refused = {
    ok: false as const,
    text:
      specs.length === 0
        ? `${name} ${takesNone}`
        : `${name} expects ${specs.map((a) => a.text).join(' and ')}`,
  };
  const required = specs.filter((a) => a.optional !== true).length;
  if (args.length < required || args.length > specs.length) return refused;
  const values: unknown[] = [];
  for (const [i, spec] of specs.entries()) {
    const arg = args[i];
    const value = arg === undefined ? undefined : valueOf(spec.kind, arg);
    if (arg !== undefined && value === undefined) return refused;
    values.push(value);
  }
  return { ok: true, values };
}

/** What a dispatcher runs of a command, with the values it checked against the declaration. */
export interface Declared<Ctx> {
  /** Sends a password in the clear (refused before TLS with RestrictPlainPasswords). */
  plaintext(values: readonly unknown[]): boolean;
  /** The handler. */
  run(ctx: Ctx, values: readonly unknown[]): Outcome;
}

/**
 * A command's handler and plaintext test, given values a dispatcher checked against `A` (so
 * they are what ArgsOf says: the one place that trusts it).
 */
export function declared<Values, Ctx, A extends readonly ArgSpec[]>(
  handle: (ctx: Ctx, values: ArgsOf<Values, A>) => Outcome,
  plaintext: ((values: ArgsOf<Values, A>) => boolean) | undefined,
): Declared<Ctx> {
  const typed = (values: readonly unknown[]): ArgsOf<Values, A> => values as ArgsOf<Values, A>;
  return {
    run: (ctx, values) => handle(ctx, typed(values)),
    plaintext: (values) => plaintext?.(typed(values)) ?? false,
  };
}

/** A user name for the log (lossy decoding is fine here, the bytes sent on are untouched). */
export function nameForLog(bytes: Buffer): string {
  const s = bytes.toString('utf8');
  return s.length > 128 ? `${s.slice(0, 128)}…` : s;
}
