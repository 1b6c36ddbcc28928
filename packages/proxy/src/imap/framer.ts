/**
 * IMAP command framing before login: a resumable state machine over bytes, in the manner of
 * nginx's `ngx_mail_imap_parse_command`. It cuts the client's byte stream into commands made of
 * text segments and literals, without ever decoding bytes to strings, and keeps its state between
 * reads, so a command split across any number of TCP segments frames exactly as if it came at once.
 *
 * Grammar it follows (RFC 3501 §4.3, §7.5; RFC 9051 §4.3; RFC 7888):
 *   command  = text *(literal-header CRLF literal-bytes text) CRLF
 *   literal  = "{" number ["+"] "}" CRLF *OCTET     ; "+" only with LITERAL+ / LITERAL-
 * A `{` inside a quoted string is not a literal header; quoted strings may escape `"` and `\`.
 * A bare LF is accepted as a line end (as Dovecot and nginx do); a lone CR is left in the text
 * and the parser refuses it.
 *
 * Every byte a client sends is counted, in every state: text bytes (lone CRs included; only the
 * LF and the CR just before it are not text) against the line limit, literal bytes against the
 * literal limits. The line limit is MAX_LINE_BYTES for every command but ID, whose RFC 2971
 * maximum needs MAX_ID_LINE_BYTES: the framer raises the limit only once the command's verb,
 * read from its first text segment, is ID, so no other command can be longer. What it holds is
 * therefore bounded by `maxRetainedBytes` whatever the input (`retainedBytes()` shows it).
 *
 * It emits one event at a time and stops there, so the session can act (send `+`, refuse the
 * literal, start a login and stop reading) before any later byte is looked at: bytes the client
 * pipelined after a command are never consumed by accident.
 */

import { ByteAccumulator } from '../byteAccumulator.js';
import {
  MAX_ID_LINE_BYTES,
  MAX_LINE_BYTES,
  MAX_LITERAL_BYTES,
  MAX_LITERALS_PER_COMMAND,
} from '../limits.js';
import { verbOf } from './parser.js';

const CR = 0x0d;
const LF = 0x0a;
const DQUOTE = 0x22;
const BACKSLASH = 0x5c;
const CURLY_OPEN = 0x7b;
const CURLY_CLOSE = 0x7d;
const PLUS = 0x2b;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;

export type FramePart =
  { kind: 'text'; bytes: Buffer } | { kind: 'literal'; bytes: Buffer; nonSync: boolean };

export type FrameError =
  /** The command's text exceeded the line limit (MAX_ID_LINE_BYTES for ID). */
  | 'line-too-long'
  /** A literal's announced size exceeded the literal limit (or overflowed). */
  | 'literal-too-large'
  /** More literals in one command than the limit allows. */
  | 'too-many-literals'
  /** `{n+}` when no LITERAL+ / LITERAL- was advertised (RFC 7888 §4: the client must not). */
  | 'non-sync-literal-not-allowed';

export type FrameEvent =
  /** A complete command; its final CRLF has been consumed. */
  | { kind: 'command'; parts: FramePart[] }
  /** A complete line in line mode (an AUTHENTICATE response, RFC 3501 §6.2.2). */
  | { kind: 'line'; bytes: Buffer }
  /**
   * A synchronising literal `{n}` was announced (RFC 3501 §7.5): the session must either send a
   * continuation request and call `acceptLiteral()`, or refuse with a tagged response and call
   * `reset()` (the client then does not send the literal).
   */
  | { kind: 'literal-request'; parts: FramePart[]; size: number }
  /**
   * A limit or rule was broken. `sync` tells whether the offending literal was synchronising (then
   * nothing of it has been sent yet and the session may refuse the command and `reset()`);
   * otherwise the stream cannot be resynchronised and the session must close.
   */
  | { kind: 'error'; error: FrameError; parts: FramePart[]; sync: boolean };

export interface FrameStep {
  /** Bytes of the buffer consumed by this step (from `start`). */
  consumed: number;
  event?: FrameEvent;
}

export interface FramerOptions {
  /** Whether `{n+}` is allowed: LITERAL+ or LITERAL- was advertised. */
  allowNonSyncLiterals: boolean;
  maxLineBytes?: number;
  /** The line limit of an ID command (RFC 2971 §3.3 at its maximum); never below maxLineBytes. */
  maxIdLineBytes?: number;
  maxLiteralBytes?: number;
  maxLiterals?: number;
}

type State =
  | 'text'
  | 'quoted'
  | 'quoted-escape'
  | 'literal-digits'
  | 'literal-plus'
  | 'literal-close'
  | 'literal-cr'
  | 'cr'
  | 'literal-body'
  | 'awaiting-decision'
  | 'line'
  | 'line-cr'
  | 'failed';

export class ImapFramer {
  private state: State = 'text';
  private readonly allowNonSync: boolean;
  private readonly maxLine: number;
  private readonly maxIdLine: number;
  private readonly maxLiteral: number;
  private readonly maxLiterals: number;
  /** The line limit of the command being framed: maxLine, or maxIdLine once it is known as ID. */
  private lineLimit: number;

  /** Completed parts of the command being framed. */
  private parts: FramePart[] = [];
  private partsBytes = 0;
  /** Bytes of the text parts among them (the segment may grow to the line limit minus these). */
  private partsTextBytes = 0;
  /** The current text segment (or line), copied out of the caller's buffers. */
  private readonly segment: ByteAccumulator;
  /** Text bytes of the whole command so far (all segments), against the line limit. */
  private textBytes = 0;
  /** Offset in the current segment where a candidate literal header `{` started. */
  private headerAt = 0;
  private literalSize = 0;
  private literalTooLarge = false;
  private literalDigits = 0;
  private literalNonSync = false;
  private literal: Buffer | undefined;
  private literalFilled = 0;
  private literals = 0;

  constructor(options: FramerOptions) {
    this.allowNonSync = options.allowNonSyncLiterals;
    this.maxLine = options.maxLineBytes ?? MAX_LINE_BYTES;
    this.maxIdLine = Math.max(this.maxLine, options.maxIdLineBytes ?? MAX_ID_LINE_BYTES);
    this.maxLiteral = options.maxLiteralBytes ?? MAX_LITERAL_BYTES;
    this.maxLiterals = options.maxLiterals ?? MAX_LITERALS_PER_COMMAND;
    this.lineLimit = this.maxLine;
    // One CR beyond the limit may be held: it is the CR of the closing CRLF until shown otherwise.
    this.segment = new ByteAccumulator(this.lineLimit + 1);
  }

  /**
   * The most bytes the framer can hold for one command, whatever the client sends: the text of
   * the longest command (ID) with its final CR, and every literal at its largest.
   */
  get maxRetainedBytes(): number {
    return this.maxIdLine + 1 + this.maxLiterals * this.maxLiteral;
  }

  /** Bytes held now for the command being framed (text, literals, allocated literal space). */
  retainedBytes(): number {
    return this.segment.capacity + this.partsBytes + (this.literal?.length ?? 0);
  }

  /** Frame the next raw line instead of a command (AUTHENTICATE continuation responses). */
  expectLine(): void {
    this.clear();
    this.state = 'line';
  }

  /** After a `literal-request`: the continuation was sent, read the literal's bytes. */
  acceptLiteral(): void {
    if (this.state !== 'awaiting-decision') throw new Error('framer: no literal is pending');
    this.startLiteralBody();
  }

  /** Forget the command being framed (after refusing a synchronising literal); back to commands. */
  reset(): void {
    this.clear();
    this.state = 'text';
  }

  /**
   * Consume bytes of `buf` from `start` until one event is produced or the buffer is exhausted.
   * Call again with the same buffer and `start + consumed` to continue.
   */
  feed(buf: Buffer, start = 0): FrameStep {
    let i = start;
    let segStart = start;
    const end = buf.length;
    while (i < end) {
      const byte = buf[i] as number;
      switch (this.state) {
        case 'failed':
          throw new Error('framer: fed after an error');
        case 'awaiting-decision':
          throw new Error('framer: fed while a literal request is pending');

        case 'literal-body': {
          const literal = this.literal as Buffer;
          const n = Math.min(literal.length - this.literalFilled, end - i);
          buf.copy(literal, this.literalFilled, i, i + n);
          this.literalFilled += n;
          i += n;
          segStart = i;
          if (this.literalFilled === literal.length) this.finishLiteral();
          continue;
        }

        case 'line':
        case 'line-cr': {
          if (byte === LF) {
            this.keep(buf, segStart, i);
            const trim = this.state === 'line-cr' ? 1 : 0;
            const bytes = this.segment.take(this.segment.length - trim);
            this.clear();
            this.state = 'text';
            return { consumed: i + 1 - start, event: { kind: 'line', bytes } };
          }
          if (!this.count(byte)) {
            this.keep(buf, segStart, i);
            return this.fail(start, i, 'line-too-long');
          }
          this.state = byte === CR ? 'line-cr' : 'line';
          i++;
          continue;
        }

        default:
          break;
      }

      // Command text (all remaining states). A line end closes the command or a literal header.
      if (byte === LF) {
        this.keep(buf, segStart, i);
        const state = this.state;
        if (state === 'literal-close' || state === 'literal-cr') {
          const step = this.literalHeader(i + 1 - start);
          return step;
        }
        const text = this.segment.take(this.segment.length - (state === 'cr' ? 1 : 0));
        if (text.length > 0 || this.parts.length === 0)
          this.pushPart({ kind: 'text', bytes: text });
        const parts = this.parts;
        this.clear();
        this.state = 'text';
        return { consumed: i + 1 - start, event: { kind: 'command', parts } };
      }
      if (this.textBytes >= this.lineLimit) {
        // At the limit (rare): move what this read added into the segment, where `count` looks
        // for the verb.
        this.keep(buf, segStart, i);
        segStart = i;
      }
      if (!this.count(byte)) return this.fail(start, i, 'line-too-long');
      const offset = this.segment.length + (i - segStart);
      this.state = this.next(this.state, byte, offset);
      i++;
    }
    this.keep(buf, segStart, end);
    return { consumed: end - start };
  }

  /**
   * Count one more text byte against the line limit; false when it breaks the limit. Lone CRs
   * count like any byte (else `a NOOP` and megabytes of CR would be held); one CR may stand just
   * beyond the limit, because it is the CR of the closing CRLF if an LF follows.
   */
  private count(byte: number): boolean {
    this.textBytes++;
    if (this.textBytes > this.lineLimit && this.lineLimit < this.maxIdLine && this.framingId()) {
      this.lineLimit = this.maxIdLine;
      this.capSegment();
    }
    return (
      this.textBytes <= this.lineLimit || (byte === CR && this.textBytes === this.lineLimit + 1)
    );
  }

  /** Whether the command being framed is ID (RFC 2971), by the verb of its first text segment. */
  private framingId(): boolean {
    if (this.state === 'line' || this.state === 'line-cr') return false;
    const first = this.parts[0];
    const bytes = first === undefined ? this.segment.view() : first.bytes;
    return verbOf([{ kind: 'text', bytes }]) === 'ID';
  }

  /** The state after `byte` in command text (everything except line ends and literal bodies). */
  private next(state: State, byte: number, offset: number): State {
    switch (state) {
      case 'quoted':
        // A CR ends the line (and leaves the quoted string unterminated, for the parser to refuse).
        if (byte === CR) return 'cr';
        return byte === BACKSLASH ? 'quoted-escape' : byte === DQUOTE ? 'text' : 'quoted';
      case 'quoted-escape':
        return byte === CR ? 'cr' : 'quoted';
      case 'literal-digits':
        if (byte >= DIGIT_0 && byte <= DIGIT_9) {
          // Overflow-checked: stop accumulating once beyond the limit, but remember it.
          this.literalDigits++;
          if (!this.literalTooLarge) {
            this.literalSize = this.literalSize * 10 + (byte - DIGIT_0);
            if (this.literalSize > this.maxLiteral) this.literalTooLarge = true;
          }
          return 'literal-digits';
        }
        if (this.literalDigits > 0 && byte === PLUS) return 'literal-plus';
        if (this.literalDigits > 0 && byte === CURLY_CLOSE) {
          this.literalNonSync = false;
          return 'literal-close';
        }
        return this.next('text', byte, offset);
      case 'literal-plus':
        if (byte === CURLY_CLOSE) {
          this.literalNonSync = true;
          return 'literal-close';
        }
        return this.next('text', byte, offset);
      case 'literal-close':
        return byte === CR ? 'literal-cr' : this.next('text', byte, offset);
      case 'literal-cr':
      case 'cr':
      case 'text':
      default:
        if (byte === DQUOTE) return 'quoted';
        if (byte === CR) return 'cr';
        if (byte === CURLY_OPEN) {
          this.headerAt = offset;
          this.literalSize = 0;
          this.literalDigits = 0;
          this.literalTooLarge = false;
          return 'literal-digits';
        }
        return 'text';
    }
  }

  /** A literal header ended with CRLF: decide what happens to its bytes. */
  private literalHeader(consumed: number): FrameStep {
    this.pushPart({ kind: 'text', bytes: this.segment.take(this.headerAt) });
    const sync = !this.literalNonSync;
    const parts = this.parts;
    const error: FrameError | undefined = this.literalTooLarge
      ? 'literal-too-large'
      : this.literals >= this.maxLiterals
        ? 'too-many-literals'
        : !sync && !this.allowNonSync
          ? 'non-sync-literal-not-allowed'
          : undefined;
    if (error !== undefined) {
      this.state = sync ? 'awaiting-decision' : 'failed';
      return { consumed, event: { kind: 'error', error, parts, sync } };
    }
    if (sync) {
      this.state = 'awaiting-decision';
      return { consumed, event: { kind: 'literal-request', parts, size: this.literalSize } };
    }
    this.startLiteralBody();
    return { consumed };
  }

  private startLiteralBody(): void {
    this.literals++;
    this.literal = Buffer.alloc(this.literalSize);
    this.literalFilled = 0;
    this.state = 'literal-body';
    if (this.literalSize === 0) this.finishLiteral();
  }

  private finishLiteral(): void {
    const bytes = this.literal as Buffer;
    this.literal = undefined;
    this.pushPart({ kind: 'literal', bytes, nonSync: this.literalNonSync });
    this.state = 'text';
  }

  private fail(start: number, i: number, error: FrameError): FrameStep {
    const parts = this.parts;
    const text = this.segment.take();
    if (text.length > 0) parts.push({ kind: 'text', bytes: text });
    this.clear();
    this.state = 'failed';
    return { consumed: i + 1 - start, event: { kind: 'error', error, parts, sync: false } };
  }

  private pushPart(part: FramePart): void {
    this.parts.push(part);
    this.partsBytes += part.bytes.length;
    if (part.kind === 'text') {
      this.partsTextBytes += part.bytes.length;
      this.capSegment();
    }
  }

  /** The segment may hold what is left of the line limit (and the CR of the closing CRLF). */
  private capSegment(): void {
    this.segment.setCap(this.lineLimit + 1 - this.partsTextBytes);
  }

  /** Copy `buf[from, to)` into the current segment (callers' buffers are not retained). */
  private keep(buf: Buffer, from: number, to: number): void {
    this.segment.push(buf, from, to);
  }

  private clear(): void {
    this.parts = [];
    this.partsBytes = 0;
    this.partsTextBytes = 0;
    this.segment.clear();
    this.textBytes = 0;
    this.lineLimit = this.maxLine;
    this.capSegment();
    this.literals = 0;
    this.literal = undefined;
    this.literalFilled = 0;
  }
}
