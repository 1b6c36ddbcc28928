/**
 * The Grafana dashboard in the repository (`packages/proxy/grafana/mmp.json`, issue 16 point 5)
 * against the metrics the proxy really exposes: every PromQL expression of every panel (and of
 * the template variables) is parsed with Prometheus's own grammar (`@prometheus-io/lezer-promql`)
 * and by `promtool check rules`, and every series it selects must exist in a real `Metrics`
 * registry with its type's suffix (`_bucket`/`_sum`/`_count` of a histogram, a counter's
 * `_total`), with labels that metric has. So a renamed metric, a changed type or label, or a
 * typo in a panel fails here rather than as an empty graph in front of an operator.
 */

import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parser } from '@prometheus-io/lezer-promql';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../test-support/tempDirs.js';
import { Metrics } from './metrics.js';

const DASHBOARD = new URL('../../grafana/mmp.json', import.meta.url);

type Tree = ReturnType<typeof parser.parse>;
type Node = Tree['topNode'];

/** Labels Prometheus adds to every scraped series (the scrape target's). */
const TARGET_LABELS = ['instance', 'job'];

/** Grafana's own variables, as a value PromQL accepts where they stand. */
const GRAFANA_VARIABLES: Record<string, string> = {
  __rate_interval: '5m',
  __interval: '1m',
  __range: '1h',
};

/** Functions over counters: a gauge under them is a mistake. */
const COUNTER_FUNCTIONS = new Set(['rate', 'irate', 'increase']);

interface Series {
  readonly family: string;
  /** prom-client's type: counter, gauge, histogram, summary. */
  readonly type: string;
  /** Whether the series only grows (a counter, or a histogram's or summary's parts but the
   * quantiles). */
  readonly monotonic: boolean;
  readonly bucket: boolean;
  readonly labels: ReadonlySet<string>;
}

/** Every series name a scrape of a real registry can hold, with its family's type and labels. */
async function exposedSeries(options: { processMetrics: boolean }): Promise<Map<string, Series>> {
  const metrics = new Metrics('imap', options);
  const series = new Map<string, Series>();
  // Label names are not in prom-client's typings of a registered metric; they are on the object.
  const labelNames = new Map<string, readonly string[]>();
  for (const m of metrics.registry.getMetricsAsArray()) {
    const names: unknown = (m as object as { labelNames?: unknown }).labelNames;
    labelNames.set(
      m.name,
      Array.isArray(names) ? names.filter((n): n is string => typeof n === 'string') : [],
    );
  }
  for (const m of await metrics.registry.getMetricsAsJSON()) {
    const own = [...(labelNames.get(m.name) ?? []), 'protocol', ...TARGET_LABELS];
    const type = String(m.type);
    const add = (name: string, extra: { monotonic: boolean; bucket?: boolean; le?: string }) =>
      series.set(name, {
        family: m.name,
        type,
        monotonic: extra.monotonic,
        bucket: extra.bucket === true,
        labels: new Set(extra.le === undefined ? own : [...own, extra.le]),
      });
    if (type === 'histogram') {
      add(`${m.name}_bucket`, { monotonic: true, bucket: true, le: 'le' });
      add(`${m.name}_sum`, { monotonic: true });
      add(`${m.name}_count`, { monotonic: true });
    } else if (type === 'summary') {
      add(m.name, { monotonic: false, le: 'quantile' });
      add(`${m.name}_sum`, { monotonic: true });
      add(`${m.name}_count`, { monotonic: true });
    } else if (type === 'counter') {
      // The exposition names a counter as registered; Prometheus's convention (and promtool's
      // lint) wants `_total`, so a counter named otherwise is no series a panel may count on.
      if (m.name.endsWith('_total')) add(m.name, { monotonic: true });
    } else {
      add(m.name, { monotonic: false });
    }
  }
  return series;
}

function record(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

interface Expression {
  /** Where it is in the dashboard, for the failure message. */
  readonly where: string;
  readonly promql: string;
}

/** The dashboard's panels, rows' own panels included. */
function panelsOf(dashboard: Record<string, unknown>): Record<string, unknown>[] {
  return list(dashboard['panels'])
    .map(record)
    .flatMap((p) => [p, ...list(p['panels']).map(record)]);
}

/** Every PromQL expression of the dashboard, Grafana variables replaced by values. */
function expressionsOf(dashboard: Record<string, unknown>): Expression[] {
  const variables = list(record(dashboard['templating'])['list']).map(record);
  const values: Record<string, string> = { ...GRAFANA_VARIABLES };
  for (const v of variables) if (typeof v['name'] === 'string') values[v['name']] = '.+';
  const substitute = (where: string, text: string): Expression => {
    const promql = text.replace(
      /\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]/g,
      (whole, a?: string, b?: string, c?: string) => values[a ?? b ?? c ?? ''] ?? whole,
    );
    return { where, promql };
  };
  const found: Expression[] = [];
  for (const p of panelsOf(dashboard)) {
    for (const t of list(p['targets']).map(record)) {
      found.push(
        substitute(`panel "${String(p['title'])}" ${String(t['refId'])}`, String(t['expr'])),
      );
    }
  }
  // A query variable's `label_values(SELECTOR, label)`: its selector is PromQL too.
  for (const v of variables) {
    if (v['type'] !== 'query') continue;
    const query = record(v['query'])['query'] ?? v['query'];
    const m = /^label_values\((.+),\s*\w+\)$/.exec(String(query));
    expect(m, `variable ${String(v['name'])}: ${String(query)}`).not.toBeNull();
    found.push(substitute(`variable ${String(v['name'])}`, m?.[1] ?? ''));
  }
  return found;
}

function descendants(node: Node, name: string): Node[] {
  const out: Node[] = [];
  for (let child = node.firstChild; child !== null; child = child.nextSibling) {
    if (child.name === name) out.push(child);
    out.push(...descendants(child, name));
  }
  return out;
}

/** What is wrong with one expression against the exposed series; empty when nothing is. */
function problems(e: Expression, series: ReadonlyMap<string, Series>): string[] {
  const tree = parser.parse(e.promql);
  const text = (n: Node) => e.promql.slice(n.from, n.to);
  const found: string[] = [];
  let syntax = false;
  tree.iterate({
    enter: (n) => {
      if (n.type.isError) syntax = true;
    },
  });
  if (syntax) return [`${e.where}: does not parse: ${e.promql}`];
  const selected: Series[] = [];
  for (const selector of descendants(tree.topNode, 'VectorSelector')) {
    const identifier = selector.getChild('Identifier');
    if (identifier === null) {
      found.push(`${e.where}: a selector without a metric name: ${text(selector)}`);
      continue;
    }
    const name = text(identifier);
    const s = series.get(name);
    if (s === undefined) {
      found.push(`${e.where}: no such series in the registry: ${name}`);
      continue;
    }
    selected.push(s);
    for (const label of descendants(selector, 'LabelName').map(text))
      if (!s.labels.has(label)) found.push(`${e.where}: ${name} has no label ${label}`);
  }
  const labels = new Set(selected.flatMap((s) => [...s.labels]));
  for (const grouping of descendants(tree.topNode, 'GroupingLabels'))
    for (const label of descendants(grouping, 'LabelName').map(text))
      if (!labels.has(label)) found.push(`${e.where}: no selected series has label ${label}`);
  for (const call of descendants(tree.topNode, 'FunctionCall')) {
    const fn = text(call.getChild('FunctionIdentifier') ?? call);
    const body = call.getChild('FunctionCallBody');
    if (body === null) continue;
    for (const selector of descendants(body, 'VectorSelector')) {
      const name = text(selector.getChild('Identifier') ?? selector);
      const s = series.get(name);
      if (s === undefined) continue;
      if (COUNTER_FUNCTIONS.has(fn) && !s.monotonic)
        found.push(`${e.where}: ${fn}() of ${name}, a ${s.type} that does not only grow`);
      if (fn === 'histogram_quantile' && !s.bucket)
        found.push(`${e.where}: histogram_quantile() of ${name}, not a histogram's _bucket`);
    }
  }
  return found;
}

async function promtoolCheckRules(
  expressions: readonly Expression[],
): Promise<{ exitCode: number | undefined; output: string }> {
  const dir = await tempDir('mmp-grafana-');
  try {
    const file = join(dir, 'dashboard.rules.yml');
    // JSON is YAML: one recording rule per expression.
    const rules = {
      groups: [
        {
          name: 'mmp-dashboard',
          rules: expressions.map((e, i) => ({ record: `mmp_dashboard:expr_${i}`, expr: e.promql })),
        },
      ],
    };
    await writeFile(file, JSON.stringify(rules, null, 2));
    const r = await execa('promtool', ['check', 'rules', file], { reject: false, all: true });
    return { exitCode: r.exitCode, output: r.all ?? '' };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('the Grafana dashboard (packages/proxy/grafana/mmp.json)', () => {
  it('has only panels with PromQL on series the proxy exposes, with their types and labels', async () => {
    const dashboard = record(JSON.parse(await readFile(DASHBOARD, 'utf8')));
    const series = await exposedSeries({ processMetrics: true });
    const expressions = expressionsOf(dashboard);
    expect(expressions.length).toBeGreaterThan(20);
    for (const p of panelsOf(dashboard))
      if (p['type'] !== 'row')
        expect(list(p['targets']).length, `panel "${String(p['title'])}"`).toBeGreaterThan(0);
    expect(expressions.flatMap((e) => problems(e, series))).toEqual([]);

    // promtool (Prometheus's own parser) takes every expression as a recording rule.
    const checked = await promtoolCheckRules(expressions);
    expect(checked.output).toContain(`SUCCESS: ${expressions.length} rules found`);
    expect(checked.exitCode).toBe(0);
  });

  it('shows every metric the multiplexor itself counts', async () => {
    const dashboard = record(JSON.parse(await readFile(DASHBOARD, 'utf8')));
    const own = await exposedSeries({ processMetrics: false });
    const shown = new Set<string>();
    for (const e of expressionsOf(dashboard)) {
      const tree = parser.parse(e.promql);
      for (const selector of descendants(tree.topNode, 'Identifier')) {
        const s = own.get(e.promql.slice(selector.from, selector.to));
        if (s !== undefined) shown.add(s.family);
      }
    }
    expect(
      [...new Set([...own.values()].map((s) => s.family))].filter((f) => !shown.has(f)),
    ).toEqual([]);
  });

  it('finds what is wrong in an expression (the check is not blind)', async () => {
    const series = await exposedSeries({ processMetrics: true });
    const check = (promql: string) => problems({ where: 'x', promql }, series);
    expect(check('sum by (le) (rate(mmp_login_store_seconds_bucket[5m]))')).toEqual([]);
    expect(check('rate(mmp_login_store_seconds[5m])')).toEqual([
      'x: no such series in the registry: mmp_login_store_seconds',
    ]);
    expect(check('rate(mmp_client_bytes[5m])')).toEqual([
      'x: no such series in the registry: mmp_client_bytes',
    ]);
    expect(check('rate(mmp_sessions[5m])')).toEqual([
      'x: rate() of mmp_sessions, a gauge that does not only grow',
    ]);
    expect(check('histogram_quantile(0.5, rate(mmp_login_store_seconds_sum[5m]))')).toEqual([
      "x: histogram_quantile() of mmp_login_store_seconds_sum, not a histogram's _bucket",
    ]);
    expect(check('mmp_store_down{host="a"}')).toEqual(['x: mmp_store_down has no label host']);
    expect(check('sum by (outcome) (mmp_store_down)')).toEqual([
      'x: no selected series has label outcome',
    ]);
    expect(check('sum(rate(mmp_logins_total[5m])')).toEqual([
      'x: does not parse: sum(rate(mmp_logins_total[5m])',
    ]);
    expect(
      (await promtoolCheckRules([{ where: 'x', promql: 'sum(rate(x[5m]) by' }])).exitCode,
    ).not.toBe(0);
  });
});
