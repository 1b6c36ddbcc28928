// A minimal line-oriented client over TCP or TLS, for tests that need exact protocol bytes
// (IMAP LOGIN with literals, POP3 USER/PASS, commands sent before login, …).
import * as net from 'node:net';
import * as tls from 'node:tls';

export interface LineClientOptions {
  /** Implicit TLS; the certificate is checked against `ca` when given, else not at all. */
  tls?: boolean;
  ca?: string;
  /** Per-read timeout (default 10 s). */
  timeoutMs?: number;
}

export class LineClient {
  private buffer = Buffer.alloc(0);
  private waiting: (() => void) | undefined;
  private ended = false;
  private failure: Error | undefined;
  private readonly timeoutMs: number;

  private constructor(
    readonly socket: net.Socket,
    timeoutMs: number,
  ) {
    this.timeoutMs = timeoutMs;
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.wake();
    });
    socket.on('end', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', (error: Error) => {
      this.failure = error;
      this.wake();
    });
  }

  static connect(host: string, port: number, options: LineClientOptions = {}): Promise<LineClient> {
    const timeoutMs = options.timeoutMs ?? 10_000;
    return new Promise((resolve, reject) => {
      const socket = options.tls
        ? tls.connect({
            host,
            port,
            ca: options.ca,
            rejectUnauthorized: options.ca !== undefined,
            servername: net.isIP(host) ? undefined : host,
          })
        : net.connect({ host, port });
      const onError = (error: Error): void => reject(error);
      socket.once('error', onError);
      socket.once(options.tls ? 'secureConnect' : 'connect', () => {
        socket.off('error', onError);
        resolve(new LineClient(socket, timeoutMs));
      });
    });
  }

  private wake(): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.();
  }

  /** The next line, without its CRLF (or LF). Rejects on timeout or end of stream. */
  async readLine(): Promise<string> {
    const deadline = Date.now() + this.timeoutMs;
    for (;;) {
      const end = this.buffer.indexOf('\n');
      if (end >= 0) {
        const line = this.buffer.subarray(0, end).toString('utf8').replace(/\r$/, '');
        this.buffer = this.buffer.subarray(end + 1);
        return line;
      }
      if (this.failure) throw this.failure;
      if (this.ended) throw new Error('connection closed');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no line within ${this.timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiting = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** Exactly `count` bytes (after an IMAP literal announcement, say). */
  async readBytes(count: number): Promise<Buffer> {
    const deadline = Date.now() + this.timeoutMs;
    while (this.buffer.length < count) {
      if (this.failure) throw this.failure;
      if (this.ended) throw new Error('connection closed');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${count} bytes within ${this.timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiting = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    const bytes = this.buffer.subarray(0, count);
    this.buffer = this.buffer.subarray(count);
    return bytes;
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Send `TAG COMMAND\r\n`, return every line up to and including the tagged answer. */
  async imap(tag: string, command: string | Buffer): Promise<string[]> {
    this.write(Buffer.concat([Buffer.from(`${tag} `), Buffer.from(command), Buffer.from('\r\n')]));
    const lines: string[] = [];
    for (;;) {
      const line = await this.readLine();
      lines.push(line);
      if (line.startsWith(`${tag} `)) return lines;
    }
  }

  /** Send a POP3 command line, return the status line. */
  async pop3(command: string): Promise<string> {
    this.write(`${command}\r\n`);
    return this.readLine();
  }

  close(): void {
    this.socket.destroy();
  }
}

/**
 * An IMAP astring for `value`: a quoted string when it is plain ASCII (with `"` and `\`
 * escaped), else a non-synchronizing literal `{N+}` (needs LITERAL+, which Dovecot offers).
 */
export function imapString(value: string): Buffer {
  if (/^[\x20-\x7e]*$/.test(value)) {
    return Buffer.from(`"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`);
  }
  const bytes = Buffer.from(value, 'utf8');
  return Buffer.concat([Buffer.from(`{${bytes.length}+}\r\n`), bytes]);
}

/** `LOGIN user password` as bytes, with quoting or literals as needed. */
export function imapLoginCommand(user: string, password: string): Buffer {
  return Buffer.concat([
    Buffer.from('LOGIN '),
    imapString(user),
    Buffer.from(' '),
    imapString(password),
  ]);
}

/** SASL PLAIN initial response: base64 of `authzid NUL authcid NUL password`. */
export function saslPlain(authcid: string, password: string, authzid = ''): string {
  return Buffer.from(`${authzid}\0${authcid}\0${password}`, 'utf8').toString('base64');
}

/** XOAUTH2 initial response (Google's format): base64 of `user=U^Aauth=Bearer T^A^A`. */
export function saslXoauth2(user: string, token: string): string {
  return Buffer.from(`user=${user}\x01auth=Bearer ${token}\x01\x01`, 'utf8').toString('base64');
}

/**
 * OAUTHBEARER initial response (RFC 7628 section 3.1): base64 of the GS2 header `n,a=U,` and
 * the `host`, `port` and `auth` key-value pairs, each ended by ^A, then a final ^A.
 * (RFC 5801 section 4: `,` and `=` in the name are written `=2C` and `=3D`.)
 */
export function saslOauthbearer(user: string, token: string, host: string, port: number): string {
  const authzid = user.replace(/=/g, '=3D').replace(/,/g, '=2C');
  const message = `n,a=${authzid},\x01host=${host}\x01port=${port}\x01auth=Bearer ${token}\x01\x01`;
  return Buffer.from(message, 'utf8').toString('base64');
}
