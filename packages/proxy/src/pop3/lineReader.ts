/**
 * POP3 framing: bytes to lines (RFC 1939 §3: every command is one line ending in CRLF). A
 * resumable state machine over Buffers, as nginx's parser: it keeps a partial line between reads
 * and never needs the whole line in one chunk, so a line fed byte by byte and all at once gives the
 * same events.
 *
 * A bare LF also ends a line (a CR before it is dropped), as Dovecot and nginx accept; a CR
 * elsewhere stays in the line for the command handlers to refuse. The line limit counts the line
 * with its CRLF; once it is exceeded the reader reports it and the session closes (RFC 2449 §4
 * gives no way to resynchronise with a client that ignores the limit).
 */

import { ByteAccumulator } from '../byteAccumulator.js';

const CR = 0x0d;
const LF = 0x0a;

export type LineEvent =
  /** One complete line, CRLF removed. */
  | { kind: 'line'; bytes: Buffer }
  /** The line outgrew the limit; everything up to here is consumed. */
  | { kind: 'too-long' };

/** A command whose line may be longer than the reader's limit: its verb and that line's limit. */
export interface LongerLine {
  /** Upper case; the line qualifies when it starts with it and a space, in any case. */
  readonly verb: string;
  readonly limit: number;
}

export interface FeedStep {
  /** Bytes of the buffer used (from `offset`). */
  consumed: number;
  event?: LineEvent;
}

export class Pop3LineReader {
  /** The partial line; it never holds the limit's worth, since then the LF could not fit. */
  private readonly partial: ByteAccumulator;
  /** The rest of an over-long line, already reported, is skipped up to its LF. */
  private discarding = false;

  /** The verb, a space, as bytes: what a longer line starts with. */
  private longerHead: Buffer | undefined;

  /**
   * @param limit longest line, CRLF included
   * @param longer a command allowed a longer line (POP3 AUTH with an initial response)
   */
  constructor(
    private limit: number,
    private longer?: LongerLine,
  ) {
    this.partial = new ByteAccumulator(limit);
    this.longerHead = headOf(longer);
  }

  /** Change the limits for the next lines (a SASL response may be longer than a command). */
  setLimit(limit: number, longer?: LongerLine): void {
    this.limit = limit;
    this.longer = longer;
    this.longerHead = headOf(longer);
    this.partial.setCap(Math.max(limit, this.partial.length));
  }

  /** Bytes of an incomplete line held. */
  get pending(): number {
    return this.partial.length;
  }

  /** Bytes of memory held for the incomplete line (never more than the limit). */
  retainedBytes(): number {
    return this.partial.capacity;
  }

  /**
   * Consume bytes from `buf` at `offset` until one event (a line or the limit) or the end of
   * the buffer. Call again with the new offset while bytes remain.
   */
  feed(buf: Buffer, offset = 0): FeedStep {
    const lf = buf.indexOf(LF, offset);
    if (this.discarding) {
      if (lf < 0) return { consumed: buf.length - offset };
      this.discarding = false;
      return { consumed: lf - offset + 1 };
    }
    if (lf < 0) {
      const n = buf.length - offset;
      // Even the LF still to come would not fit: no need to wait for it.
      if (this.partial.length + n >= this.limitOf(buf, offset)) {
        this.discarding = true;
        return { consumed: n, event: this.overflow() };
      }
      this.partial.push(buf, offset, buf.length);
      return { consumed: n };
    }
    const consumed = lf - offset + 1;
    if (this.partial.length + consumed > this.limitOf(buf, offset))
      return { consumed, event: this.overflow() };
    this.partial.push(buf, offset, lf);
    let line = this.partial.take();
    this.partial.setCap(this.limit);
    if (line.length > 0 && line[line.length - 1] === CR) line = line.subarray(0, line.length - 1);
    return { consumed, event: { kind: 'line', bytes: line } };
  }

  /** Forget a partial line (after the session gave up on the stream). */
  reset(): void {
    this.partial.clear();
    this.partial.setCap(this.limit);
    this.discarding = false;
  }

  /**
   * The limit of the line being read: the longer line's when it starts with its verb and a
   * space, else the ordinary one. Asked only once the line outgrows the ordinary limit, so its
   * first bytes are at hand (held, or in `buf` from `offset`); the accumulator may then hold
   * the longer line.
   */
  private limitOf(buf: Buffer, offset: number): number {
    const head = this.longerHead;
    if (head === undefined || this.longer === undefined) return this.limit;
    const held = this.partial.view();
    const start = Buffer.concat([
      held.subarray(0, head.length),
      buf.subarray(offset, offset + Math.max(0, head.length - held.length)),
    ]);
    if (start.length < head.length) return this.limit;
    for (let i = 0; i < head.length; i++) {
      // ASCII case folding of the verb's letters (RFC 1939 §3: keywords are case-insensitive).
      const c = start[i] ?? 0;
      if ((c >= 0x61 && c <= 0x7a ? c - 0x20 : c) !== head[i]) return this.limit;
    }
    this.partial.setCap(Math.max(this.longer.limit, this.partial.length));
    return this.longer.limit;
  }

  private overflow(): LineEvent {
    this.partial.clear();
    this.partial.setCap(this.limit);
    return { kind: 'too-long' };
  }
}

function headOf(longer: LongerLine | undefined): Buffer | undefined {
  return longer === undefined ? undefined : Buffer.from(`${longer.verb} `, 'latin1');
}
