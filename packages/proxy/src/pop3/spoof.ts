/**
 * The spoof inbox (admin guide, SpoofMessageFile): when none of a user's stores can be reached,
 * the multiplexor "creates an inbox for the user and places this one message into it", acting as a
 * base-functionality POP3 server (RFC 1939 TRANSACTION state) for that session.
 *
 * The file is read and checked once at start-up. Its format, per the guide: an RFC 822 message
 * "including the final '.'": the file's last line holds only `.`, which ends the message and is
 * not part of it. Decision: the lines before it are the message as is (not dot-stuffed); we stuff
 * on output (RFC 1939 §3), so a body line `.` in the file reaches the client as `.`.
 *
 * DELE only marks the message for this session (RSET unmarks it); nothing is ever removed from
 * the file, and QUIT changes nothing (there is no UPDATE to do).
 */

import { createHash } from 'node:crypto';
import { type Result, err, ok } from '@mmp/config';
import { type ReadFile, readFromDisk } from '../files.js';
import { MAX_SPOOF_MESSAGE_BYTES } from '../limits.js';

export interface SpoofMessage {
  /** The message, every line ending in CRLF, without the final `.` line. */
  readonly bytes: Buffer;
  /** Its lines without CRLF (headers, the empty separator line, body). */
  readonly lines: readonly Buffer[];
  /** Index in `lines` of the empty line between header and body (lines.length if none). */
  readonly headerEnd: number;
  /** RFC 1939 §7 unique-id: the same for every session and restart while the file is unchanged,
   * so a client that leaves mail on the server does not fetch the notice again and again. */
  readonly uid: string;
}

const NUL = 0x00;
const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const CRLF = Buffer.from('\r\n');
/** RFC 5322 §2.1.1: a line must not exceed 998 characters. */
const MAX_MESSAGE_LINE = 998;
/** RFC 5322 §3.6.4 field name: printable ASCII except `:`. */
const FIELD = /^([\x21-\x39\x3b-\x7e]+)[ \t]*:/;

/** Check the file's text and build the message (errors say what is wrong and where). */
export function parseSpoofMessage(file: Buffer): Result<SpoofMessage, string> {
  if (file.length === 0) return err('the file is empty');
  if (file.includes(NUL)) return err('the file contains a NUL byte (RFC 5322 §2.3 forbids it)');
  // Lines end in CRLF or LF; a trailing line end after the final `.` is optional.
  const raw: Buffer[] = [];
  let start = 0;
  while (start < file.length) {
    const lf = file.indexOf(LF, start);
    const end = lf < 0 ? file.length : lf;
    let line = file.subarray(start, end);
    if (line.length > 0 && line[line.length - 1] === CR) line = line.subarray(0, line.length - 1);
    raw.push(line);
    start = end + 1;
  }
  const last = raw.pop();
  if (last === undefined || !(last.length === 1 && last[0] === DOT)) {
    return err(
      `the last line must hold only "." (the end of the message, as the admin guide says)`,
    );
  }
  if (raw.length === 0) return err('there is no message before the final "." line');
  for (let i = 0; i < raw.length; i++) {
    const line = raw[i] as Buffer;
    if (line.includes(CR)) return err(`line ${i + 1}: a CR without LF (RFC 5322 §2.3)`);
    if (line.length > MAX_MESSAGE_LINE) {
      return err(`line ${i + 1} is longer than ${MAX_MESSAGE_LINE} octets (RFC 5322 §2.1.1)`);
    }
  }
  let headerEnd = raw.findIndex((l) => l.length === 0);
  if (headerEnd < 0) headerEnd = raw.length;
  if (headerEnd === 0)
    return err('line 1: the message must start with header fields (RFC 822 §4.1)');
  const names = new Set<string>();
  for (let i = 0; i < headerEnd; i++) {
    const text = (raw[i] as Buffer).toString('latin1');
    if (text[0] === ' ' || text[0] === '\t') {
      if (i === 0) return err('line 1: a continuation line cannot come first');
      continue; // folded header (RFC 822 §3.1.1)
    }
    const m = FIELD.exec(text);
    if (m === null) {
      return err(
        `line ${i + 1}: not a header field "Name: value" (RFC 822 §3.1); a blank line must separate header and body`,
      );
    }
    names.add((m[1] as string).toLowerCase());
  }
  // RFC 822 §4.1 / RFC 5322 §3.6: Date and From are required; mail clients sort and show by them.
  for (const required of ['From', 'Date']) {
    if (!names.has(required.toLowerCase())) {
      return err(`the header has no ${required}: field (RFC 822 §4.1 requires it)`);
    }
  }
  const bytes = Buffer.concat(raw.flatMap((l) => [l, CRLF]));
  const uid = `mmp-spoof-${createHash('sha256').update(bytes).digest('hex').slice(0, 32)}`;
  return ok({ bytes, lines: raw.map((l) => Buffer.from(l)), headerEnd, uid });
}

/** Read and check SpoofMessageFile (when the runtime is built, `proxyRuntime.ts`). */
export function loadSpoofMessage(
  path: string,
  read: ReadFile = readFromDisk,
): Result<SpoofMessage, string> {
  const file = read(path, MAX_SPOOF_MESSAGE_BYTES);
  if (file.ok) return parseSpoofMessage(file.value);
  const e = file.error;
  switch (e.kind) {
    case 'unreadable':
      return err(`cannot read it: ${e.code}`);
    case 'not-a-file':
      return err('not a regular file');
    case 'too-large':
      return err(`it is ${e.size} bytes; at most ${MAX_SPOOF_MESSAGE_BYTES} are accepted`);
  }
}

/** RFC 1939 §3: a line starting with `.` gets one more; the result ends with `.` CRLF. */
export function dotStuff(lines: readonly Buffer[]): Buffer {
  const out: Buffer[] = [];
  for (const line of lines) {
    if (line[0] === DOT) out.push(Buffer.from('.'));
    out.push(line, CRLF);
  }
  out.push(Buffer.from('.\r\n'));
  return Buffer.concat(out);
}

export type InboxAnswer =
  { kind: 'ok'; line: string; body?: Buffer } | { kind: 'err'; line: string };

/**
 * One session's view of the spoof inbox: message 1, deleted or not. Answers are the response
 * line (without `+OK` / `-ERR`) and, for multi-line answers, the dot-stuffed body.
 */
export class SpoofInbox {
  private deleted = false;
  private stuffed: Buffer | undefined;

  constructor(readonly message: SpoofMessage) {}

  /** RFC 1939 §5 STAT: count and size of the messages not marked deleted. */
  stat(): InboxAnswer {
    return this.deleted
      ? { kind: 'ok', line: '0 0' }
      : { kind: 'ok', line: `1 ${this.message.bytes.length}` };
  }

  /** RFC 1939 §5 LIST [msg]. */
  list(n: number | undefined): InboxAnswer {
    if (n !== undefined) {
      const bad = this.check(n);
      return bad ?? { kind: 'ok', line: `1 ${this.message.bytes.length}` };
    }
    const body = this.deleted ? '.\r\n' : `1 ${this.message.bytes.length}\r\n.\r\n`;
    const count = this.deleted ? 0 : 1;
    return { kind: 'ok', line: `${count} messages`, body: Buffer.from(body) };
  }

  /** RFC 1939 §7 UIDL [msg]. */
  uidl(n: number | undefined): InboxAnswer {
    if (n !== undefined) {
      const bad = this.check(n);
      return bad ?? { kind: 'ok', line: `1 ${this.message.uid}` };
    }
    const body = this.deleted ? '.\r\n' : `1 ${this.message.uid}\r\n.\r\n`;
    return { kind: 'ok', line: 'Unique-ID listing follows', body: Buffer.from(body) };
  }

  /** RFC 1939 §5 RETR msg. */
  retr(n: number): InboxAnswer {
    const bad = this.check(n);
    if (bad !== undefined) return bad;
    this.stuffed ??= dotStuff(this.message.lines);
    return { kind: 'ok', line: `${this.message.bytes.length} octets`, body: this.stuffed };
  }

  /** RFC 1939 §7 TOP msg n: the header, the blank line, and the body's first n lines. */
  top(n: number, bodyLines: number): InboxAnswer {
    const bad = this.check(n);
    if (bad !== undefined) return bad;
    const { lines, headerEnd } = this.message;
    const end = Math.min(lines.length, headerEnd + 1 + bodyLines);
    const shown = lines.slice(0, end);
    // A message without a body still gets the blank line after its header (RFC 1939 §7).
    if (headerEnd >= lines.length) shown.push(Buffer.alloc(0));
    return { kind: 'ok', line: 'Top of message follows', body: dotStuff(shown) };
  }

  /** RFC 1939 §5 DELE msg: marked for this session only. */
  dele(n: number): InboxAnswer {
    const bad = this.check(n);
    if (bad !== undefined) return bad;
    this.deleted = true;
    return { kind: 'ok', line: `message ${n} deleted` };
  }

  /** RFC 1939 §5 RSET. */
  rset(): InboxAnswer {
    this.deleted = false;
    return { kind: 'ok', line: `maildrop has 1 message (${this.message.bytes.length} octets)` };
  }

  private check(n: number): InboxAnswer | undefined {
    if (n !== 1) return { kind: 'err', line: 'no such message' };
    if (this.deleted) return { kind: 'err', line: `message ${n} already deleted` };
    return undefined;
  }
}
