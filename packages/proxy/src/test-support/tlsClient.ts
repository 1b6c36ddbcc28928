/** A byte-exact line client that can start plain, upgrade to TLS (STARTTLS/STLS) or start in TLS,
 * with an optional client certificate: for the TLS end-to-end tests. */

import { type Socket, connect as netConnect } from 'node:net';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { LineBuffer } from './lineBuffer.js';

export interface TlsClientOptions {
  ca: string;
  servername?: string;
  cert?: string;
  key?: string;
  /** The client's own loopback address (to tell it apart in a store's log). */
  localAddress?: string;
}

export class TlsLineClient {
  private readonly input = new LineBuffer();
  private readonly onData = (chunk: Buffer): void => this.input.push(chunk);
  private readonly onEnd = (): void => this.input.end();

  private constructor(private socket: Socket) {
    this.attach(socket);
  }

  static plain(port: number, localAddress?: string): Promise<TlsLineClient> {
    return new Promise((resolve, reject) => {
      const s = netConnect({ port, host: '127.0.0.1', ...(localAddress ? { localAddress } : {}) });
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
    this.input.clear();
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

  line(timeoutMs = 10_000): Promise<string | undefined> {
    return this.input.line(timeoutMs);
  }

  /** Lines up to and including the one starting with `prefix`. */
  until(prefix: string, timeoutMs = 10_000): Promise<string[]> {
    return this.input.until(prefix, timeoutMs);
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
}
