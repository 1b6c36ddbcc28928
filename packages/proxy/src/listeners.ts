/**
 * The listening sockets, owned by the process that was started (the root primary, or the one
 * process): ListenPort, SSLListenPort and every vdmap address. TLS is done by whoever serves the
 * connection, with the runtime current there, so a reload's new certificate needs no new socket.
 *
 * Who accepts (`ListenerSink`): the one process accepts itself and gives each connection to its
 * server in the same turn (`ProxyServer.adopt`). A primary binds each socket (as root: ports below
 * 1024, a vdmap's new address on SIGHUP) and shares it with every worker, which accepts on it
 * (`workers.ts`); the primary never polls it. It used to accept each connection and send it over
 * the cluster channel to a worker in turn: two channel messages and two socket objects per
 * connection (issue 18), and a busy or stopped primary stalled every new client. The kernel now
 * queues connections on the socket until a worker takes one, so a worker being replaced loses
 * none.
 *
 * Owning the sockets here, rather than in node:cluster, is what lets this process re-open the
 * vdmap's addresses as root on SIGHUP, stop listening while sessions go on (drain, SIGQUIT), and
 * pass the very sockets to a new executable (SIGUSR2: `inheritedFds`/`handOver`), as nginx does.
 */

import * as net from 'node:net';
import type { Server, Socket } from 'node:net';
import { lookup } from 'node:dns/promises';
import { getSystemErrorMap } from 'node:util';
import { type Result, err, ok } from '@mmp/config';
import type { Log } from './log.js';
import type { ProxyRuntime } from './proxyRuntime.js';
import { domainListeners } from './vdomain/table.js';

export interface ListenerSpec {
  /** What asked for it, for messages: `ListenPort`, `SSLListenPort`, `vdmap NAME`. */
  readonly what: string;
  readonly host: string | undefined;
  readonly port: number;
  /** An implicit-TLS port (SSLListenPort, or a vdmap address on its port). */
  readonly tls: boolean;
}

/** A listener's name in logs and across a hand-over: `tls 127.0.0.1:993`, `*:143`. */
export function listenerKey(l: ListenerSpec): string {
  return `${l.tls ? 'tls ' : ''}${l.host ?? '*'}:${l.port}`;
}

/** Every listener a runtime needs: ListenPort, SSLListenPort (SSLEnable), the vdmap's addresses. */
export function listenersFor(runtime: ProxyRuntime): ListenerSpec[] {
  const { listen, security } = runtime.global.settings;
  const out: ListenerSpec[] = [
    { what: 'ListenPort', host: listen.host, port: listen.port, tls: false },
  ];
  if (runtime.serverTls !== undefined)
    out.push({
      what: 'SSLListenPort',
      host: security.listen.host,
      port: security.listen.port,
      tls: true,
    });
  for (const l of domainListeners(runtime))
    out.push({
      what: `vdmap ${l.domain.name}`,
      host: l.address.host,
      port: l.address.port,
      tls: l.tls,
    });
  return out;
}

/** The environment variable naming inherited listeners: `key=fd` pairs, tab-separated. */
export const INHERITED_LISTENERS_ENV = 'MMP_LISTENERS';

/** `MMP_LISTENERS` read: each listener key with the descriptor it arrived on. */
export function inheritedFds(
  env: Readonly<Record<string, string | undefined>>,
): Map<string, number> {
  const out = new Map<string, number>();
  for (const pair of (env[INHERITED_LISTENERS_ENV] ?? '').split('\t')) {
    const at = pair.lastIndexOf('=');
    const fd = Number(pair.slice(at + 1));
    if (at > 0 && Number.isInteger(fd) && fd > 2) out.set(pair.slice(0, at), fd);
  }
  return out;
}

function fdOf(server: Server): number | undefined {
  // libuv's descriptor of a listening socket: Node has no public accessor; every Node release
  // since 0.x has this one on Unix.
  const fd = (server as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/**
 * A bound socket that this process holds without accepting on it: Node's TCP handle, which
 * `net.Server.listen(handle)` (in a worker, where it becomes listening) and a cluster channel's
 * `send(message, handle)` take.
 */
export interface BoundSocket {
  readonly fd: number;
  getsockname(out: { address?: string; port?: number }): number;
  close(): void;
}

/**
 * Node's own helper for node:cluster's shared handles (`net._createServerHandle`, exported for
 * it since Node 0.x, still in 22 and 24): a TCP handle bound to an address, or opened on an
 * inherited descriptor, and not listening; a negative errno when it fails. With no host it binds
 * as `listen()` without a host does (`::`, else `0.0.0.0`).
 */
type CreateServerHandle = (
  address: string | null,
  port: number,
  addressType: number,
  fd?: number,
  flags?: number,
) => BoundSocket | number;

function createServerHandle(): CreateServerHandle {
  const f = (net as unknown as { _createServerHandle?: unknown })._createServerHandle;
  if (typeof f !== 'function')
    throw new Error('this Node.js has no net._createServerHandle: workers cannot share listeners');
  return f as CreateServerHandle;
}

function errnoText(code: number): string {
  const known = getSystemErrorMap().get(code);
  return known === undefined ? `error ${code}` : `${known[0]}: ${known[1]}`;
}

/** Bind `spec` (or open the inherited descriptor `fd`) without listening. */
async function bindSocket(
  spec: ListenerSpec,
  fd: number | undefined,
): Promise<Result<BoundSocket, string>> {
  const create = createServerHandle();
  let address: string | null = null;
  let family = 4;
  if (fd === undefined && spec.host !== undefined) {
    const kind = net.isIP(spec.host);
    if (kind !== 0) {
      address = spec.host;
      family = kind;
    } else {
      try {
        const found = await lookup(spec.host);
        address = found.address;
        family = found.family;
      } catch (e) {
        return err(`cannot resolve ${spec.host}: ${(e as Error).message}`);
      }
    }
  }
  // An inherited descriptor takes no address (Node asserts it is given none).
  const handle = fd === undefined ? create(address, spec.port, family) : create(null, 0, 4, fd);
  if (typeof handle === 'number')
    return err(`${errnoText(handle)} ${spec.host ?? '*'}:${spec.port}`);
  return ok(handle);
}

/** This process serves the connections: accept here, each connection to its session at once. */
interface AcceptSink {
  readonly kind: 'accept';
  readonly onConnection: (socket: Socket, tls: boolean) => void;
}

/**
 * Workers serve them: each bound socket is shared with every worker, which listens on it and
 * accepts (ok once every ready worker listens); `unshare` makes them stop.
 */
interface ShareSink {
  readonly kind: 'share';
  share(key: string, socket: BoundSocket, tls: boolean): Promise<Result<void, string>>;
  unshare(key: string): void;
}

/** Who takes the connections of the listeners. */
export type ListenerSink = AcceptSink | ShareSink;

type Open =
  | { readonly spec: ListenerSpec; readonly kind: 'accept'; readonly server: Server }
  | { readonly spec: ListenerSpec; readonly kind: 'share'; readonly socket: BoundSocket };

export class Listeners {
  private readonly open = new Map<string, Open>();
  private closed = false;

  constructor(
    private readonly sink: ListenerSink,
    private readonly log: Log,
    /** Descriptors inherited from the process this one replaces (SIGUSR2), by key. */
    private readonly inherited: Map<string, number> = new Map(),
  ) {}

  get keys(): string[] {
    return [...this.open.keys()];
  }

  /** Open what is not open yet (of `specs`), close what is open but not in `specs`. */
  async follow(specs: readonly ListenerSpec[]): Promise<Result<void, string>> {
    const wanted = new Map(specs.map((s) => [listenerKey(s), s]));
    for (const [key, listener] of this.open)
      if (!wanted.has(key)) {
        this.open.delete(key);
        this.shut(key, listener);
        this.log.at('lifecycle', 'reload', 'stopped listening', { listener: key });
      }
    for (const [key, spec] of wanted) {
      if (this.open.has(key) || this.closed) continue;
      const fd = this.inherited.get(key);
      this.inherited.delete(key);
      const sink = this.sink;
      const r =
        sink.kind === 'accept'
          ? await this.listen(sink, key, spec, fd)
          : await this.share(sink, key, spec, fd);
      if (!r.ok) return err(`cannot listen on ${spec.what} ${key}: ${r.error}`);
      this.log.at('lifecycle', 'start', 'listening', {
        listener: key,
        ...(fd === undefined ? {} : { inheritedFd: fd }),
      });
    }
    return ok(undefined);
  }

  private shut(key: string, listener: Open): void {
    if (listener.kind === 'accept') return void listener.server.close();
    if (this.sink.kind === 'share') this.sink.unshare(key);
    listener.socket.close();
  }

  private listen(
    sink: AcceptSink,
    key: string,
    spec: ListenerSpec,
    fd: number | undefined,
  ): Promise<Result<void, string>> {
    const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (s) =>
      sink.onConnection(s, spec.tls),
    );
    return new Promise((resolve) => {
      const onError = (e: Error): void => resolve(err(e.message));
      server.once('error', onError);
      const done = (): void => {
        server.off('error', onError);
        server.on('error', (e) =>
          this.log.error('listener', 'listener error', { listener: key, error: e.message }),
        );
        this.open.set(key, { spec, kind: 'accept', server });
        resolve(ok(undefined));
      };
      if (fd !== undefined) server.listen({ fd }, done);
      else server.listen({ host: spec.host, port: spec.port }, done);
    });
  }

  private async share(
    sink: ShareSink,
    key: string,
    spec: ListenerSpec,
    fd: number | undefined,
  ): Promise<Result<void, string>> {
    const bound = await bindSocket(spec, fd);
    if (!bound.ok) return bound;
    const shared = await sink.share(key, bound.value, spec.tls);
    if (!shared.ok) {
      sink.unshare(key);
      bound.value.close();
      return shared;
    }
    this.open.set(key, { spec, kind: 'share', socket: bound.value });
    return ok(undefined);
  }

  /** The first listener's bound address (ListenPort), for the "listening on" line. */
  address(): { host: string; port: number } | undefined {
    const first = this.open.values().next();
    if (first.done === true) return undefined;
    const l = first.value;
    if (l.kind === 'share') {
      const out: { address?: string; port?: number } = {};
      if (l.socket.getsockname(out) !== 0 || out.address === undefined || out.port === undefined)
        return undefined;
      return { host: out.address, port: out.port };
    }
    const a = l.server.address();
    if (a === null || typeof a === 'string') return undefined;
    return { host: a.address, port: a.port };
  }

  /** Each listener's key and descriptor, for a new process to inherit. */
  descriptors(): { key: string; fd: number }[] {
    return [...this.open].flatMap(([key, l]) => {
      const fd = l.kind === 'share' ? l.socket.fd : fdOf(l.server);
      return fd === undefined || fd < 0 ? [] : [{ key, fd }];
    });
  }

  /**
   * Stop listening for good (drain, stop): no new connection from now on. Established connections
   * are not touched, and not waited for (a server's close callback waits for every connection it
   * accepted, which here are sessions that may last hours).
   */
  close(): void {
    this.closed = true;
    for (const [key, l] of this.open) this.shut(key, l);
    this.open.clear();
    // Inherited descriptors no listener took are closed with the process.
  }
}
