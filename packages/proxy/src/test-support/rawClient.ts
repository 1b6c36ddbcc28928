/** A byte-exact line client for tests: what a hostile or unusual client would send. */

import { type Socket, connect } from 'node:net';
import { LineBuffer } from './lineBuffer.js';

export class RawClient {
  private readonly input = new LineBuffer();
  readonly closed: Promise<void>;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.input.push(chunk));
    // The server's end of stream ends what we will read (we then close our side, as clients do).
    socket.on('end', () => {
      this.input.end();
      socket.end();
    });
    this.closed = new Promise((resolve) =>
      socket.on('close', () => {
        this.input.end();
        resolve();
      }),
    );
    socket.on('error', () => undefined);
  }

  /** `localAddress`: the source address, e.g. another loopback one the proxy must pass on. */
  static open(port: number, host = '127.0.0.1', localAddress?: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = connect({
        port,
        host,
        allowHalfOpen: true,
        ...(localAddress === undefined ? {} : { localAddress }),
      });
      s.once('connect', () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  send(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** The next line (without CRLF), as latin1 text; undefined when the connection closed. */
  line(timeoutMs = 10_000): Promise<string | undefined> {
    return this.input.line(timeoutMs);
  }

  /** Lines up to and including the one starting with `tag ` (or every line until close). */
  until(tag: string, timeoutMs = 10_000): Promise<string[]> {
    return this.input.until(`${tag} `, timeoutMs);
  }

  /** Every remaining line until the server closes. */
  rest(timeoutMs = 10_000): Promise<string[]> {
    return this.input.rest(timeoutMs);
  }

  /** All bytes received and not yet consumed, after waiting for the connection to close. */
  async allBytes(): Promise<Buffer> {
    await this.closed;
    return this.input.take();
  }

  close(): void {
    this.socket.destroy();
  }
}
