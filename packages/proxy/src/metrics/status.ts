/**
 * The status page (MetricsListen's `/`): what an operator looks at first when users call — live
 * sessions per store and per protocol, each store and directory host with its state, logins by
 * outcome, the recent errors of every process. One HTML string from the aggregated metrics
 * (`cluster.ts`), no framework, no script: it reloads itself every STATUS_REFRESH_SECONDS
 * (`<meta http-equiv="refresh">`). Every cell has an id or a `data-*` attribute, so that tests
 * and scripts can read the numbers.
 */

import type { Protocol, Result } from '@mmp/config';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { RecentError } from './metrics.js';

export const STATUS_REFRESH_SECONDS = 5;

type Metric = MetricObjectWithValues<MetricValue<string>>;

export interface StatusInput {
  program: string;
  protocol: Protocol;
  now: Date;
  /** Processes whose metrics are included (NumThreads workers, or 1). */
  processes: number;
  metrics: readonly Metric[];
  errors: readonly RecentError[];
  health: Result<string, string>;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function values(metrics: readonly Metric[], name: string): MetricValue<string>[] {
  return metrics.find((m) => m.name === name)?.values ?? [];
}

function label(v: MetricValue<string>, name: string): string {
  const l = (v.labels as Record<string, string | number | undefined>)[name];
  return l === undefined ? '' : String(l);
}

/** Sum of `name`'s values whose labels match `where`. */
function sum(metrics: readonly Metric[], name: string, where: Record<string, string> = {}): number {
  return values(metrics, name)
    .filter((v) => Object.entries(where).every(([k, want]) => label(v, k) === want))
    .reduce((a, v) => a + v.value, 0);
}

const PHASES = ['pre-login', 'logging-in', 'piped', 'spoof'] as const;
const STORE_RESULTS = ['accepted', 'refused', 'unreachable', 'failed', 'skipped'] as const;

export function renderStatus(s: StatusInput): string {
  const m = s.metrics;
  const total = sum(m, 'mmp_sessions');
  const stores = [
    ...new Set([
      ...values(m, 'mmp_store_down').map((v) => label(v, 'store')),
      ...values(m, 'mmp_sessions')
        .map((v) => label(v, 'store'))
        .filter((x) => x !== ''),
    ]),
  ].sort();
  const storeRows = stores.map((store) => {
    const down = sum(m, 'mmp_store_down', { store }) > 0;
    const cells = [
      `<td>${escapeHtml(store)}</td>`,
      `<td data-cell="sessions">${sum(m, 'mmp_sessions', { store, phase: 'piped' })}</td>`,
      `<td data-cell="state" class="${down ? 'bad' : 'good'}">${down ? 'down' : 'up'}</td>`,
      `<td data-cell="in-flight">${sum(m, 'mmp_store_attempts_in_flight', { store })}</td>`,
      ...STORE_RESULTS.map(
        (result) =>
          `<td data-cell="${result}">${sum(m, 'mmp_store_attempts_total', { store, result })}</td>`,
      ),
    ];
    return `<tr data-store="${escapeHtml(store)}">${cells.join('')}</tr>`;
  });
  const hostRows = values(m, 'mmp_directory_host_down').map((v) => {
    const host = label(v, 'host');
    const down = v.value > 0;
    return `<tr data-host="${escapeHtml(host)}"><td>${escapeHtml(host)}</td><td data-cell="state" class="${down ? 'bad' : 'good'}">${down ? 'down' : 'up'}</td></tr>`;
  });
  const outcomes = [...new Set(values(m, 'mmp_logins_total').map((v) => label(v, 'outcome')))];
  const loginRows = outcomes.map(
    (outcome) =>
      `<tr data-outcome="${escapeHtml(outcome)}"><td>${escapeHtml(outcome)}</td><td data-cell="count">${sum(m, 'mmp_logins_total', { outcome })}</td></tr>`,
  );
  const errors = [...s.errors].sort((a, b) => b.at.localeCompare(a.at)).slice(0, 20);
  const errorRows = errors.map(
    (e) =>
      `<tr><td>${escapeHtml(e.at)}</td><td>${e.pid}</td><td>${escapeHtml(e.what)}</td><td>${escapeHtml(e.detail)}</td></tr>`,
  );
  const health = s.health.ok
    ? `<span id="health" class="good">healthy</span>`
    : `<span id="health" class="bad">unhealthy: ${escapeHtml(s.health.error)}</span>`;
  const none = (cols: number, text: string): string =>
    `<tr><td colspan="${cols}" class="none">${text}</td></tr>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="${STATUS_REFRESH_SECONDS}">
<title>${escapeHtml(s.program)} status</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; } h2 { font-size: 1.05em; margin-top: 1.5em; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
td:first-child, th:first-child { text-align: left; } .good { color: #176c2c; } .bad { color: #b00020; font-weight: bold; }
.none { color: #777; text-align: left; } .meta { color: #555; } #errors td { text-align: left; }
</style>
</head>
<body>
<h1>${escapeHtml(s.program)} (${s.protocol.toUpperCase()}) ${health}</h1>
<p class="meta">${escapeHtml(s.now.toISOString())} · <span id="processes">${s.processes}</span> process(es) · refreshes every ${STATUS_REFRESH_SECONDS} s · <a href="/metrics">/metrics</a> · <a href="/healthz">/healthz</a></p>
<h2>Sessions</h2>
<table id="sessions">
<tr><th>protocol</th><th>total</th>${PHASES.map((p) => `<th>${p}</th>`).join('')}</tr>
<tr data-protocol="${s.protocol}"><td>${s.protocol}</td><td id="sessions-total">${total}</td>${PHASES.map((phase) => `<td id="sessions-${phase}">${sum(m, 'mmp_sessions', { phase })}</td>`).join('')}</tr>
</table>
<h2>Stores</h2>
<table id="stores">
<tr><th>store</th><th>sessions</th><th>state</th><th>attempts in flight</th>${STORE_RESULTS.map((r) => `<th>${r}</th>`).join('')}</tr>
${storeRows.length > 0 ? storeRows.join('\n') : none(4 + STORE_RESULTS.length, 'no store used yet')}
</table>
<h2>Directory hosts</h2>
<table id="directory">
<tr><th>host</th><th>state</th></tr>
${hostRows.length > 0 ? hostRows.join('\n') : none(2, 'no directory used yet')}
</table>
<h2>Logins</h2>
<table id="logins">
<tr><th>outcome</th><th>count</th></tr>
${loginRows.join('\n')}
</table>
<h2>Recent errors</h2>
<table id="errors">
<tr><th>time</th><th>pid</th><th>what</th><th>detail</th></tr>
${errorRows.length > 0 ? errorRows.join('\n') : none(4, 'none')}
</table>
</body>
</html>
`;
}
