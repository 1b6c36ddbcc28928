/**
 * The shape of a pre-login IMAP command (one file per command, as in WildDuck's imap-core): its
 * name, the arguments it takes, whether it may carry literals, how it appears in the log, and its
 * handler. The dispatcher (`../dialect.ts`) checks the arguments against the declaration before
 * any handler runs, and says every status line; a handler only decides the outcome.
 */

import type { ArgSpec, ArgsOf, Declared, Outcome } from '../../dialect.js';
import { checkArgs, declared } from '../../dialect.js';
import type { LogFields } from '../../log.js';
import type { SessionSecurity } from '../../tls/security.js';
import type { Capabilities } from '../capabilities.js';
import { type ImapArg, astringBytes, atomUpper } from '../parser.js';

/** What a handler sees of its session. */
export interface CommandContext {
  readonly capabilities: Capabilities;
  /** TLS state and what it allows (`tls/security.ts`). */
  readonly security: SessionSecurity;
}

/** The argument kinds, and the value a handler gets for each. */
interface ArgValues {
  /** An atom, upper-cased (a mechanism name). */
  atom: string;
  /** An atom, quoted string or literal, as bytes (RFC 3501 §9 astring). */
  astring: Buffer;
  /** NIL or a parenthesised list (RFC 2971 ID). */
  'nil-or-list': ImapArg;
}

type Arg = ArgSpec<keyof ArgValues>;

export interface CommandSpec extends Declared<CommandContext> {
  /** Upper-case command name. */
  readonly name: string;
  readonly args: readonly Arg[];
  /** Whether the command may carry literals (else a `{n}` gets BAD instead of `+`). */
  readonly literals: boolean;
  /** The command's arguments as they may appear in the log: never a password. */
  describe(args: readonly ImapArg[]): LogFields;
}

/** Declare a command; its handler gets the argument values typed by the declaration. */
export function command<const A extends readonly Arg[]>(d: {
  name: string;
  args: A;
  literals?: boolean;
  describe?: (args: readonly ImapArg[]) => LogFields;
  plaintext?: (values: ArgsOf<ArgValues, A>) => boolean;
  handle: (ctx: CommandContext, values: ArgsOf<ArgValues, A>) => Outcome;
}): CommandSpec {
  return {
    name: d.name,
    args: d.args,
    literals: d.literals ?? false,
    describe: d.describe ?? describeArgs,
    ...declared<ArgValues, CommandContext, A>(d.handle, d.plaintext),
  };
}

/** The argument values a command's declaration asks for, or the refusal's text. */
export function check(
  spec: CommandSpec,
  args: readonly ImapArg[],
): { ok: true; values: unknown[] } | { ok: false; text: string } {
  return checkArgs(spec.name, spec.args, args, valueOf, 'takes no arguments');
}

function valueOf(kind: string, arg: ImapArg): unknown {
  switch (kind as keyof ArgValues) {
    case 'atom':
      return atomUpper(arg);
    case 'astring':
      return astringBytes(arg);
    case 'nil-or-list':
      return arg.kind === 'list' || atomUpper(arg) === 'NIL' ? arg : undefined;
  }
}

/** For commands whose arguments are not secret: atoms as text, strings as their length. */
function describeArgs(args: readonly ImapArg[]): LogFields {
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
