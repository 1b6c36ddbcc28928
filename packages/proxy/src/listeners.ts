/**
 * The listening sockets, owned by the process that was started (the root primary, or the one
 * process): ListenPort, SSLListenPort and every vdmap address. They accept connections without
 * reading a byte (`pauseOnConnect`) and hand each, with whether it came through an implicit-TLS
 * port, to `onConnection`: a worker gets it over the cluster channel (`workers.ts`), or the
 * process's own server takes it (`ProxyServer.adopt`). TLS is done by whoever serves the
 * connection, with the runtime current there, so a reload's new certificate needs no new socket.
 *
 * Owning the sockets here, rather than in node:cluster, is what lets this process re-open the
 * vdmap's addresses as root on SIGHUP, stop listening while sessions go on (drain, SIGQUIT), and
 * pass the very sockets to a new executable (SIGUSR2: `inheritedFds`/`handOver`), as nginx does.
 */

import { type Server, type Socket, createServer } from 'node:net';
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

export class Listeners {
  private readonly open = new Map<string, { spec: ListenerSpec; server: Server }>();
  private closed = false;

  constructor(
    private readonly onConnection: (socket: Socket, tls: boolean) => void,
    private readonly log: Log,
    /** Descriptors inherited from the process this one replaces (SIGUSR2), by key. */
    private readonly inherited: Map<string, number> = new Map(),
    /**
     * Accept without reading a byte (`pauseOnConnect`): the socket goes to a worker. A socket
     * served in this process is given to its session in the same turn, before any read.
     */
    private readonly pause = true,
  ) {}

  get keys(): string[] {
    return [...this.open.keys()];
  }

  /** Open what is not open yet (of `specs`), close what is open but not in `specs`. */
  async follow(specs: readonly ListenerSpec[]): Promise<Result<void, string>> {
    const wanted = new Map(specs.map((s) => [listenerKey(s), s]));
    for (const [key, { server }] of this.open)
      if (!wanted.has(key)) {
        this.open.delete(key);
        server.close();
        this.log.at('lifecycle', 'reload', 'stopped listening', { listener: key });
      }
    for (const [key, spec] of wanted) {
      if (this.open.has(key) || this.closed) continue;
      const r = await this.listen(key, spec);
      if (!r.ok) return r;
    }
    return ok(undefined);
  }

  private listen(key: string, spec: ListenerSpec): Promise<Result<void, string>> {
    const server = createServer(
      { pauseOnConnect: this.pause, allowHalfOpen: true, noDelay: true },
      (s) => this.onConnection(s, spec.tls),
    );
    const fd = this.inherited.get(key);
    this.inherited.delete(key);
    return new Promise((resolve) => {
      const onError = (e: Error): void =>
        resolve(err(`cannot listen on ${spec.what} ${key}: ${e.message}`));
      server.once('error', onError);
      const done = (): void => {
        server.off('error', onError);
        server.on('error', (e) =>
          this.log.error('listener', 'listener error', { listener: key, error: e.message }),
        );
        this.open.set(key, { spec, server });
        this.log.at('lifecycle', 'start', 'listening', {
          listener: key,
          ...(fd === undefined ? {} : { inheritedFd: fd }),
        });
        resolve(ok(undefined));
      };
      if (fd !== undefined) server.listen({ fd }, done);
      else server.listen({ host: spec.host, port: spec.port }, done);
    });
  }

  /** The first listener's bound address (ListenPort), for the "listening on" line. */
  address(): { host: string; port: number } | undefined {
    const first = this.open.values().next();
    if (first.done === true) return undefined;
    const a = first.value.server.address();
    if (a === null || typeof a === 'string') return undefined;
    return { host: a.address, port: a.port };
  }

  /** Each listener's key and descriptor, for a new process to inherit. */
  descriptors(): { key: string; fd: number }[] {
    return [...this.open].flatMap(([key, { server }]) => {
      const fd = fdOf(server);
      return fd === undefined ? [] : [{ key, fd }];
    });
  }

  /**
   * Stop listening for good (drain, stop): no new connection from now on. Established connections
   * are not touched, and not waited for (a server's close callback waits for every connection it
   * accepted, which here are sessions that may last hours).
   */
  close(): void {
    this.closed = true;
    for (const { server } of this.open.values()) server.close();
    this.open.clear();
    // Inherited descriptors no listener took are closed with the process.
  }
}
