/**
 * The configuration as one value that can cross to a worker: the parameters resolved from the
 * command line, the environment and the config file, the vdmap's entries, and the bytes of every
 * file they name (certificates and keys, CA bundles, certmaps, the spoof message) — contents, not
 * paths, since the worker serving clients runs as RunAsUser and may not read them (root-only keys,
 * a 0600 config file).
 *
 * The process that reads it (the root primary, or the one process) builds a runtime from it first
 * (`validate`): everything checked before anything changes, at start-up as on SIGHUP. The files
 * are recorded while that runtime is built, so a snapshot holds exactly what a runtime reads, and
 * a worker building its runtime from the snapshot (`snapshotReader`) reads the same bytes.
 */

import { isDeepStrictEqual } from 'node:util';
import {
  type ConfigProblem,
  type ConfigValues,
  type Protocol,
  type Result,
  type VirtualDomain,
  cliAction,
  err,
  formatProblem,
  ok,
} from '@mmp/config';
import { type FileError, type ReadFile, readFromDisk } from './files.js';
import { type ProxyRuntime, type RuntimeSources, buildRuntime } from './proxyRuntime.js';
import { loadVdmap } from './vdomain/table.js';

/** One file read: its path, the size limit it was read with, what came of it. */
export interface SnapshotFile {
  readonly path: string;
  readonly maxBytes: number | undefined;
  readonly result: Result<Uint8Array, FileError>;
}

export interface Snapshot {
  readonly protocol: Protocol;
  readonly values: ConfigValues;
  readonly vdmap: { readonly path: string; readonly domains: readonly VirtualDomain[] } | undefined;
  readonly files: readonly SnapshotFile[];
}

/** A snapshot and the runtime it was checked with (built here, never served). */
export interface ReadConfiguration {
  readonly snapshot: Snapshot;
  readonly runtime: ProxyRuntime;
  /** Each worded for the operator (a file served with defaults, an ignored vdmap line). */
  readonly warnings: readonly string[];
}

/**
 * Read the configuration and every file it names, and check it all by building a runtime. The
 * problems, each one line for the operator; nothing is kept when there is one.
 */
/** The parameters from the command line, the environment and the config file, and the
 * warnings about them; or the problem, one line. */
export function resolveValues(
  protocol: Protocol,
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): Result<{ values: ConfigValues; warnings: string[] }, string[]> {
  const action = cliAction(protocol, argv, env);
  if (action.kind === 'fail') return err([action.message]);
  if (action.kind !== 'run') return err([`${action.kind}: not a configuration to serve`]);
  const warnings = action.warnings.map((w) => `warning: ${formatProblem(w)}`);
  return ok({ values: action.config.values, warnings });
}

export function readConfiguration(
  protocol: Protocol,
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  sources: Omit<RuntimeSources, 'read' | 'warn'> = {},
  disk: ReadFile = readFromDisk,
): Result<ReadConfiguration, string[]> {
  const resolved = resolveValues(protocol, argv, env);
  if (!resolved.ok) return resolved;
  const r = checkValues(protocol, resolved.value.values, sources, disk);
  if (!r.ok) return r;
  return ok({ ...r.value, warnings: [...resolved.value.warnings, ...r.value.warnings] });
}

/** `readConfiguration` from parameters already resolved. */
export function checkValues(
  protocol: Protocol,
  values: ConfigValues,
  sources: Omit<RuntimeSources, 'read' | 'warn'> = {},
  disk: ReadFile = readFromDisk,
): Result<ReadConfiguration, string[]> {
  const files: SnapshotFile[] = [];
  const read: ReadFile = (path, maxBytes) => {
    const result = disk(path, maxBytes);
    files.push({ path, maxBytes, result });
    return result;
  };
  const warnings: string[] = [];
  let vdmap: Snapshot['vdmap'];
  const path = values.VirtualDomainFile;
  if (path !== undefined && path !== '') {
    const loaded = loadVdmap(path, undefined, read);
    if (!loaded.ok) return err(loaded.error.map((p: ConfigProblem) => formatProblem(p)));
    for (const w of loaded.value.warnings) warnings.push(`warning: ${formatProblem(w)}`);
    vdmap = { path, domains: loaded.value.domains };
  }
  const runtime = buildRuntime(
    { protocol, values, vdmap },
    { ...sources, read, warn: (m) => warnings.push(`warning: ${m}`) },
  );
  if (!runtime.ok) return runtime;
  return ok({ snapshot: { protocol, values, vdmap, files }, runtime: runtime.value, warnings });
}

/** Reads from a snapshot only: the same bytes (or the same error) the reader of it got. */
export function snapshotReader(snapshot: Snapshot): ReadFile {
  return (path, maxBytes) => {
    const f = snapshot.files.find((x) => x.path === path && x.maxBytes === maxBytes);
    if (f === undefined) return err({ kind: 'unreadable', code: 'not in the snapshot' });
    if (!f.result.ok) return f.result;
    const bytes = f.result.value;
    // Across processes a Buffer arrives as a Uint8Array: the same memory, seen as a Buffer.
    return ok(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  };
}

/** A worker's runtime, from the snapshot the primary sent (nothing read from the disk). */
export function runtimeFromSnapshot(
  snapshot: Snapshot,
  sources: Omit<RuntimeSources, 'read'> = {},
): Result<ProxyRuntime, string[]> {
  return buildRuntime(
    { protocol: snapshot.protocol, values: snapshot.values, vdmap: snapshot.vdmap },
    { ...sources, read: snapshotReader(snapshot) },
  );
}

/**
 * Parameters that a running proxy cannot take without new listeners or new processes: a reload
 * that changes one reports it as needing a restart and keeps the value in force.
 */
export const RESTART_PARAMETERS = [
  'ListenPort',
  'SSLListenPort',
  'SSLEnable',
  'NumThreads',
  'RunAsUser',
  'LogDir',
  'LogFormat',
  'LogLevel',
] as const satisfies readonly (keyof ConfigValues)[];

/** `after` with the restart parameters of `before`, and the names of those that differed. */
export function keepRestartParameters(
  before: ConfigValues,
  after: ConfigValues,
): { values: ConfigValues; changed: string[] } {
  const changed = RESTART_PARAMETERS.filter(
    (name) => !isDeepStrictEqual(before[name], after[name]),
  );
  const kept: Record<string, unknown> = { ...after };
  for (const name of changed) kept[name] = before[name];
  return { values: kept as ConfigValues, changed };
}
