/**
 * Virtual domains at run time (admin guide, "Virtual Domains"): the vdmap file read and checked,
 * and the addresses it needs listeners on (opened by `listeners.ts`; a SIGHUP reads it again with the
 * whole configuration, `control.ts`). Each mapped address's site (its
 * properties over the global parameters, its directory, its certmap) is the runtime's
 * (`proxyRuntime.ts`).
 *
 * Checked at start-up, each problem with its file and line: the syntax and property names
 * (`@mmp/config` parseVdmap), an unreadable file, addresses that are not this machine's, and
 * per-domain CertMapFile files that cannot be read (then, when the runtime is built, that they
 * parse). Start-up fails (exit 2) on any of them; a reload that finds one keeps the running
 * configuration and logs why.
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
import type { ProxyRuntime } from '../proxyRuntime.js';

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
