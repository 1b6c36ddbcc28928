/**
 * NumThreads (`workers.ts`): each worker counts its own sessions, logins and stores, and the
 * metrics listener is shared by the workers like the mail listeners (node:cluster hands each
 * scrape to one of them). The worker that got the scrape asks the primary (`ipc.ts`), the primary
 * asks every worker for its snapshot (its registry as JSON, its recent errors) and hands them all
 * back, and the asking worker merges them with prom-client's AggregatorRegistry (counters and
 * histograms summed, states by their gauge's `aggregator`). The primary only relays: it never
 * reads a request from the network nor looks inside a snapshot. Without workers the same two
 * requests run in the one process (`localFleet`).
 */

import {
  AggregatorRegistry,
  type MetricObjectWithValues,
  type MetricValue,
  type PrometheusContentType,
  type Registry,
} from 'prom-client';
import { type PrimaryService, type WorkerChannel, messageKind } from '../ipc.js';
import { IPC_REPLY_TIMEOUT_MS } from '../limits.js';
import type { Metrics, RecentError } from './metrics.js';

/** One process's part of a scrape. */
export interface ProcessSnapshot {
  pid: number;
  metrics: MetricObjectWithValues<MetricValue<string>>[];
  errors: RecentError[];
}

type Empty = Record<string, never>;
const isEmpty = (v: unknown): v is Empty =>
  typeof v === 'object' && v !== null && Object.keys(v).length === 0;

/** The primary to each worker: your snapshot. */
const METRICS_SNAPSHOT = messageKind<Empty, ProcessSnapshot>('metrics.snapshot', isEmpty);
/** A worker to the primary: every worker's snapshot. */
const METRICS_SCRAPE = messageKind<Empty, ProcessSnapshot[]>('metrics.scrape', isEmpty);

/** How long the primary waits for the workers' snapshots: less than the asking worker waits for
 * the primary, so that a worker that is starting or stuck is left out of this scrape rather than
 * failing it. */
const GATHER_TIMEOUT_MS = IPC_REPLY_TIMEOUT_MS / 2;

export async function snapshotOf(metrics: Metrics): Promise<ProcessSnapshot> {
  return {
    pid: process.pid,
    metrics: await metrics.snapshot(),
    errors: [...metrics.recentErrors()],
  };
}

/** The parts merged into one registry (its text is the /metrics answer). */
export function aggregate(parts: readonly ProcessSnapshot[]): Registry<PrometheusContentType> {
  return AggregatorRegistry.aggregate(parts.map((p) => p.metrics));
}

/** In the primary (`main.ts`, PRIMARY_SERVICES): a scrape gathers every worker's snapshot. */
export const metricsService: PrimaryService = (primary) => {
  primary.handle(METRICS_SCRAPE, async () => {
    const replies = await primary.askWorkers(METRICS_SNAPSHOT, {}, GATHER_TIMEOUT_MS);
    return replies.flatMap((r) => (r.ok ? [r.value] : []));
  });
};

/**
 * In a serving process (MetricsListen on): answer the primary's requests for this process's
 * snapshot, and return how to gather every process's. When the primary does not answer, this
 * process's part alone.
 */
export function gatherer(metrics: Metrics, fleet: WorkerChannel): () => Promise<ProcessSnapshot[]> {
  fleet.answer(METRICS_SNAPSHOT, () => snapshotOf(metrics));
  return async () => {
    const r = await fleet.request(METRICS_SCRAPE, {});
    return r.ok && r.value.length > 0 ? r.value : [await snapshotOf(metrics)];
  };
}
