/**
 * Virtual domains at run time (admin guide, "Virtual Domains"): the vdmap file read and checked,
 * the listeners on the mapped addresses, and the SIGHUP refresh. Each mapped address's site (its
 * properties over the global parameters, its directory, its certmap) is the runtime's
 * (`proxyRuntime.ts`).
 *
 * Checked at start-up, each problem with its file and line: the syntax and property names
 * (`@mmp/config` parseVdmap), an unreadable file, addresses that are not this machine's, and
 * per-domain CertMapFile files that cannot be read (then, when the runtime is built, that they
 * parse). Start-up fails (exit 2) on any of them; a refresh that finds one keeps the previous
 * table and logs why.
 */

import { networkInterfaces } from 'node:os';
import { basename } from 'node:path';
import {
  type ConfigProblem,
  type ListenAddress,
  type Result,
  type VirtualDomain,
  err,
  normalizeAddress,
  ok,
  parseVdmap,
  vdmapWarnings,
} from '@mmp/config';
import { type ReadFile, fileErrorText, readFromDisk } from '../files.js';
import type { Log } from '../log.js';
import { type ProxyRuntime, replaceVirtualDomains } from '../proxyRuntime.js';
import type { ProxyServer } from '../server.js';

/** Addresses of this machine: the interfaces' own, and (on Linux) all of 127.0.0.0/8. */
export function isLocalAddress(
  address: string,
  interfaces: ReturnType<typeof networkInterfaces> = networkInterfaces(),
  platform: NodeJS.Platform = process.platform,
): boolean {
  const a = normalizeAddress(address);
  if (a === undefined) return false;
  for (const list of Object.values(interfaces)) {
    for (const i of list ?? []) if (normalizeAddress(i.address) === a) return true;
  }
  // Linux routes the whole loopback network to `lo` (a `local 127.0.0.0/8` route): any of its
  // addresses can be bound without being configured on an interface.
  return platform === 'linux' && /^127\.\d+\.\d+\.\d+$/.test(a);
}

export interface LoadedVdmap {
  domains: VirtualDomain[];
  warnings: ConfigProblem[];
}

/** Read and check a vdmap file; every problem carries `file:line` (or the file alone). */
export function loadVdmap(
  path: string,
  isLocal: (address: string) => boolean = (a) => isLocalAddress(a),
  read: ReadFile = readFromDisk,
): Result<LoadedVdmap, ConfigProblem[]> {
  const file = read(path);
  if (!file.ok) {
    const code = fileErrorText(file.error);
    const why = code === 'ENOENT' ? 'does not exist' : `cannot be read (${code})`;
    return err([{ where: `VirtualDomainFile ${path}`, message: `the file ${why}` }]);
  }
  const text = file.value.toString('utf8');
  const name = basename(path);
  const parsed = parseVdmap(text, name);
  if (!parsed.ok) return parsed;
  const problems: ConfigProblem[] = [];
  const warnings = vdmapWarnings(parsed.value, name);
  for (const vd of parsed.value) {
    if (!isLocal(vd.address))
      problems.push({
        where: `${name}:${vd.line}`,
        message: `${vd.address} (vdmap ${vd.name}) is not an address of this machine`,
      });
    const certMap = vd.values.CertMapFile;
    const certMapLine = vd.lines.CertMapFile;
    if (certMap !== undefined && certMapLine !== undefined) {
      const readable = read(certMap);
      if (!readable.ok)
        problems.push({
          where: `${name}:${certMapLine}`,
          message: `${vd.name}:CertMapFile ${certMap} cannot be read (${fileErrorText(readable.error)})`,
        });
    }
    const nested = vd.lines.VirtualDomainFile;
    if (nested !== undefined)
      warnings.push({
        where: `${name}:${nested}`,
        message: `${vd.name}:VirtualDomainFile is ignored (one vdmap file per multiplexor)`,
      });
  }
  return problems.length > 0 ? err(problems) : ok({ domains: parsed.value, warnings });
}

/** The listeners a runtime's virtual domains need besides ListenPort's and SSLListenPort's. */
export function domainListeners(runtime: ProxyRuntime): DomainListener[] {
  const { listen, security } = runtime.global.settings;
  const out: DomainListener[] = [];
  for (const { domain } of runtime.domains) {
    // ListenPort on every address already receives the domain's connections; the local address
    // tells them apart.
    const apart = (host: string | undefined): boolean =>
      host !== undefined && normalizeAddress(host) !== domain.address;
    if (apart(listen.host))
      out.push({ domain, address: { host: domain.address, port: listen.port }, tls: false });
    if (runtime.serverTls !== undefined && apart(security.listen.host))
      out.push({
        domain,
        address: { host: domain.address, port: security.listen.port },
        tls: true,
      });
  }
  return out;
}

export interface DomainListener {
  domain: VirtualDomain;
  address: Required<ListenAddress>;
  /** The implicit-TLS listener (SSLListenPort's port). */
  tls: boolean;
}

/** Open the listeners a runtime's virtual domains need (at start-up). */
export async function listenForDomains(
  server: ProxyServer,
  runtime: ProxyRuntime,
  log: Log,
): Promise<Result<true, string>> {
  for (const l of domainListeners(runtime)) {
    const r = await listenFor(server, l, log);
    if (!r.ok) return r;
  }
  return ok(true);
}

async function listenFor(
  server: ProxyServer,
  { domain, address, tls }: DomainListener,
  log: Log,
): Promise<Result<true, string>> {
  try {
    await server.listenAlso(address, tls);
    log.at('lifecycle', 'start', 'listening for a virtual domain', {
      vdmap: domain.name,
      address: address.host,
      port: address.port,
      tls,
    });
    return ok(true);
  } catch (e) {
    return err(`${address.host}:${address.port} (vdmap ${domain.name}): ${(e as Error).message}`);
  }
}

/**
 * SIGHUP: read the vdmap again. New connections get the new table, and listeners follow its
 * addresses; established sessions keep the runtime they started with. A file with problems
 * changes nothing (each problem logged).
 *
 * Decision: a refresh re-reads the vdmap only. Global parameters (the config file, the
 * environment, the command line) and the files they name are read once at start; changing them
 * needs a restart.
 */
export async function reloadVirtualDomains(
  server: ProxyServer,
  path: string,
  log: Log,
  read: ReadFile = readFromDisk,
): Promise<Result<LoadedVdmap, ConfigProblem[]>> {
  const refused = (problems: ConfigProblem[]): { ok: false; error: ConfigProblem[] } => {
    for (const p of problems)
      log.error('reload', 'vdmap refused, keeping the previous one', {
        where: p.where,
        problem: p.message,
      });
    return err(problems);
  };
  const loaded = loadVdmap(path, undefined, read);
  if (!loaded.ok) return refused(loaded.error);
  for (const w of loaded.value.warnings)
    log.at('lifecycle', 'reload', 'vdmap warning', { where: w.where, problem: w.message });
  const before = server.runtime;
  const next = replaceVirtualDomains(before, { path, domains: loaded.value.domains }, read);
  if (!next.ok) return refused(next.error);
  server.use(next.value);
  const key = (l: DomainListener): string =>
    `${l.tls ? 'tls ' : ''}${l.address.host}:${l.address.port}`;
  const wanted = domainListeners(next.value);
  for (const l of wanted) {
    const r = await listenFor(server, l, log);
    if (!r.ok) log.error('reload', 'cannot listen on a mapped address', { error: r.error });
  }
  const kept = new Set(wanted.map(key));
  for (const l of domainListeners(before))
    if (!kept.has(key(l))) await server.unlisten(l.address, l.tls);
  log.at('lifecycle', 'reload', 'vdmap reloaded', {
    file: path,
    domains: loaded.value.domains.map((d) => `${d.name}=${d.address}`).join(' '),
  });
  return loaded;
}
