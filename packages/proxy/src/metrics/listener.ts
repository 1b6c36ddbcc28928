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
  program: string;
  protocol: Protocol;
  log: Log;
  /** Every process's snapshot (this one's alone without NumThreads). */
  gather: () => Promise<ProcessSnapshot[]>;
  health: () => Promise<Health>;
}

/** Time a scraper has to send its request (a slow client must not hold a socket open). */
const REQUEST_TIMEOUT_MS = 10_000;

export async function listenMetrics(
  o: MetricsListenerOptions,
): Promise<Result<{ server: Server; address: { host: string; port: number } }, string>> {
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
  return new Promise((resolve) => {
    const onError = (e: Error): void =>
      resolve(
        err(`cannot listen on MetricsListen ${o.listen.host}:${o.listen.port}: ${e.message}`),
      );
    server.once('error', onError);
    server.listen({ host: o.listen.host, port: o.listen.port }, () => {
      server.off('error', onError);
      server.on('error', (e) =>
        o.log.error('metrics', 'metrics listener error', { error: e.message }),
      );
      const a = server.address();
      const address =
        a === null || typeof a === 'string'
          ? { host: o.listen.host, port: o.listen.port }
          : { host: a.address, port: a.port };
      o.log.at('lifecycle', 'start', 'serving metrics', address);
      resolve(ok({ server, address }));
    });
  });
}

/** Close the listener and its idle keep-alive connections. */
export function closeMetrics(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}

/**
 * MetricsListen, when set, in a serving process (the one process, or each NumThreads worker, whose
 * listen node:cluster shares: each scrape reaches one worker). /healthz: 503 once `server` stops
 * or drains (`ProxyServer.stop`/`drain` set it), or when no directory host answers. Resolves with
 * how to close it (kept open while sessions drain, so balancers read the 503).
 */
export async function serveMetrics(
  program: string,
  server: ProxyServer,
  log: Log,
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
    program,
    protocol: runtime.protocol,
    log,
    gather: gatherer(metrics, runtime.shared.fleet),
    health,
  });
  if (!r.ok) return r;
  const { server: http } = r.value;
  return ok(() => closeMetrics(http));
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
