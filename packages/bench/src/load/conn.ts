// A minimal, allocation-light IMAP/POP3 client connection for the load generator: it splits
// the stream into lines, skips IMAP literals ({N}) without copying them, and finds the end of a
// POP3 multi-line answer by searching for CRLF.CRLF in place. Only what the benchmark sends.
import * as net from 'node:net';

const TERMINATOR = Buffer.from('\r\n.\r\n', 'latin1');
const CRLF = Buffer.from('\r\n', 'latin1');
const LITERAL = /\{(\d+)\+?\}\r?$/;

type LineHandler = (line: string) => boolean;

export class ConnError extends Error {}

export class Conn {
  /** Bytes received on this connection (all of them, literals included). */
  bytesIn = 0;
  private partial: Buffer | undefined;
  private skip = 0;
  private dotMode = false;
  private tail: Buffer = CRLF;
  private handler: LineHandler | undefined;
  private resolve: ((line: string) => void) | undefined;
  private reject: ((error: Error) => void) | undefined;
  private lastLine = '';
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private closeWaiters: (() => void)[] = [];

  private constructor(readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (error) => this.fail(error));
    socket.on('close', () => {
      this.closed = true;
      this.fail(new ConnError('connection closed'));
      for (const w of this.closeWaiters.splice(0)) w();
    });
  }

  /** Connect (from `localAddress` when given) and wait for the connection. */
  static connect(
    host: string,
    port: number,
    localAddress: string | undefined,
    timeoutMs: number,
  ): Promise<Conn> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port, localAddress });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new ConnError(`connect timeout ${host}:${port}`));
      }, timeoutMs);
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new Conn(socket));
      });
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private fail(error: Error): void {
    const reject = this.reject;
    this.clearWait();
    reject?.(error);
  }

  private clearWait(): void {
    this.handler = undefined;
    this.resolve = undefined;
    this.reject = undefined;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private finish(line: string): void {
    const resolve = this.resolve;
    this.clearWait();
    resolve?.(line);
  }

  private onData(chunk: Buffer): void {
    this.bytesIn += chunk.length;
    let pos = 0;
    const n = chunk.length;
    while (pos < n) {
      if (this.skip > 0) {
        const take = Math.min(this.skip, n - pos);
        this.skip -= take;
        pos += take;
        continue;
      }
      if (this.dotMode) {
        const boundary = Buffer.concat([this.tail, chunk.subarray(pos, pos + 4)]);
        let end = -1;
        const b = boundary.indexOf(TERMINATOR);
        if (b >= 0) end = pos + b + TERMINATOR.length - this.tail.length;
        else {
          const i = chunk.indexOf(TERMINATOR, pos);
          if (i >= 0) end = i + TERMINATOR.length;
        }
        if (end >= 0) {
          this.dotMode = false;
          this.tail = CRLF;
          pos = end;
          this.finish(this.lastLine);
          continue;
        }
        const rest = n - pos;
        this.tail =
          rest >= 4
            ? chunk.subarray(n - 4)
            : Buffer.concat([this.tail, chunk.subarray(pos)]).subarray(-4);
        pos = n;
        continue;
      }
      const nl = chunk.indexOf(10, pos);
      if (nl < 0) {
        const rest = chunk.subarray(pos);
        this.partial =
          this.partial === undefined ? Buffer.from(rest) : Buffer.concat([this.partial, rest]);
        if (this.partial.length > 1 << 20) this.fail(new ConnError('line too long'));
        return;
      }
      let bytes = chunk.subarray(pos, nl);
      if (this.partial !== undefined) {
        bytes = Buffer.concat([this.partial, bytes]);
        this.partial = undefined;
      }
      pos = nl + 1;
      let line = bytes.toString('latin1');
      if (line.endsWith('\r')) line = line.slice(0, -1);
      const literal = LITERAL.exec(line);
      if (literal !== null) this.skip = Number(literal[1]);
      const handler = this.handler;
      if (handler !== undefined && handler(line)) {
        if (this.dotMode) {
          this.lastLine = line;
          this.tail = CRLF;
        } else this.finish(line);
      }
    }
  }

  /**
   * Send `command` (may be empty: just wait) and resolve with the first line for which
   * `done(line)` is true. Rejects on timeout, error or close.
   */
  request(command: string, done: LineHandler, timeoutMs: number): Promise<string> {
    if (this.closed) return Promise.reject(new ConnError('connection closed'));
    if (this.resolve !== undefined) return Promise.reject(new ConnError('request in flight'));
    return new Promise<string>((resolve, reject) => {
      this.handler = done;
      this.resolve = resolve;
      this.reject = reject;
      this.timer = setTimeout(
        () =>
          this.fail(new ConnError(`timeout waiting after ${JSON.stringify(command.slice(0, 12))}`)),
        timeoutMs,
      );
      if (command !== '') this.socket.write(command);
    });
  }

  /** Wait for the greeting line (`* OK` or `+OK`). */
  async greeting(timeoutMs: number): Promise<string> {
    const line = await this.request('', () => true, timeoutMs);
    if (!line.startsWith('* OK') && !line.startsWith('+OK')) {
      throw new ConnError(`bad greeting: ${line.slice(0, 80)}`);
    }
    return line;
  }

  /** IMAP: send `TAG command`, resolve with the tagged answer; throws unless it is OK. */
  async imap(tag: string, command: string, timeoutMs: number): Promise<string> {
    const prefix = `${tag} `;
    const line = await this.request(
      `${tag} ${command}\r\n`,
      (l) => l.startsWith(prefix),
      timeoutMs,
    );
    if (!line.startsWith(`${tag} OK`))
      throw new ConnError(`${command.split(' ')[0]}: ${line.slice(0, 120)}`);
    return line;
  }

  /** POP3: one-line answer; throws unless +OK. */
  async pop(command: string, timeoutMs: number): Promise<string> {
    const line = await this.request(`${command}\r\n`, () => true, timeoutMs);
    if (!line.startsWith('+OK'))
      throw new ConnError(`${command.split(' ')[0]}: ${line.slice(0, 120)}`);
    return line;
  }

  /** POP3: multi-line answer (RETR, LIST …); resolves after the terminating dot line. */
  async popMulti(command: string, timeoutMs: number): Promise<string> {
    let failed: string | undefined;
    const line = await this.request(
      `${command}\r\n`,
      (l) => {
        if (l.startsWith('+OK')) this.dotMode = true;
        else failed = l;
        return true;
      },
      timeoutMs,
    );
    if (failed !== undefined)
      throw new ConnError(`${command.split(' ')[0]}: ${failed.slice(0, 120)}`);
    return line;
  }

  /** Half-close and wait (bounded) for the peer to close too, then destroy. */
  async close(timeoutMs = 2000): Promise<void> {
    if (this.closed) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.socket.destroy();
        resolve();
      }, timeoutMs);
      this.closeWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
      this.socket.end();
    });
  }

  destroy(): void {
    this.socket.destroy();
  }
}
