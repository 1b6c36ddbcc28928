/**
 * MetricsListen: a small HTTP listener of its own (never a mail port), with three pages:
 *
 * - `GET /metrics`: the Prometheus text format (prom-client), aggregated over NumThreads workers
 *   (`cluster.ts`);
 * - `GET /healthz`: 200 `ok` when this process accepts logins and a directory host answers now,
 *   503 with the reason otherwise (draining, not listening, directory unreachable): what a
 *   balancer's health check asks (HAProxy `option httpchk GET /healthz`);
 * - `GET /`: the status page (`status.ts`), which refreshes itself.
 *
 * Node's own HTTP parser, no framework: three fixed routes need none. Requests carry nothing we
 * read beyond the method and the path.
 */

import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { ListenAddress, Protocol, Result } from '@mmp/config';
import { err, ok } from '@mmp/config';
import type { Log } from '../log.js';
import type { ProxyServer } from '../server.js';
import { type ProcessSnapshot, aggregate, gatherer } from './cluster.js';
import { renderStatus } from './status.js';

/** What /healthz says: healthy, or why not. */
export type Health = Result<string, string>;

export interface MetricsListenerOptions {
  listen: Readonly<Required<ListenAddress>>;
  /**
   * This process replaces another one (SIGUSR2) that holds MetricsListen until it starts to
   * drain: an address in use is then waited for (retried every METRICS_RETRY_MS) instead of
   * refused, so that the new process can start and tell the old one to go.
   */
  takingOver?: boolean;
  program: string;
  protocol: Protocol;
  log: Log;
  /** Every process's snapshot (this one's alone without NumThreads). */
  gather: () => Promise<ProcessSnapshot[]>;
  health: () => Promise<Health>;
}

/** Time a scraper has to send its request (a slow client must not hold a socket open). */
const REQUEST_TIMEOUT_MS = 10_000;

/** How often a process taking over (SIGUSR2) tries MetricsListen again while the old one holds
 * it: the gap a balancer's check may meet between the old one letting go and the new one. */
export const METRICS_RETRY_MS = 100;

/** One attempt to listen; the error as Node gave it. */
function bind(
  server: Server,
  listen: Readonly<Required<ListenAddress>>,
): Promise<Result<void, NodeJS.ErrnoException>> {
  return new Promise((resolve) => {
    const onError = (e: NodeJS.ErrnoException): void => resolve(err(e));
    server.once('error', onError);
    server.listen({ host: listen.host, port: listen.port }, () => {
      server.off('error', onError);
      resolve(ok(undefined));
    });
  });
}

export interface MetricsListener {
  server: Server;
  /** Where it listens, or will once the process it replaces let go. */
  address: { host: string; port: number };
  /** Stop listening (and waiting to) and close idle keep-alive connections; idempotent. */
  close(): Promise<void>;
}

export async function listenMetrics(
  o: MetricsListenerOptions,
): Promise<Result<MetricsListener, string>> {
  const server = createServer({ requestTimeout: REQUEST_TIMEOUT_MS }, (req, res) => {
    answer(o, req, res).catch((e: unknown) => {
      const message = e instanceof Error ? e.message : String(e);
      o.log.error('metrics', 'cannot answer a metrics request', { error: message });
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', 'internal error\n');
      else res.destroy();
    });
  });
  // A scraper's keep-alive connection must not hold a stopping process.
  server.keepAliveTimeout = 5_000;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= new Promise((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    }));
  const bound = (): { host: string; port: number } => {
    server.on('error', (e) =>
      o.log.error('metrics', 'metrics listener error', { error: e.message }),
    );
    const a = server.address();
    const address =
      a === null || typeof a === 'string'
        ? { host: o.listen.host, port: o.listen.port }
        : { host: a.address, port: a.port };
    o.log.at('lifecycle', 'start', 'serving metrics', address);
    return address;
  };
  const refused = (e: Error): string =>
    `cannot listen on MetricsListen ${o.listen.host}:${o.listen.port}: ${e.message}`;
  const first = await bind(server, o.listen);
  if (first.ok) return ok({ server, address: bound(), close });
  if (o.takingOver !== true || first.error.code !== 'EADDRINUSE') return err(refused(first.error));
  // The process this one replaces lets go of it when told to drain, which this one does only
  // once it listens on the mail ports: wait for it in the background.
  o.log.at(
    'lifecycle',
    'start',
    'MetricsListen is still held by the process this one replaces: waiting for it',
    {
      host: o.listen.host,
      port: o.listen.port,
    },
  );
  void (async () => {
    for (;;) {
      await new Promise((r) => setTimeout(r, METRICS_RETRY_MS));
      if (closing !== undefined) return;
      const again = await bind(server, o.listen);
      if (again.ok) {
        if (closing !== undefined) server.close();
        else bound();
        return;
      }
      if (again.error.code !== 'EADDRINUSE') {
        o.log.error('metrics', 'cannot listen on MetricsListen', { error: refused(again.error) });
        return;
      }
    }
  })();
  return ok({ server, address: { host: o.listen.host, port: o.listen.port }, close });
}

/**
 * MetricsListen, when set, in a serving process (the one process, or each NumThreads worker, whose
 * listen node:cluster shares: each scrape reaches one worker). /healthz: 503 once `server` stops
 * or drains (`ProxyServer.stop`/`drain` set it), or when no directory host answers. Resolves with
 * how to close it: kept open while sessions drain, so balancers read the 503, except after a
 * SIGUSR2 hand-over, where the new process takes the address (`takingOver`) as soon as this one
 * closes it, at the start of its drain.
 */
export async function serveMetrics(
  program: string,
  server: ProxyServer,
  log: Log,
  options: { takingOver?: boolean } = {},
): Promise<Result<() => Promise<void>, string>> {
  const runtime = server.runtime;
  const listen = runtime.global.settings.metricsListen;
  if (listen === undefined) return ok(() => Promise.resolve());
  const { metrics } = runtime.shared;
  const health = async (): Promise<Health> => {
    if (metrics.isDraining) return err('draining');
    const probe = await server.runtime.global.directory.probe?.(log);
    if (probe === undefined) return ok('ok');
    return probe.ok
      ? ok(`ok: directory ${probe.value}`)
      : err(`directory unreachable: ${probe.error}`);
  };
  const r = await listenMetrics({
    listen,
    takingOver: options.takingOver === true,
    program,
    protocol: runtime.protocol,
    log,
    gather: gatherer(metrics, runtime.shared.fleet),
    health,
  });
  if (!r.ok) return r;
  return ok(r.value.close);
}

async function answer(
  o: MetricsListenerOptions,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    return send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
  }
  const path = (req.url ?? '/').split('?')[0];
  switch (path) {
    case '/metrics': {
      const registry = aggregate(await o.gather());
      return send(res, 200, registry.contentType, await registry.metrics());
    }
    case '/healthz': {
      const h = await o.health();
      return send(
        res,
        h.ok ? 200 : 503,
        'text/plain; charset=utf-8',
        `${h.ok ? h.value : h.error}\n`,
      );
    }
    case '/': {
      const [parts, health] = await Promise.all([o.gather(), o.health()]);
      const merged = await aggregate(parts).getMetricsAsJSON();
      const html = renderStatus({
        program: o.program,
        protocol: o.protocol,
        now: new Date(),
        processes: parts.length,
        metrics: merged,
        errors: parts.flatMap((p) => p.errors),
        health,
      });
      return send(res, 200, 'text/html; charset=utf-8', html);
    }
    default:
      return send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
  }
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, {
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
