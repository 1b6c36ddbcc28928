/**
 * Talking to a message store before the pipe starts: connect with a timeout, then a line-oriented
 * conversation for the login replay (IMAP `replay.ts`, POP3 likewise). Protocol-neutral.
 *
 * The conversation reads the store's lines itself (no `readline`: bytes stay bytes, lines are
 * bounded) and keeps whatever the store sent after the last line it consumed, so that nothing is
 * lost when the pipe takes over.
 */

import { type Socket, connect } from 'node:net';
import { type HostPort, type Result, err, ok } from '@mmp/config';
import { MAX_STORE_LINE_BYTES } from './limits.js';
import type { ConnectionAddresses } from './clientAddress.js';
import type { Log } from './log.js';
import {
  StoreReader,
  nextStoreBuffer,
  onStoreRead,
  registerStoreReader,
  storeReaderOf,
} from './storeReads.js';

export type StoreFailure =
  /** The TCP connection could not be made (refused, unreachable, DNS). */
  | { kind: 'unreachable'; detail: string }
  /** No connection or no answer within the time allowed: the store may be hung. */
  | { kind: 'timeout'; detail: string }
  /** The store closed the connection or sent something we cannot use. */
  | { kind: 'broken'; detail: string };

export interface StoreAddress {
  host: string;
  port: number;
}

export function storeAddress(target: HostPort, defaultPort: number): StoreAddress {
  return { host: target.host, port: target.port ?? defaultPort };
}

export function formatAddress(a: StoreAddress): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** Open a TCP connection to a store, giving up after `timeoutMs` (with SSLBacksidePort,
 * `tls/storeTls.ts` connects instead). */
export function connectStore(
  address: StoreAddress,
  timeoutMs: number,
): Promise<Result<Socket, StoreFailure>> {
  // allowHalfOpen: when the client half-closes after LOGOUT, the store's answer must still flow.
  // onread: its reads land in the process's shared buffer (`storeReads.ts`).
  const socket = connect({
    host: address.host,
    port: address.port,
    allowHalfOpen: true,
    onread: { buffer: nextStoreBuffer, callback: onStoreRead },
  });
  registerStoreReader(socket, new StoreReader());
  return settleConnection(socket, 'connect', timeoutMs, 'connection', (e) => ({
    kind: 'unreachable',
    detail: e.code ?? e.message,
  }));
}

/**
 * Wait for a store socket to be ready (`connect`, or `secureConnect` for TLS), within `timeoutMs`.
 * A failure is destroyed and described by `failureOf`; a ready socket gets the options every store
 * connection has and loses this phase's error listener.
 */
export function settleConnection<S extends Socket>(
  socket: S,
  readyEvent: 'connect' | 'secureConnect',
  timeoutMs: number,
  what: string,
  failureOf: (e: NodeJS.ErrnoException) => StoreFailure,
): Promise<Result<S, StoreFailure>> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(err({ kind: 'timeout', detail: `no ${what} within ${timeoutMs} ms` }));
    }, timeoutMs);
    socket.once(readyEvent, () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      socket.setNoDelay(true);
      socket.setKeepAlive(true, 60_000);
      resolve(ok(socket));
    });
    socket.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(err(failureOf(e)));
    });
  });
}

/** What a protocol's replay concluded on one store. */
export type ReplayResult =
  /** Logged in. `answer`: the store's final response (e.g. IMAP `OK [CAPABILITY …] Logged in`). */
  | { kind: 'accepted'; answer: Buffer; untagged?: Buffer }
  /** The store refused the credentials; `answer` is its text, to pass to the client. */
  | { kind: 'refused'; answer: Buffer; untagged?: Buffer }
  /** The store failed before judging the credentials: try the next one. */
  | { kind: 'failed'; failure: StoreFailure };

/** What is replayed to the store to log the user in (`login.ts` decides it by the principal). */
export type StoreLogin =
  /**
   * The user's name and password. `sasl`: the client gave them by AUTHENTICATE / AUTH (POP3
   * replays them the same way, `pop3/replay.ts`).
   */
  | { kind: 'user'; name: Buffer; password: Buffer; sasl: boolean }
  /**
   * The store's master user (StoreAdmin) logs in for the user: SASL PLAIN with the user as the
   * authorization identity (RFC 4616 §2; a Dovecot master user). No password of the user's.
   */
  | { kind: 'master'; user: Buffer; admin: Buffer; password: Buffer }
  /**
   * An OAuth2 bearer token: the client's mechanism (XOAUTH2, OAUTHBEARER) and SASL message, as it
   * sent them (RFC 7628); the store validates the token.
   */
  | { kind: 'bearer'; mechanism: 'XOAUTH2' | 'OAUTHBEARER'; message: Buffer };

/**
 * Say a store's SASL challenge line (`+ …`, RFC 7628 §3.2.2's error) to the client and resolve
 * with the client's reply line, as it sent it (base64 or `*`); undefined when the client left.
 */
export type ChallengeRelay = (challenge: Buffer) => Promise<Buffer | undefined>;

export interface ReplayOptions {
  /** Time for the store's greeting (StoreConnectTimeout). */
  greetingTimeoutMs: number;
  /** Time for each later answer (StoreReplyTimeout). */
  replyTimeoutMs: number;
  /** ForwardClientAddress on: the connection's addresses, told to the store before the login
   * (IMAP ID, POP3 XCLIENT). */
  forwardAddress: ConnectionAddresses | undefined;
  /** A bearer login's challenges go to the client and its replies back (`login.ts`). */
  relay?: ChallengeRelay | undefined;
  /**
   * Told once the store's greeting was read and says OK: the store is alive, and what follows
   * takes as long as the store chooses (Dovecot answers a wrong password only after
   * auth_failure_delay). The attempt limiter frees the login's slot here (`login.ts`).
   */
  greeted?: (() => void) | undefined;
}

/** Replays a login on a connected store (whose greeting has not been read yet): IMAP
 * `imap/replay.ts`, POP3 `pop3/replay.ts`. */
export type Replay = (
  conversation: StoreConversation,
  login: StoreLogin,
  options: ReplayOptions,
  log: Log,
) => Promise<ReplayResult>;

/** RFC 4616 §2: `authzid NUL authcid NUL passwd`, the PLAIN message both replays send. */
export function plainMessage(authzid: Buffer, authcid: Buffer, password: Buffer): Buffer {
  return Buffer.concat([authzid, Buffer.from([0]), authcid, Buffer.from([0]), password]);
}

const LF = 0x0a;
const ignore = (): void => undefined;

/** A line-by-line conversation with a store during the login replay. */
export class StoreConversation {
  private buffered: Buffer = Buffer.alloc(0);
  private waiting: ((line: Result<Buffer, StoreFailure>) => void) | undefined;
  private failure: StoreFailure | undefined;
  private readonly onData = (chunk: Buffer, owned = true): void => {
    this.buffered =
      this.buffered.length === 0
        ? owned
          ? chunk
          : Buffer.from(chunk)
        : Buffer.concat([this.buffered, chunk]);
    this.deliver();
  };
  private readonly onEnd = (): void =>
    this.fail({ kind: 'broken', detail: 'store closed the connection' });
  private readonly onError = (e: NodeJS.ErrnoException): void =>
    this.fail({ kind: 'broken', detail: e.code ?? e.message });

  constructor(readonly socket: Socket) {
    const reader = storeReaderOf(socket);
    if (reader !== undefined) reader.listen(socket, this.onData);
    else socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('error', this.onError);
  }

  /** The next line, CRLF (or LF) removed, within `timeoutMs`. */
  readLine(timeoutMs: number): Promise<Result<Buffer, StoreFailure>> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        resolve(err({ kind: 'timeout', detail: `no answer within ${timeoutMs} ms` }));
      }, timeoutMs);
      this.waiting = (line) => {
        clearTimeout(timer);
        this.waiting = undefined;
        resolve(line);
      };
      this.deliver();
    });
  }

  write(bytes: Buffer | string): void {
    this.socket.write(bytes);
  }

  /**
   * Stop listening and hand the socket over (to the pipe), with the bytes the store sent after
   * the last line read. The socket is paused so that nothing is read until the pipe is attached.
   */
  release(): { socket: Socket; leftover: Buffer } {
    this.socket.pause();
    storeReaderOf(this.socket)?.listen(this.socket, undefined);
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('error', this.onError);
    // Until the pipe attaches its own, an error must not go unheard (it would end the process).
    this.socket.on('error', ignore);
    const leftover = this.buffered;
    this.buffered = Buffer.alloc(0);
    return { socket: this.socket, leftover };
  }

  /** Give up on this store: close the connection. */
  close(): void {
    this.release();
    this.socket.destroy();
  }

  private fail(f: StoreFailure): void {
    this.failure ??= f;
    this.deliver();
  }

  private deliver(): void {
    const waiting = this.waiting;
    if (waiting === undefined) return;
    const lf = this.buffered.indexOf(LF);
    if (lf >= 0) {
      const end = lf > 0 && this.buffered[lf - 1] === 0x0d ? lf - 1 : lf;
      const line = this.buffered.subarray(0, end);
      this.buffered = this.buffered.subarray(lf + 1);
      waiting(ok(line));
      return;
    }
    if (this.buffered.length > MAX_STORE_LINE_BYTES) {
      waiting(err({ kind: 'broken', detail: 'store line too long' }));
      return;
    }
    if (this.failure !== undefined) waiting(err(this.failure));
  }
}

/**
 * Whether a store greets now: `connect` (plain or TLS), then one line within `timeoutMs`, then
 * close. The probe of a store marked down (`attemptLimiter.ts`).
 */
export async function storeGreets(
  connect: () => Promise<Result<Socket, StoreFailure>>,
  timeoutMs: number,
): Promise<boolean> {
  const conn = await connect();
  if (!conn.ok) return false;
  const conversation = new StoreConversation(conn.value);
  const line = await conversation.readLine(timeoutMs);
  conversation.close();
  return line.ok;
}
