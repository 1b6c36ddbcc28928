/** A byte-exact line client for tests: what a hostile or unusual client would send. */

import { type Socket, connect } from 'node:net';

export class RawClient {
  private buffered = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  ended = false;
  readonly closed: Promise<void>;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, chunk]);
      this.wake();
    });
    // The server's end of stream ends what we will read (we then close our side, as clients do).
    socket.on('end', () => {
      this.ended = true;
      this.wake();
      socket.end();
    });
    this.closed = new Promise((resolve) =>
      socket.on('close', () => {
        this.ended = true;
        this.wake();
        resolve();
      }),
    );
    socket.on('error', () => undefined);
  }

  static open(port: number, host = '127.0.0.1'): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host, allowHalfOpen: true });
      s.once('connect', () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  send(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** The next line (without CRLF), as latin1 text; undefined when the connection closed. */
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

  /** Lines up to and including the one starting with `tag ` (or every line until close). */
  async until(tag: string, timeoutMs = 10_000): Promise<string[]> {
    const lines: string[] = [];
    for (;;) {
      const l = await this.line(timeoutMs);
      if (l === undefined) return lines;
      lines.push(l);
      if (l.startsWith(`${tag} `)) return lines;
    }
  }

  /** Every remaining line until the server closes. */
  async rest(timeoutMs = 10_000): Promise<string[]> {
    const lines: string[] = [];
    for (;;) {
      const l = await this.line(timeoutMs);
      if (l === undefined) return lines;
      lines.push(l);
    }
  }

  /** All bytes received and not yet consumed, after waiting for the connection to close. */
  async allBytes(): Promise<Buffer> {
    await this.closed;
    const b = this.buffered;
    this.buffered = Buffer.alloc(0);
    return b;
  }

  close(): void {
    this.socket.destroy();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}
