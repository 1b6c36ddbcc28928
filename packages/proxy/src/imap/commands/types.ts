/**
 * The shape of a pre-login command handler (one file per command, as in WildDuck's imap-core):
 * what it may carry, how it appears in the log, and the handler. The session (`../session.ts`)
 * checks state, frames, parses and dispatches; a handler only answers and returns an outcome.
 */

import type { LogFields } from '../../log.js';
import type { Credentials, SaslExchange, SaslStep } from '../../sasl.js';
import type { SessionSecurity } from '../../tls/security.js';
import type { Capabilities } from '../capabilities.js';
import type { ImapArg, ImapCommand } from '../parser.js';

/** What a handler may do to its session. */
export interface PreAuthContext {
  readonly capabilities: Capabilities;
  /** TLS state and what it allows (`tls/security.ts`). */
  readonly security: SessionSecurity;
  /** Send one response line; CRLF is added. */
  send(line: string): void;
  /** Remember what the client said in ID (RFC 2971), for the log and a later replay. */
  rememberClientId(params: ReadonlyMap<string, string | null> | null): void;
}

export type CommandOutcome =
  /** Answered (tagged OK or NO): the command was valid. */
  | { kind: 'done' }
  /** Not valid: the session answers a tagged BAD with this text and counts it. */
  | { kind: 'bad'; message: string }
  /** Answered; the session closes the connection (LOGOUT). */
  | { kind: 'logout' }
  /** Log in with these credentials (LOGIN). */
  | { kind: 'login'; credentials: Credentials }
  /** A SASL exchange began (AUTHENTICATE): the session carries it on from this step. */
  | { kind: 'sasl'; exchange: SaslExchange; step: SaslStep }
  /** STARTTLS accepted: the session answers OK and negotiates TLS (RFC 3501 §6.2.1). */
  | { kind: 'starttls' };

export interface CommandSpec {
  /** Upper-case command name. */
  readonly name: string;
  /** Whether the command may carry literals (else a `{n}` gets BAD instead of `+`). */
  readonly literals: boolean;
  /** The command's arguments as they may appear in the log: never a password. */
  describe(args: readonly ImapArg[]): LogFields;
  handle(ctx: PreAuthContext, command: ImapCommand): CommandOutcome;
}

/** For commands whose arguments are not secret: atoms as text, strings as their length. */
export function describeArgs(args: readonly ImapArg[]): LogFields {
  return { args: args.map(shape).join(' ') };
}

function shape(arg: ImapArg): string {
  switch (arg.kind) {
    case 'atom':
      return arg.bytes.length > 64
        ? `<atom ${arg.bytes.length} bytes>`
        : arg.bytes.toString('latin1');
    case 'string':
      return `<${arg.literal ? 'literal' : 'quoted'} ${arg.bytes.length} bytes>`;
    case 'list':
      return `(${arg.items.map(shape).join(' ')})`;
  }
}

/** A user name for the log (lossy decoding is fine here, the bytes sent on are untouched). */
export function nameForLog(bytes: Buffer): string {
  const s = bytes.toString('utf8');
  return s.length > 128 ? `${s.slice(0, 128)}…` : s;
}
