/**
 * A POP3 command line to `{verb, arg}` (RFC 1939 §3, RFC 2449 §3): a keyword, then optionally one
 * space and the argument text. The argument stays bytes and is not split here: PASS takes
 * everything after `PASS ` (RFC 1939 §7: a password may contain spaces), other commands split it
 * themselves.
 */

import { type Result, err, ok } from '@mmp/config';

export interface Pop3Command {
  /** The keyword in upper case (keywords are case-insensitive, RFC 1939 §3). */
  verb: string;
  /** The bytes after the first space; undefined when the line is the keyword alone. */
  arg: Buffer | undefined;
}

const SP = 0x20;
/** RFC 1939 keywords are 3–4 letters, RFC 2449 extension keywords a few more (`X-…` style). */
const KEYWORD = /^[A-Za-z][A-Za-z0-9-]{0,31}$/;

export function parseCommand(line: Buffer): Result<Pop3Command, string> {
  if (line.length === 0) return err('Empty command');
  const sp = line.indexOf(SP);
  const keyword = (sp < 0 ? line : line.subarray(0, sp)).toString('latin1');
  // Never echoed unless it is a clean keyword: garbage must not be reflected to the client.
  if (!KEYWORD.test(keyword)) return err('Invalid command');
  return ok({
    verb: keyword.toUpperCase(),
    arg: sp < 0 ? undefined : Buffer.from(line.subarray(sp + 1)),
  });
}

/** The argument's space-separated words (RFC 1939 §3: arguments are separated by one space). */
export function words(arg: Buffer | undefined): string[] {
  if (arg === undefined) return [];
  const text = arg.toString('latin1');
  return text === '' ? [] : text.split(' ');
}

/** A message number argument (RFC 1939 §5: a decimal, 1-based); undefined if malformed. */
export function messageNumber(word: string | undefined): number | undefined {
  if (word === undefined || !/^[0-9]{1,9}$/.test(word)) return undefined;
  const n = Number(word);
  return n >= 1 ? n : undefined;
}
