/** A byte-exact line client that can start plain, upgrade to TLS (STARTTLS/STLS) or start in TLS,
 * with an optional client certificate: for the TLS end-to-end tests. */

import { type Socket, connect as netConnect } from 'node:net';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';

export interface TlsClientOptions {
  ca: string;
  servername?: string;
  cert?: string;
  key?: string;
}

export class TlsLineClient {
  private buffered = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  private ended = false;
  private readonly onData = (chunk: Buffer): void => {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    this.wake();
  };
  private readonly onEnd = (): void => {
    this.ended = true;
    this.wake();
  };

  private constructor(private socket: Socket) {
    this.attach(socket);
  }

  static plain(port: number): Promise<TlsLineClient> {
    return new Promise((resolve, reject) => {
      const s = netConnect({ port, host: '127.0.0.1' });
      s.once('connect', () => resolve(new TlsLineClient(s)));
      s.once('error', reject);
    });
  }

  static implicit(port: number, options: TlsClientOptions): Promise<TlsLineClient> {
    return new Promise((resolve, reject) => {
      const s = tlsConnect({ port, host: '127.0.0.1', ...options });
      s.once('secureConnect', () => resolve(new TlsLineClient(s)));
      s.once('error', reject);
    });
  }

  get tls(): TLSSocket | undefined {
    return 'encrypted' in this.socket ? (this.socket as TLSSocket) : undefined;
  }

  /** Start TLS on the connection; bytes received in the clear and not read yet are dropped. */
  upgrade(options: TlsClientOptions): Promise<void> {
    const plain = this.socket;
    plain.off('data', this.onData);
    plain.off('end', this.onEnd);
    this.buffered = Buffer.alloc(0);
    return new Promise((resolve, reject) => {
      const s = tlsConnect({ socket: plain, ...options });
      s.once('secureConnect', () => {
        this.socket = s;
        this.attach(s);
        resolve();
      });
      s.once('error', reject);
    });
  }

  send(data: string | Buffer): void {
    this.socket.write(data);
  }

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

  /** Lines up to and including the one starting with `prefix`. */
  async until(prefix: string, timeoutMs = 10_000): Promise<string[]> {
    const lines: string[] = [];
    for (;;) {
      const l = await this.line(timeoutMs);
      if (l === undefined) return lines;
      lines.push(l);
      if (l.startsWith(prefix)) return lines;
    }
  }

  close(): void {
    this.socket.destroy();
  }

  private attach(s: Socket): void {
    s.on('data', this.onData);
    s.on('end', this.onEnd);
    s.on('close', this.onEnd);
    s.on('error', () => undefined);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}
