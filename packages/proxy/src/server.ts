/**
 * The listener, protocol-neutral: accepts connections on ListenPort (`[IP:]port`), gives each a
 * session id, the runtime current at that moment and the site of its local address, and hands it
 * to the protocol's session. On SIGTERM (see
 * `runServer` in `main.ts`) it stops accepting, asks every session to finish (pre-login sessions
 * are told goodbye at once; logged-in ones keep running), and after SHUTDOWN_GRACE_MS closes the
 * rest.
 *
 * Data flows one way: listener → pre-login session → directory → store → pipe.
 */

import { readFileSync } from 'node:fs';
import { type Server, type Socket, createServer } from 'node:net';
import type { Protocol } from '@mmp/config';
import { plainAddress } from './clientAddress.js';
import { type ProxiedOrigin, readProxyHeader } from './proxyProtocol.js';
import { TLSSocket } from 'node:tls';
import {
  type Admitted,
  ConnectionCounts,
  type Counted,
  FullServerReport,
  type Refused,
  admitConnection,
  descriptorCap,
} from './clientLimits.js';
import { FULL_REPORT_MS, SHUTDOWN_GRACE_MS } from './limits.js';
import { type ClientTlsInfo, describeTls } from './tls/clientTls.js';
import { type ImplicitTls, implicitTlsAcceptor } from './tls/listener.js';
import { certificateRequired } from './tls/settings.js';
import type { Log } from './log.js';
import type { ProxyRuntime, Site } from './proxyRuntime.js';
import type { ProxySettings } from './settings.js';

/** Everything a session receives from the listener. */
export interface SessionContext {
  /** `0x…`, unique within the process's life (the guide's "(sid 0x…)"). */
  id: string;
  log: Log;
  /** The runtime current when the connection was accepted; the session keeps it to the end. */
  runtime: ProxyRuntime;
  /** This connection's site: its settings (a virtual domain's for its address), directory… */
  site: Site;
  /** The client's address: the PROXY protocol header's on a listener that expects one. */
  clientIp: string;
  clientPort: number;
  serverIp: string;
  serverPort: number;
  /** Set when the connection came through a balancer (ProxyProtocol): its end, `ip:port`. */
  balancer?: string;
  /** Set when a connection limit refuses this connection: the session says so and closes
   * (`clientLimits.ts`). */
  refused?: Refused;
  /** Set when the connection came through SSLListenPort: its completed TLS handshake. */
  secure?: ClientTlsInfo;
  /** The server's hold on this session. */
  slot: SessionSlot;
}

/**
 * The server's hold on one session, from its start to its end: one object with methods, not
 * closures and a promise per session, which an idle piped session would keep for hours (issue 18).
 */
export interface SessionSlot {
  /**
   * The session became a pipe: from now on `piped` stands for it (shutdown, abort), so that
   * nothing of the login phase stays reachable from the server.
   */
  handOff(piped: SessionHandle): void;
  /** The session's connections are closed (the first call counts; later ones do nothing). */
  ended(): void;
}

export interface SessionHandle {
  /** Shutdown began: finish soon (pre-login sessions say goodbye and close). */
  shutdown(): void;
  /** The grace period is over: close now. */
  abort(): void;
}

export type StartSession = (socket: Socket, ctx: SessionContext) => SessionHandle;

/** Session ids as the guide prints them: `0x` and hex. Starts at a random point so that ids of a
 * restarted process do not repeat those already in the day's log. */
function sessionIds(start = Math.floor(Math.random() * 0x10000) * 0x10000): () => string {
  let n = start;
  return () => `0x${(n++ >>> 0).toString(16)}`;
}

export interface ProxyServerOptions {
  protocol: Protocol;
  /** The first runtime (`use` replaces it for later connections). */
  runtime: ProxyRuntime;
  log: Log;
  startSession: StartSession;
  graceMs?: number;
  /** The text of /proc/self/limits (the descriptor limit caps MaxClientConnections); read from
   * the system when absent. */
  procLimits?: string | undefined;
}

function readProcLimits(): string | undefined {
  try {
    return readFileSync('/proc/self/limits', 'utf8');
  } catch {
    return undefined;
  }
}

/** The sessions a server holds, and the stops that wait for none to be left. */
class LiveSessions {
  readonly all = new Set<SessionHandle>();
  private emptied: (() => void)[] = [];

  add(handle: SessionHandle): void {
    this.all.add(handle);
  }

  remove(handle: SessionHandle): void {
    this.all.delete(handle);
    if (this.all.size === 0) for (const resolve of this.emptied.splice(0)) resolve();
  }

  /** Settles once no session is left. */
  none(): Promise<void> {
    if (this.all.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.emptied.push(resolve));
  }
}

/** `SessionSlot`: `current` is the one reference the server keeps, the session, then its pipe. */
class Slot implements SessionSlot {
  private current: SessionHandle | undefined;
  private over = false;

  constructor(
    private readonly sessions: LiveSessions,
    /** The connection's place in the connection counts (`clientLimits.ts`). */
    private readonly counted: Counted | undefined,
  ) {}

  /** The session started (unless it already handed off or ended meanwhile). */
  started(handle: SessionHandle): void {
    if (this.over || this.current !== undefined) return;
    this.current = handle;
    this.sessions.add(handle);
  }

  handOff(piped: SessionHandle): void {
    if (this.over) return;
    if (this.current !== undefined) this.sessions.remove(this.current);
    this.current = piped;
    this.sessions.add(piped);
  }

  ended(): void {
    if (this.over) return;
    this.over = true;
    this.counted?.release();
    const current = this.current;
    this.current = undefined;
    if (current !== undefined) this.sessions.remove(current);
  }
}

export class ProxyServer {
  private readonly server: Server;
  private readonly sessions = new LiveSessions();
  private readonly nextId = sessionIds();
  private stopping: Promise<void> | undefined;
  /** Set by a stop that tells sessions goodbye (SIGTERM), not by a drain. */
  private goodbye = false;
  /** Accepted connections waiting for their admission (an answer from the primary). */
  private readonly admitting = new Set<Promise<void>>();
  private current: ProxyRuntime;
  /** Client connections this process holds, against its descriptor cap (`clientLimits.ts`; the
   * server's counts, MaxClientConnections and MaxConnectionsPerAddress, are the primary's). */
  private readonly connections: ConnectionCounts;
  /** Refusals of a full server, said at every LogLevel at most once a minute. */
  private readonly full: FullServerReport;

  constructor(private readonly options: ProxyServerOptions) {
    this.current = options.runtime;
    const { connectionLimits, numThreads } = options.runtime.global.settings;
    const max = descriptorCap(Number.MAX_SAFE_INTEGER, options.procLimits ?? readProcLimits());
    // This process's share of MaxClientConnections, for the warning only.
    const share = Math.ceil(connectionLimits.max / Math.max(1, numThreads));
    if (max < share)
      options.log.at('lifecycle', 'limits', 'the descriptor limit caps client connections', {
        MaxClientConnections: connectionLimits.max,
        cap: max,
      });
    this.full = new FullServerReport(options.log, FULL_REPORT_MS);
    this.connections = new ConnectionCounts({
      max,
      perAddress: Number.MAX_SAFE_INTEGER,
      prefix4: 32,
      exempt: [],
    });
    // allowHalfOpen: a client may half-close after a pipelined LOGOUT and still read the answer.
    this.server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) =>
      this.acceptPlain(socket),
    );
  }

  /** The runtime new connections get. */
  get runtime(): ProxyRuntime {
    return this.current;
  }

  /**
   * Give connections accepted from now on this runtime; sessions already running keep the one
   * they started with (a reload never changes a session in flight).
   */
  use(runtime: ProxyRuntime): void {
    this.current = runtime;
  }

  /** Listen on ListenPort itself (in-process tests; ImapProxy and PopProxy take their sockets from
   * `listeners.ts` through `adopt`). Resolves with the bound address, or rejects. */
  listen(): Promise<{ host: string; port: number }> {
    const { listen } = this.current.global.settings;
    return new Promise((resolve, reject) => {
      const onError = (e: Error): void => reject(e);
      this.server.once('error', onError);
      this.server.listen({ port: listen.port, host: listen.host }, () => {
        this.server.off('error', onError);
        this.server.on('error', (e) =>
          this.options.log.error('listener', 'listener error', { error: e.message }),
        );
        const a = this.server.address();
        if (a === null || typeof a === 'string')
          return resolve({ host: String(a), port: listen.port });
        resolve({ host: a.address, port: a.port });
      });
    });
  }

  /** What an implicit-TLS port needs from a runtime: its certificates, Timeout, the sites. */
  private implicitTls(runtime: ProxyRuntime): ImplicitTls | undefined {
    const { serverTls, global } = runtime;
    if (serverTls === undefined) return undefined;
    return {
      tls: serverTls,
      protocol: this.options.protocol,
      handshakeTimeoutMs: global.settings.idleTimeoutMs,
      requiresCertificate: (localAddress) =>
        certificateRequired(this.current.siteFor(localAddress).settings.security, 'implicit'),
      log: this.options.log,
      beforeHandshake: (socket, proceed) => {
        const expects = this.proxyProtocolAt(socket);
        if (!expects.sslListen) return proceed(undefined);
        readProxyHeader(socket, expects, this.options.log, proceed);
      },
      onSecureSocket: (socket, origin) => this.accept(socket, origin),
      onHandshake: (ok) => this.current.shared.metrics.tlsHandshake('implicit', ok),
    };
  }

  /**
   * A connection accepted by `listeners.ts` (in this process, or in the primary and sent here):
   * serve it with the runtime current now, through its PROXY header and the implicit-TLS
   * handshake first when they are due (that runtime's certificates: a reload's new ones serve
   * new clients without a new socket).
   */
  adopt(socket: Socket, tls: boolean): void {
    if (this.stopping !== undefined) {
      socket.destroy();
      return;
    }
    if (!tls) return this.acceptPlain(socket);
    const accept = this.tlsAcceptorFor(this.current);
    if (accept === undefined) socket.destroy();
    else accept(socket);
  }

  /** The implicit-TLS acceptor of the runtime new connections get (made once per runtime). */
  private tlsAcceptor: { runtime: ProxyRuntime; accept: (socket: Socket) => void } | undefined;

  private tlsAcceptorFor(runtime: ProxyRuntime): ((socket: Socket) => void) | undefined {
    if (this.tlsAcceptor?.runtime === runtime) return this.tlsAcceptor.accept;
    const tls = this.implicitTls(runtime);
    if (tls === undefined) return undefined;
    const accept = implicitTlsAcceptor(tls);
    this.tlsAcceptor = { runtime, accept };
    return accept;
  }

  /**
   * Drain (SIGQUIT, or the old process after a hand-over): accept nothing more, tell no session
   * anything, let every session (logging in or piped) run until it ends or `deadlineMs` passes,
   * then close the rest. The listeners are their owner's to close (`listeners.ts`).
   */
  drain(deadlineMs: number): Promise<void> {
    // /healthz says 503 from now on: balancers send new clients elsewhere.
    this.current.shared.metrics.setDraining(true);
    this.stopping ??= this.doStop({ graceMs: deadlineMs, tellSessions: false });
    return this.stopping;
  }

  get sessionCount(): number {
    return this.sessions.all.size;
  }

  /** Stop accepting, let sessions finish for the grace period, then close them. Idempotent. */
  stop(): Promise<void> {
    this.current.shared.metrics.setDraining(true);
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  /** Close every session at once (a second SIGTERM during the grace period). */
  abortAll(): void {
    for (const s of this.sessions.all) s.abort();
  }

  private async doStop(
    o: { graceMs: number; tellSessions: boolean } = {
      graceMs: this.options.graceMs ?? SHUTDOWN_GRACE_MS,
      tellSessions: true,
    },
  ): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.goodbye = o.tellSessions;
    await Promise.all(this.admitting);
    this.full.close();
    if (o.tellSessions) for (const s of this.sessions.all) s.shutdown();
    const all = this.sessions.none();
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<'grace'>((resolve) => {
      timer = setTimeout(() => resolve('grace'), o.graceMs);
    });
    const first = await Promise.race([all.then(() => 'done' as const), grace]);
    if (timer !== undefined) clearTimeout(timer);
    if (first === 'grace') {
      this.options.log.at(
        'lifecycle',
        'shutdown',
        'grace period over, closing remaining sessions',
        {
          sessions: this.sessions.all.size,
        },
      );
      for (const s of this.sessions.all) s.abort();
      await all;
    }
    await closed;
  }

  /** ProxyProtocol as the site of the connection's local address says (a vdmap entry's own). */
  private proxyProtocolAt(socket: Socket): ProxySettings['proxyProtocol'] {
    return this.current.siteFor(plainAddress(socket.localAddress)).settings.proxyProtocol;
  }

  /** A connection to ListenPort (or a vdmap address): its PROXY header first, if one is due. */
  private acceptPlain(socket: Socket): void {
    const expects = this.proxyProtocolAt(socket);
    if (!expects.listen) return this.accept(socket);
    readProxyHeader(socket, expects, this.options.log, (origin) => {
      // readProxyHeader paused it; once the session's reader is attached (after the connection
      // limits), it gets the bytes that followed the header first.
      this.accept(socket, origin, () => socket.resume());
    });
  }

  private accept(socket: Socket, origin?: ProxiedOrigin, started?: () => void): void {
    if (this.stopping !== undefined) {
      socket.destroy();
      return;
    }
    const serverIp = plainAddress(socket.localAddress);
    const runtime = this.current;
    const id = this.nextId();
    // A LOCAL header (the balancer's health check) names no client: the connection's own
    // addresses stand, as for a direct client.
    const client = origin?.client;
    const ctx: Omit<SessionContext, 'slot'> = {
      id,
      log: this.options.log.child({ sid: id, proto: this.options.protocol }),
      runtime,
      site: runtime.siteFor(serverIp),
      clientIp: client?.clientIp ?? plainAddress(socket.remoteAddress),
      clientPort: client?.clientPort ?? socket.remotePort ?? 0,
      serverIp,
      serverPort: socket.localPort ?? 0,
      ...(origin === undefined ? {} : { balancer: origin.balancer }),
      ...(socket instanceof TLSSocket ? { secure: describeTls(socket) } : {}),
    };
    this.track(socket, ctx, started);
  }

  /**
   * Count the connection in (`clientLimits.ts`: this process's descriptor cap, then the server's
   * counts, which the primary keeps), then start its session. Counted from accept to close, login
   * phase and pipe alike; a refused connection is greeted with the reason and closed by its
   * session, never dropped in silence.
   */
  private track(
    socket: Socket,
    accepted: Omit<SessionContext, 'slot'>,
    started?: () => void,
  ): void {
    // Until the session listens, a reset must not be an unhandled error.
    const early = (): void => undefined;
    socket.on('error', early);
    const admitted = (a: Admitted): void => {
      socket.off('error', early);
      if (socket.destroyed) {
        if (a.ok) a.release();
        return;
      }
      if (!a.ok && a.refused === 'server-full') this.full.refusedBy(a.limit);
      const ctx = a.ok ? accepted : { ...accepted, refused: a.refused };
      const session = this.start(socket, ctx, a.ok ? a : undefined);
      if (this.goodbye) session.shutdown();
      started?.();
    };
    const answer = admitConnection(
      accepted.runtime.shared.fleet,
      this.connections,
      accepted.clientIp,
    );
    // In one process the counts answer at once (NumThreads 0): the session starts in this turn.
    if (!(answer instanceof Promise)) return admitted(answer);
    // A drain or stop that begins meanwhile does not drop it: it was accepted before the listener
    // closed, so it gets its session (told goodbye at once on a stop), and the stop waits for it.
    const admission = answer.then((a) => {
      this.admitting.delete(admission);
      admitted(a);
    });
    this.admitting.add(admission);
  }

  private start(
    socket: Socket,
    ctx: Omit<SessionContext, 'slot'>,
    counted: Counted | undefined,
  ): SessionHandle {
    const slot = new Slot(this.sessions, counted);
    const handle = this.options.startSession(socket, { ...ctx, slot });
    slot.started(handle);
    return handle;
  }
}
