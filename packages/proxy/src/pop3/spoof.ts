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
 *
 * The guide only asks for an RFC 822 message. Decision: a file without `Date:`, `From:` or `To:`
 * is served, not refused (a warning at start-up says what each session fills in), since mail
 * clients sort and show by them: `Date:` the moment that session found its stores down (the
 * outage, as far as the user can tell), `From:` the host's postmaster (RFC 5321 §4.5.1: every
 * host has one), `To:` the user's address (the name typed when it is one, else the name at this
 * host). The UIDL stays the file's, so a client that leaves mail on the server fetches the notice
 * once.
 */

import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
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
  /** Header fields the file lacks, which each session fills in (SpoofInbox). */
  readonly missing: readonly FilledField[];
}

/** The fields a session fills in when the file has none. */
export type FilledField = 'Date' | 'From' | 'To';
const FILLED: readonly FilledField[] = ['Date', 'From', 'To'];

/** The start-up warning for each field the file lacks (`proxyRuntime.ts` says them). */
export function spoofWarnings(message: SpoofMessage): string[] {
  const what: Record<FilledField, string> = {
    Date: 'the date each session found its stores down',
    From: `postmaster@${hostname()}`,
    To: "the user's address",
  };
  return message.missing.map(
    (f) => `the message has no ${f}: field; each session is served one with ${what[f]}`,
  );
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
  // RFC 822 §4.1 / RFC 5322 §3.6: Date and From are required, To usual; each session fills in
  // those the file lacks (SpoofInbox).
  const missing = FILLED.filter((f) => !names.has(f.toLowerCase()));
  const bytes = Buffer.concat(raw.flatMap((l) => [l, CRLF]));
  const uid = `mmp-spoof-${createHash('sha256').update(bytes).digest('hex').slice(0, 32)}`;
  return ok({ bytes, lines: raw.map((l) => Buffer.from(l)), headerEnd, uid, missing });
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n: number): string => String(n).padStart(2, '0');

/** RFC 5322 §3.3 date-time in the host's local time: `Tue, 01 Dec 2026 13:46:31 +0100`. */
export function rfc5322Date(d: Date): string {
  const offset = -d.getTimezoneOffset();
  const sign = offset >= 0 ? '+' : '-';
  const abs = Math.abs(offset);
  const zone = `${sign}${two(Math.floor(abs / 60))}${two(abs % 60)}`;
  return (
    `${DAYS[d.getDay()] ?? ''}, ${two(d.getDate())} ${MONTHS[d.getMonth()] ?? ''} ${d.getFullYear()} ` +
    `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())} ${zone}`
  );
}

/** RFC 5322 §3.2.3 dot-atom (ASCII): what may stand unquoted on either side of an address's `@`. */
const DOT_ATOM = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;

/**
 * The user's address for `To:`: the name typed when it is `local@domain`, else `name@host`. A name
 * that is no dot-atom (spaces, control characters, non-ASCII) is never written into the header:
 * RFC 5322 §3.4's empty group `undisclosed-recipients:;` stands for it.
 */
export function userAddress(user: string, host: string): string {
  const at = user.lastIndexOf('@');
  const [local, domain] = at < 0 ? [user, host] : [user.slice(0, at), user.slice(at + 1)];
  return DOT_ATOM.test(local) && DOT_ATOM.test(domain)
    ? `${local}@${domain}`
    : 'undisclosed-recipients:;';
}

/** What one session's copy of the message is made with (the fields the file lacks). */
export interface SpoofSession {
  /** When the session's stores were found down. */
  readonly outage: Date;
  /** The user name as typed. */
  readonly user: string;
  /** This host's name (default: os.hostname()). */
  readonly host?: string;
}

/** The message as this session serves it: the file's, after the fields it lacks. */
function sessionMessage(
  message: SpoofMessage,
  session: SpoofSession,
): { bytes: Buffer; lines: readonly Buffer[]; headerEnd: number } {
  if (message.missing.length === 0) return message;
  const host = session.host ?? hostname();
  const value: Record<FilledField, string> = {
    Date: rfc5322Date(session.outage),
    From: `postmaster@${host}`,
    To: userAddress(session.user, host),
  };
  const added = message.missing.map((f) => Buffer.from(`${f}: ${value[f]}`, 'latin1'));
  const lines = [...added, ...message.lines];
  return {
    bytes: Buffer.concat(lines.flatMap((l) => [l, CRLF])),
    lines,
    headerEnd: message.headerEnd + added.length,
  };
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
  /** The file's message as this session serves it (with the fields it lacks). */
  private readonly message: {
    bytes: Buffer;
    lines: readonly Buffer[];
    headerEnd: number;
    uid: string;
  };

  constructor(file: SpoofMessage, session: SpoofSession) {
    this.message = { ...sessionMessage(file, session), uid: file.uid };
  }

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
