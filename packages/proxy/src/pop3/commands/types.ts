/**
 * The shape of a POP3 command (one file per command, as in WildDuck's imap-core): the states it is
 * valid in, the arguments it takes, how its argument may appear in the log, and its handler. The
 * dispatcher (`../dialect.ts`) checks the state and the arguments against the declaration before
 * any handler runs, and says every status line; a handler only decides the outcome.
 */

import type { ArgSpec, ArgsOf, Declared, Outcome } from '../../dialect.js';
import { checkArgs, declared } from '../../dialect.js';
import type { LogFields } from '../../log.js';
import type { BearerMechanism } from '../../sasl.js';
import type { SessionSecurity } from '../../tls/security.js';
import { messageNumber, words } from '../parser.js';
import type { InboxAnswer, SpoofInbox } from '../spoof.js';

/** The states in which commands are read (RFC 1939 §3): before login, and the spoof inbox's
 * TRANSACTION state. (Once a store accepted the login, the store reads the commands.) */
export type CommandState = 'authorization' | 'transaction';

/** What a handler sees of its session. */
export interface CommandContext {
  /** TLS state and what it allows (`tls/security.ts`). */
  readonly security: SessionSecurity;
  /** The name given by USER, waiting for PASS (RFC 1939 §7). */
  readonly pendingUser: Buffer | undefined;
  /** The spoof inbox (TRANSACTION state only). */
  readonly inbox: SpoofInbox | undefined;
  /** OAuth2Mechanisms: the bearer-token mechanisms offered (AUTH, CAPA's SASL line). */
  readonly bearerMechanisms: readonly BearerMechanism[];
}

/** The argument kinds, and the value a handler gets for each. */
interface ArgValues {
  /** One word (RFC 1939 §3: arguments are separated by one space). */
  word: string;
  /** A message number (RFC 1939 §5: decimal, 1-based). */
  number: number;
  /** A count of lines (TOP). */
  count: number;
  /** The whole argument, bytes as sent, spaces included (USER, PASS: RFC 1939 §7); alone. */
  rest: Buffer;
}

type Arg = ArgSpec<keyof ArgValues>;

export interface CommandSpec extends Declared<CommandContext> {
  /** Upper-case keyword. */
  readonly name: string;
  readonly states: readonly CommandState[];
  /** The arguments; `any`: whatever follows is ignored (QUIT, APOP). */
  readonly args: readonly Arg[] | 'any';
  /** The argument as it may appear in the log: never a password. */
  describe(arg: Buffer | undefined): LogFields;
}

/** Declare a command; its handler gets the argument values typed by the declaration. */
export function command<const A extends readonly Arg[]>(d: {
  name: string;
  states: readonly CommandState[];
  args: A | 'any';
  describe?: (arg: Buffer | undefined) => LogFields;
  plaintext?: (values: ArgsOf<ArgValues, A>) => boolean;
  handle: (ctx: CommandContext, values: ArgsOf<ArgValues, A>) => Outcome;
}): CommandSpec {
  return {
    name: d.name,
    states: d.states,
    args: d.args,
    describe: d.describe ?? describePlain,
    ...declared<ArgValues, CommandContext, A>(d.handle, d.plaintext),
  };
}

/** The argument values a command's declaration asks for, or the refusal's text. */
export function check(
  spec: CommandSpec,
  arg: Buffer | undefined,
): { ok: true; values: unknown[] } | { ok: false; text: string } {
  if (spec.args === 'any') return { ok: true, values: [] };
  if (spec.args[0]?.kind === 'rest') {
    // The whole argument, which must not be empty.
    const rest = arg === undefined || arg.length === 0 ? [] : [arg];
    return checkArgs(spec.name, spec.args, rest, (_kind, a) => a, 'takes no argument');
  }
  return checkArgs(spec.name, spec.args, words(arg), valueOf, 'takes no argument');
}

function valueOf(kind: string, word: string): unknown {
  switch (kind as keyof ArgValues) {
    case 'word':
      return word;
    case 'number':
      return messageNumber(word);
    case 'count':
      return /^[0-9]{1,9}$/.test(word) ? Number(word) : undefined;
    case 'rest':
      return undefined; // only as the sole argument (check)
  }
}

/** For commands whose arguments are not secret (message numbers, mechanism names). */
function describePlain(arg: Buffer | undefined): LogFields {
  if (arg === undefined) return {};
  return { arg: arg.length > 64 ? `<${arg.length} bytes>` : arg.toString('latin1') };
}

/** A spoof inbox answer as an outcome: `+OK line` (and its body) or `-ERR line`. */
export function answer(a: InboxAnswer): Outcome {
  if (a.kind === 'err') return { kind: 'no', refusal: { kind: 'text', text: a.line } };
  return { kind: 'ok', text: a.line, ...(a.body === undefined ? {} : { body: a.body }) };
}

/** A command of the spoof inbox (TRANSACTION state only, so its inbox is there). */
export function inboxCommand<const A extends readonly Arg[]>(
  name: string,
  args: A,
  run: (inbox: SpoofInbox, values: ArgsOf<ArgValues, A>) => InboxAnswer,
): CommandSpec {
  return command({
    name,
    states: ['transaction'],
    args,
    handle(ctx, values) {
      if (ctx.inbox === undefined) return { kind: 'bad', text: 'No mailbox' };
      return answer(run(ctx.inbox, values));
    },
  });
}
