/** The reading half of the tests' byte-exact clients: bytes as they arrive, read back as lines
 * with a deadline, so that a test fails with "no line within …" instead of hanging. */

export class LineBuffer {
  private buffered = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  private ended = false;

  push(chunk: Buffer): void {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    this.wake();
  }

  /** Nothing more will arrive: waiting readers get what is left, then undefined. */
  end(): void {
    this.ended = true;
    this.wake();
  }

  /** Drop what was received and not read (bytes sent in the clear before a TLS upgrade). */
  clear(): void {
    this.buffered = Buffer.alloc(0);
  }

  /** Everything received and not yet read. */
  take(): Buffer {
    const b = this.buffered;
    this.buffered = Buffer.alloc(0);
    return b;
  }

  /** The next line (without CRLF), as latin1 text; undefined once the connection ended. */
  async line(timeoutMs = 10_000): Promise<string | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const lf = this.buffered.indexOf(0x0a);
      if (lf >= 0) {
        const line = this.buffered.subarray(0, lf).toString('latin1').replace(/\r$/, '');
        this.buffered = this.buffered.subarray(lf + 1);
        return line;
      }
      if (this.ended) return undefined;
      if (Date.now() > deadline) throw new Error(`no line within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Lines up to and including the first that starts with `prefix` (or every line until the end). */
  async until(prefix: string, timeoutMs = 10_000): Promise<string[]> {
    const lines: string[] = [];
    for (;;) {
      const l = await this.line(timeoutMs);
      if (l === undefined) return lines;
      lines.push(l);
      if (l.startsWith(prefix)) return lines;
    }
  }

  /** Every remaining line until the end. */
  async rest(timeoutMs = 10_000): Promise<string[]> {
    const lines: string[] = [];
    for (;;) {
      const l = await this.line(timeoutMs);
      if (l === undefined) return lines;
      lines.push(l);
    }
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}
