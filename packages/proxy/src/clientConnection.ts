/**
 * The client's side of a session (`session.ts`): the socket and its settings, the connect and
 * disconnect log records, bytes queued while logging in, the TLS upgrade (which replaces the
 * socket), the hand-off to the pipe, and closing.
 */

import type { Socket } from 'node:net';
import type { Log, LogFields } from './log.js';
import type { Body } from './dialect.js';
import { MAX_PIPELINED_BYTES, MAX_QUEUED_REPLY_BYTES } from './limits.js';
import type { SessionPhase, SessionTracker } from './metrics/metrics.js';
import { type Farewell, type PipeEnd, type PipeResult, pipe } from './pipe.js';
import type { SessionContext, SessionHandle, SessionSlot } from './server.js';
import { type ClientTlsInfo, upgradeToTls } from './tls/clientTls.js';
import type { ServerTls } from './tls/serverTls.js';
import { certificateRequired } from './tls/settings.js';

/** How long a closing connection may take to read our last words before it is cut. */
const CLOSE_LINGER_MS = 5_000;

/** Bytes of a streamed answer handed to the socket at a time (views of it, not copies). */
const STREAM_SLICE_BYTES = 16 * 1024;

/** What the session does with the socket's events; errors are only logged, here. */
export interface ClientEvents {
  onData(chunk: Buffer): void;
  onEnd(): void;
  onTimeout(): void;
  onClose(): void;
  /** Our queued replies went below MAX_QUEUED_REPLY_BYTES after `writeBlocked`. */
  onDrained(): void;
}

export class ClientConnection {
  private readonly started = Date.now();
  /** The client connection; replaced by its TLS socket after STARTTLS/STLS. */
  private current: Socket;
  private storeSocket: Socket | undefined;
  /** Bytes received while logging in, not yet looked at. */
  private queued: Buffer[] = [];
  private queuedBytes = 0;
  private closedLogged = false;
  /** Parts of a body still to write, after the replies queued now drain (`stream`). */
  private pending: Buffer[] = [];
  /** Set while waiting for the socket's 'drain'. */
  private draining = false;
  /** The session's place in the metrics' session count (`metrics/metrics.ts`). */
  private readonly tracker: SessionTracker;

  constructor(
    socket: Socket,
    private readonly ctx: SessionContext,
    private readonly events: ClientEvents,
  ) {
    this.current = socket;
    this.tracker = ctx.runtime.shared.metrics.sessionStarted();
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    socket.setTimeout(ctx.site.settings.idleTimeoutMs);
    this.attachReader(socket);
    socket.on('error', this.onError);
    socket.on('close', events.onClose);
    ctx.log.at('session', 'connect', 'client connected', {
      client: `${ctx.clientIp}:${ctx.clientPort}`,
      server: `${ctx.serverIp}:${ctx.serverPort}`,
      via: ctx.balancer,
    });
  }

  get socket(): Socket {
    return this.current;
  }

  send(line: string): void {
    this.ctx.log.at('trace', 'response', 'S:', { line });
    this.write(Buffer.from(`${line}\r\n`));
  }

  /**
   * Write a multi-line answer's parts (shared buffers, never copied), as fast as the client reads:
   * MAX_QUEUED_REPLY_BYTES at a time, the rest on 'drain', so a large answer (the spoof
   * message) asked for in a loop costs no more than that.
   */
  stream(body: Body): void {
    for (const part of Buffer.isBuffer(body) ? [body] : body)
      for (let at = 0; at < part.length; at += STREAM_SLICE_BYTES)
        this.pending.push(part.subarray(at, at + STREAM_SLICE_BYTES));
    this.flush();
  }

  /**
   * Before login, the client is read only while our replies to it are under
   * MAX_QUEUED_REPLY_BYTES (as TCP backpressure works after login, `pipe.ts`): a client that
   * sends commands and never reads stops being read, and costs this much.
   */
  get writeBlocked(): boolean {
    return this.pending.length > 0 || this.current.writableLength > MAX_QUEUED_REPLY_BYTES;
  }

  /** Read from the client again, unless our replies are waiting for it to read. */
  resumeReading(): void {
    if (!this.writeBlocked && this.queuedBytes <= MAX_PIPELINED_BYTES) this.current.resume();
  }

  private write(bytes: Buffer): void {
    if (this.pending.length > 0) this.pending.push(bytes);
    else this.current.write(bytes);
    this.watchDrain();
  }

  private flush(): void {
    const socket = this.current;
    while (this.pending.length > 0 && socket.writableLength <= MAX_QUEUED_REPLY_BYTES) {
      socket.write(this.pending.shift() as Buffer);
    }
    this.watchDrain();
  }

  /** When blocked, stop reading and wait for 'drain' (then flush, and tell the session). */
  private watchDrain(): void {
    if (!this.writeBlocked || this.draining) return;
    const socket = this.current;
    this.draining = true;
    socket.pause();
    socket.once('drain', () => {
      this.draining = false;
      if (socket !== this.current || socket.destroyed) return;
      this.flush();
      if (!this.writeBlocked) this.events.onDrained();
    });
  }

  /** The session moved to another phase (metrics). */
  phase(phase: SessionPhase, store?: string): void {
    this.tracker.phase(phase, store);
  }

  /** The grace period is over: cut both connections. */
  abort(): void {
    this.storeSocket?.destroy();
    this.current.destroy();
  }

  private readonly onError = (e: NodeJS.ErrnoException): void => {
    this.ctx.log.at('refusal', 'client', 'client connection error', { error: e.code ?? e.message });
  };

  private attachReader(socket: Socket): void {
    socket.on('data', this.events.onData);
    socket.on('end', this.events.onEnd);
    socket.on('timeout', this.events.onTimeout);
  }

  private detachReader(socket: Socket): void {
    socket.pause();
    socket.off('data', this.events.onData);
    socket.off('end', this.events.onEnd);
    socket.off('timeout', this.events.onTimeout);
  }

  // ---- Bytes pipelined while logging in ----

  /** A chunk that arrived while logging in (or while our replies wait for the client). */
  queue(chunk: Buffer): void {
    this.queueRest(chunk);
    // Bounded: beyond this, stop reading and let TCP push back on the client.
    if (this.queuedBytes > MAX_PIPELINED_BYTES && !this.current.isPaused()) {
      this.ctx.runtime.shared.metrics.refused('pipelined-bytes');
      this.current.pause();
    }
  }

  /** What was left of a chunk when its first command started the login. */
  queueRest(rest: Buffer): void {
    this.queued.push(rest);
    this.queuedBytes += rest.length;
  }

  /**
   * Back to reading commands after a refused login (or into the spoof inbox): restart the idle
   * timer, then give the session the chunks queued meanwhile, in order, as if they arrived now
   * (they may end the session).
   */
  readQueued(idleTimeoutMs: number): void {
    this.current.setTimeout(idleTimeoutMs);
    for (const chunk of this.takeQueued()) this.events.onData(chunk);
  }

  /** The queued chunks, in order; the queue is empty afterwards. */
  private takeQueued(): Buffer[] {
    const queued = this.queued;
    this.queued = [];
    this.queuedBytes = 0;
    return queued;
  }

  // ---- TLS upgrade (RFC 3501 §6.2.1, RFC 2595 §4) ----

  /**
   * Stop reading the plain socket, say `okLine` on it, and wrap it in TLS. What the client sent
   * after its STARTTLS/STLS line is never read (CVE-2011-0411): the plain socket's reader is
   * detached before anything else. A failed handshake closes the connection; a completed one
   * reads commands again and then calls `secured`.
   */
  startTls(
    tls: ServerTls,
    /** The log records' phase: the command's name. */
    phase: string,
    okLine: string,
    secured: (info: ClientTlsInfo) => void,
  ): void {
    const plain = this.current;
    this.detachReader(plain);
    plain.off('error', this.onError);
    plain.off('close', this.events.onClose);
    plain.setTimeout(0);
    this.send(okLine);
    const { log } = this.ctx;
    const { settings } = this.ctx.site;
    const { socket, handshake } = upgradeToTls(
      plain,
      tls,
      settings.idleTimeoutMs,
      settings.protocol,
      certificateRequired(settings.security, 'starttls'),
    );
    this.current = socket;
    socket.on('error', this.onError);
    socket.on('close', this.events.onClose);
    void handshake.then((r) => {
      this.ctx.runtime.shared.metrics.tlsHandshake('starttls', r.ok);
      if (!r.ok) {
        log.at('refusal', phase, 'TLS handshake failed', { error: r.reason });
        socket.destroy();
        return;
      }
      log.at('session', phase, 'TLS established', {
        protocol: r.info.protocol,
        cipher: r.info.cipher,
        certificate: r.info.peer?.subject ?? null,
        verified: r.info.peer?.verified ?? null,
      });
      socket.setTimeout(settings.idleTimeoutMs);
      this.attachReader(socket);
      secured(r.info);
    });
  }

  // ---- After login ----

  /**
   * The store accepted the login: stop reading commands and join the client to the store, bytes
   * the client pipelined meanwhile first. From here the server holds the pipe, not the session:
   * the session's listeners come off the socket and the 'client disconnected' record is fixed
   * now, so the session, its framer and everything of the login phase can be collected (an idle
   * piped session keeps little beyond its two sockets).
   */
  pipe(
    store: Socket,
    leftover: Buffer,
    farewell: Farewell | undefined,
    sessionFields: LogFields,
  ): void {
    this.storeSocket = store;
    const client = this.current;
    this.detachReader(client);
    client.off('error', this.onError);
    client.off('close', this.events.onClose);
    const fromClient = Buffer.concat(this.takeQueued());
    const opts = { client, store, fromClient, fromStore: leftover };
    const { ctx } = this;
    const piped = new PipedSession(
      client,
      store,
      ctx.log,
      this.tracker,
      ctx.slot,
      `${ctx.clientIp}:${ctx.clientPort}`,
      this.started,
      sessionFields,
    );
    pipe(farewell === undefined ? opts : { ...opts, farewell }, piped);
    this.closedLogged = true;
    ctx.slot.handOff(piped);
  }

  // ---- Closing ----

  /**
   * Say `line` (if any), close our side, and cut the connection if the client lingers.
   * `stopReading`: a client that floods (commands whose answers it never reads, a line without
   * end) would go on sending for the whole linger, and we would go on reading it only to drop it;
   * its writes block instead. (Not for every close: a client that closes at once after our last
   * words is seen doing so only while we read.)
   */
  close(line: string | undefined, stopReading = false): void {
    if (line !== undefined) this.send(line);
    if (stopReading) this.current.pause();
    this.current.end();
    setTimeout(() => this.current.destroy(), CLOSE_LINGER_MS).unref();
  }

  /** The 'client disconnected' record, with the session's own fields (user, store, …). */
  logClosed(sessionFields: LogFields): void {
    if (this.closedLogged) return;
    this.closedLogged = true;
    this.ctx.log.at(
      'session',
      'disconnect',
      'client disconnected',
      closedRecord(
        {
          client: `${this.ctx.clientIp}:${this.ctx.clientPort}`,
          started: this.started,
          fields: sessionFields,
        },
        {},
      ),
    );
    this.tracker.end({ fromClient: this.current.bytesRead, toClient: this.current.bytesWritten });
    this.ctx.slot.ended();
  }
}

/** What the 'client disconnected' record says of the session, before the pipe's own fields. */
interface SessionRecord {
  /** `ip:port` */
  client: string;
  /** Date.now() at the connection */
  started: number;
  /** The session's own fields (user, store, …). */
  fields: LogFields;
}

function closedRecord(session: SessionRecord, fields: LogFields): LogFields {
  return {
    client: session.client,
    ...session.fields,
    seconds: Math.round((Date.now() - session.started) / 100) / 10,
    ...fields,
  };
}

/**
 * A logged-in session, as the server holds it once the pipe runs: what the pipe's end needs for
 * the 'client disconnected' record and the metrics, in one object (no closures, no promise).
 */
class PipedSession implements SessionHandle, PipeEnd, SessionRecord {
  constructor(
    private readonly clientSocket: Socket,
    private readonly storeSocket: Socket,
    private readonly log: Log,
    private readonly tracker: SessionTracker,
    private readonly slot: SessionSlot,
    readonly client: string,
    readonly started: number,
    readonly fields: LogFields,
  ) {}

  /** A logged-in session finishes on its own within the grace period. */
  shutdown(): void {}

  abort(): void {
    this.storeSocket.destroy();
    this.clientSocket.destroy();
  }

  pipeEnded(result: PipeResult): void {
    this.log.at(
      'session',
      'disconnect',
      'client disconnected',
      closedRecord(this, {
        toStore: result.toStore,
        toClient: result.toClient,
        closedBy: result.closedBy,
        error: result.error,
      }),
    );
    const { clientSocket } = this;
    this.tracker.end({ fromClient: clientSocket.bytesRead, toClient: clientSocket.bytesWritten });
    this.slot.ended();
  }
}
