/**
 * The bytes of a partial line before login, in one buffer that grows with the line up to a hard
 * cap. The framers keep what a client sent between reads here instead of a list of per-read
 * copies: a line fed one byte per TCP segment would otherwise cost a Buffer object (about a
 * hundred bytes of overhead) per byte, so the memory a client can hold would be a multiple of the
 * line limit rather than the limit itself.
 *
 * The buffer is released when the line is taken, so an idle session keeps nothing.
 */

/** First allocation: most command lines before login are shorter. */
const INITIAL_CAPACITY = 128;

export class ByteAccumulator {
  private buf: Buffer | undefined;
  private used = 0;

  /** @param cap most bytes ever held; exceeding it is a bug of the caller, which counts first */
  constructor(private cap: number) {}

  get length(): number {
    return this.used;
  }

  /** Bytes allocated (what the client's line costs in memory, never more than the cap). */
  get capacity(): number {
    return this.buf?.length ?? 0;
  }

  /** Raise (or lower, for the next line) the cap. */
  setCap(cap: number): void {
    this.cap = cap;
  }

  /** Append `src[from, to)`; the caller's buffer is not retained. */
  push(src: Buffer, from: number, to: number): void {
    const n = to - from;
    if (n <= 0) return;
    const needed = this.used + n;
    if (needed > this.cap)
      throw new Error(`accumulator: ${needed} bytes exceed the cap ${this.cap}`);
    if (this.buf === undefined || needed > this.buf.length) {
      let size = Math.max(INITIAL_CAPACITY, this.buf?.length ?? 0);
      while (size < needed) size *= 2;
      // Buffer.alloc is never a slice of Node's shared pool: this buffer may live across many
      // reads, and a pooled slice would pin a whole 8 KiB slab however short the line.
      const grown = Buffer.alloc(Math.min(size, this.cap));
      this.buf?.copy(grown, 0, 0, this.used);
      this.buf = grown;
    }
    src.copy(this.buf, this.used, from, to);
    this.used = needed;
  }

  /** The bytes held, without copying (valid until the next push or take). */
  view(): Buffer {
    return this.buf === undefined ? Buffer.alloc(0) : this.buf.subarray(0, this.used);
  }

  /** The first `length` bytes held (default all), copied out exactly; the buffer is released. */
  take(length = this.used): Buffer {
    const out = Buffer.from(this.view().subarray(0, length));
    this.clear();
    return out;
  }

  clear(): void {
    this.buf = undefined;
    this.used = 0;
  }
}
