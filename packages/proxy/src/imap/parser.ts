/**
 * IMAP command parsing before login: a framed command (text segments and literals, see
 * `framer.ts`) to `{ tag, verb, args }`. Strings stay bytes: a password in a quoted string or a
 * literal reaches the store exactly as the client sent it, never decoded lossily.
 *
 * Grammar (RFC 3501 §9 / RFC 9051 §9, the subset usable before login):
 *   command  = tag SP verb *(SP arg) CRLF
 *   tag      = 1*<ASTRING-CHAR except "+">
 *   arg      = atom / quoted / literal / "(" [arg *(SP arg)] ")"
 *   quoted   = DQUOTE *(QUOTED-CHAR / "\" DQUOTE / "\" "\") DQUOTE
 * 8-bit bytes are accepted in quoted strings (RFC 9051 utf8-quoted) and, leniently, in atoms, so
 * that a non-ASCII password typed as an atom still reaches the store unchanged. NUL is refused
 * everywhere (RFC 3501 §4.3), in literals too.
 */

import { type Result, err, ok } from '@mmp/config';
import { MAX_LIST_DEPTH } from '../limits.js';
import type { FramePart } from './framer.js';

const SP = 0x20;
const DQUOTE = 0x22;
const BACKSLASH = 0x5c;
const PAREN_OPEN = 0x28;
const PAREN_CLOSE = 0x29;
const PLUS = 0x2b;
const DEL = 0x7f;

export type ImapArg =
  /** An atom (also NIL and SASL mechanism names); `bytes` as sent. */
  | { kind: 'atom'; bytes: Buffer }
  /** A quoted string (escapes removed) or a literal. */
  | { kind: 'string'; bytes: Buffer; literal: boolean }
  | { kind: 'list'; items: ImapArg[] };

export interface ImapCommand {
  tag: string;
  /** Upper-cased command name (command names are case-insensitive, RFC 3501 §9 note 3). */
  verb: string;
  args: ImapArg[];
}

export interface ParseError {
  /** The tag, when it could be read, so that the answer can be tagged. */
  tag?: string;
  /** Why, for the client's `BAD` and the log. Never contains argument bytes. */
  message: string;
}

/** atom-specials of RFC 3501 §9 minus `]` (ASTRING-CHAR allows it): ( ) { SP CTL % * " \ */
function isAtomByte(b: number): boolean {
  if (b <= SP || b === DEL) return false;
  return !(
    b === PAREN_OPEN ||
    b === PAREN_CLOSE ||
    b === 0x7b /* { */ ||
    b === 0x25 /* % */ ||
    b === 0x2a /* * */ ||
    b === DQUOTE ||
    b === BACKSLASH
  );
}

function isTagByte(b: number): boolean {
  return b < 0x80 && isAtomByte(b) && b !== PLUS;
}

/** The tag at the start of a (possibly partial) command, if it is a valid one. */
export function tagOf(parts: readonly FramePart[]): string | undefined {
  const first = parts[0];
  if (first === undefined || first.kind !== 'text') return undefined;
  const bytes = first.bytes;
  let i = 0;
  while (i < bytes.length && isTagByte(bytes[i] as number)) i++;
  if (i === 0 || (i < bytes.length && bytes[i] !== SP)) return undefined;
  return bytes.toString('latin1', 0, i);
}

/** The upper-cased command name of a (possibly partial) command, if one can be read. */
export function verbOf(parts: readonly FramePart[]): string | undefined {
  const first = parts[0];
  if (first === undefined || first.kind !== 'text' || tagOf(parts) === undefined) return undefined;
  const bytes = first.bytes;
  const sp = bytes.indexOf(SP);
  if (sp < 0) return undefined;
  let i = sp + 1;
  const start = i;
  while (i < bytes.length && isAtomByte(bytes[i] as number) && (bytes[i] as number) < 0x80) i++;
  if (i === start) return undefined;
  return bytes.toString('latin1', start, i).toUpperCase();
}

class Reader {
  private part = 0;
  private pos = 0;

  constructor(private readonly parts: readonly FramePart[]) {}

  private get text(): Buffer | undefined {
    const p = this.parts[this.part];
    return p !== undefined && p.kind === 'text' ? p.bytes : undefined;
  }

  /** The next byte of the current text segment, or undefined at its end. */
  peek(): number | undefined {
    const t = this.text;
    return t !== undefined && this.pos < t.length ? t[this.pos] : undefined;
  }

  advance(): void {
    this.pos++;
  }

  /** At the end of the current text segment, with a literal next. */
  literalNext(): boolean {
    const t = this.text;
    const atEnd = t === undefined ? this.parts[this.part] !== undefined : this.pos >= t.length;
    if (!atEnd) return false;
    const next = t === undefined ? this.parts[this.part] : this.parts[this.part + 1];
    return next !== undefined && next.kind === 'literal';
  }

  takeLiteral(): Buffer {
    if (this.text !== undefined) this.part++;
    const p = this.parts[this.part] as FramePart;
    this.part++;
    this.pos = 0;
    return p.bytes;
  }

  /** Nothing left at all. */
  atEnd(): boolean {
    const t = this.text;
    if (t !== undefined) return this.pos >= t.length && this.part + 1 >= this.parts.length;
    return this.part >= this.parts.length;
  }

  /** Bytes of the current text segment from `from` to the cursor. */
  slice(from: number): Buffer {
    return (this.text as Buffer).subarray(from, this.pos);
  }

  get offset(): number {
    return this.pos;
  }
}

export function parseCommand(parts: readonly FramePart[]): Result<ImapCommand, ParseError> {
  const tag = tagOf(parts);
  if (tag === undefined) return err({ message: 'Missing or invalid tag' });
  const r = new Reader(parts);
  for (let i = 0; i < tag.length; i++) r.advance();
  if (r.peek() !== SP) return err({ tag, message: 'Missing command' });
  r.advance();
  const verbStart = r.offset;
  while (r.peek() !== undefined && isAtomByte(r.peek() as number)) r.advance();
  const verbBytes = r.slice(verbStart);
  if (verbBytes.length === 0 || verbBytes.some((b) => b >= 0x80)) {
    return err({ tag, message: 'Missing or invalid command name' });
  }
  const verb = verbBytes.toString('latin1').toUpperCase();
  const args: ImapArg[] = [];
  while (!r.atEnd()) {
    if (r.peek() !== SP) return err({ tag, message: 'Expected a space between arguments' });
    r.advance();
    const arg = parseArg(r, 0);
    if (!arg.ok) return err({ tag, message: arg.error });
    args.push(arg.value);
  }
  return ok({ tag, verb, args });
}

function parseArg(r: Reader, depth: number): Result<ImapArg, string> {
  if (r.literalNext()) {
    const bytes = r.takeLiteral();
    // RFC 3501 §4.3, §9: a literal is CHAR8 (NUL excluded; only RFC 3516's literal8, never
    // offered before login, may carry it). The whole command has been read, so a BAD keeps the
    // stream in step.
    if (bytes.includes(0x00)) return err('NUL is not allowed in a literal');
    return ok({ kind: 'string', bytes, literal: true });
  }
  const b = r.peek();
  if (b === undefined) return err('Missing argument');
  if (b === DQUOTE) return parseQuoted(r);
  if (b === PAREN_OPEN) return parseList(r, depth + 1);
  const start = r.offset;
  while (r.peek() !== undefined && isAtomByte(r.peek() as number)) r.advance();
  if (r.offset === start) return err('Invalid characters in argument');
  const next = r.peek();
  if (next !== undefined && next !== SP && next !== PAREN_CLOSE) {
    return err('Invalid characters in atom');
  }
  return ok({ kind: 'atom', bytes: Buffer.from(r.slice(start)) });
}

function parseQuoted(r: Reader): Result<ImapArg, string> {
  r.advance();
  const out: number[] = [];
  for (;;) {
    const b = r.peek();
    if (b === undefined) return err('Unterminated quoted string');
    r.advance();
    if (b === DQUOTE) break;
    if (b === BACKSLASH) {
      const e = r.peek();
      // RFC 3501 §9: only `\"` and `\\` are escapes; anything else is a syntax error.
      if (e !== DQUOTE && e !== BACKSLASH) return err('Invalid escape in quoted string');
      r.advance();
      out.push(e);
      continue;
    }
    // QUOTED-CHAR excludes CR, LF and NUL (TEXT-CHAR, RFC 3501 §9; RFC 9051 §9).
    if (b === 0x00 || b === 0x0a || b === 0x0d) return err('Invalid character in quoted string');
    out.push(b);
  }
  const next = r.peek();
  if (next !== undefined && next !== SP && next !== PAREN_CLOSE) {
    return err('Expected a space after a quoted string');
  }
  return ok({ kind: 'string', bytes: Buffer.from(out), literal: false });
}

function parseList(r: Reader, depth: number): Result<ImapArg, string> {
  if (depth > MAX_LIST_DEPTH) return err('Lists nested too deeply');
  r.advance();
  const items: ImapArg[] = [];
  if (r.peek() === PAREN_CLOSE) {
    r.advance();
    return ok({ kind: 'list', items });
  }
  for (;;) {
    const item = parseArg(r, depth);
    if (!item.ok) return item;
    items.push(item.value);
    const b = r.peek();
    if (b === PAREN_CLOSE) {
      r.advance();
      return ok({ kind: 'list', items });
    }
    if (b !== SP) return err('Unterminated list');
    r.advance();
  }
}

/** An atom's text, upper-cased (for keywords such as NIL and mechanism names). */
export function atomUpper(arg: ImapArg | undefined): string | undefined {
  return arg?.kind === 'atom' ? arg.bytes.toString('latin1').toUpperCase() : undefined;
}

/** An astring (RFC 3501 §9: atom or string) as bytes, or undefined for lists. */
export function astringBytes(arg: ImapArg | undefined): Buffer | undefined {
  return arg === undefined || arg.kind === 'list' ? undefined : arg.bytes;
}
