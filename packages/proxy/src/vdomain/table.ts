/**
 * Virtual domains at run time (admin guide, "Virtual Domains"): the vdmap file read and checked
 * at start-up, the settings of each mapped address (its properties over the global parameters),
 * one directory client per distinct directory, the listeners on the mapped addresses, and the
 * SIGHUP refresh.
 *
 * Checked at start-up, each problem with its file and line: the syntax and property names
 * (`@mmp/config` parseVdmap), an unreadable file, addresses that are not this machine's, and
 * per-domain CertMapFile files that cannot be read. Start-up fails (exit 2) on any of them; a
 * refresh that finds one keeps the previous table and logs why.
 *
 * Decision: a refresh re-reads the vdmap only. Global parameters (the config file, the
 * environment, the command line) are read once at start; changing them needs a restart.
 */

import { accessSync, constants, readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { basename } from 'node:path';
import {
  type ConfigProblem,
  type ConfigValues,
  type ListenAddress,
  type Protocol,
  type Result,
  type VirtualDomain,
  applyVirtualDomain,
  err,
  normalizeAddress,
  ok,
  parseVdmap,
  vdmapWarnings,
} from '@mmp/config';
import { Directory, type UserDirectory } from '../directory.js';
import type { Log } from '../log.js';
import type { ProxyServer } from '../server.js';
import { type ProxySettings, settingsFrom } from '../settings.js';

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
): Result<LoadedVdmap, ConfigProblem[]> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? String(e)})`;
    return err([{ where: `VirtualDomainFile ${path}`, message: `the file ${why}` }]);
  }
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
      try {
        accessSync(certMap, constants.R_OK);
      } catch (e) {
        problems.push({
          where: `${name}:${certMapLine}`,
          message: `${vd.name}:CertMapFile ${certMap} cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`,
        });
      }
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

export interface VirtualDomainsOptions {
  protocol: Protocol;
  /** The global parameters, as resolved at start-up. */
  values: ConfigValues;
  /** The global settings, as main.ts completed them (spoof message, …). */
  settings: ProxySettings;
  /** The global directory client (shared with unmapped connections). */
  directory: UserDirectory;
  path: string;
  domains: readonly VirtualDomain[];
  log: Log;
  /**
   * Checks of a domain's derived settings that need files or other modules (e.g. its TLS and
   * certmap files, `tls/listener.ts` loadSecurity); run by `problems()` and before a reload.
   */
  check?: (settings: ProxySettings) => Result<true, string>;
}

/** The live table: what ProxyServer's settingsFor and directoryFor hooks ask. */
export class VirtualDomains {
  private byAddress = new Map<string, { vd: VirtualDomain; settings: ProxySettings }>();
  /** Directory clients by their settings, so that domains sharing a directory share its pool. */
  private readonly directories = new Map<string, UserDirectory>();
  private server: ProxyServer | undefined;

  constructor(private readonly options: VirtualDomainsOptions) {
    this.directories.set(JSON.stringify(options.settings.directory), options.directory);
    this.install(options.domains);
  }

  get domains(): VirtualDomain[] {
    return [...this.byAddress.values()].map((e) => e.vd);
  }

  /** Settings for a connection accepted on this local address. */
  settingsFor(localAddress: string): ProxySettings {
    const a = normalizeAddress(localAddress);
    return (a === undefined ? undefined : this.byAddress.get(a)?.settings) ?? this.options.settings;
  }

  /** The directory client for a connection's settings, created on first use. */
  directoryFor(settings: ProxySettings): UserDirectory {
    const key = JSON.stringify(settings.directory);
    let d = this.directories.get(key);
    if (d === undefined) {
      d = new Directory(settings.directory);
      this.directories.set(key, d);
    }
    return d;
  }

  /** What `check` finds in the current domains' settings, each at its `vdmap` line. */
  problems(): ConfigProblem[] {
    return this.problemsOf([...this.byAddress.values()]);
  }

  private problemsOf(
    entries: readonly { vd: VirtualDomain; settings: ProxySettings }[],
  ): ConfigProblem[] {
    const { check, path } = this.options;
    if (check === undefined) return [];
    const out: ConfigProblem[] = [];
    for (const { vd, settings } of entries) {
      const r = check(settings);
      if (!r.ok)
        out.push({
          where: `${basename(path)}:${vd.line}`,
          message: `vdmap ${vd.name}: ${r.error}`,
        });
    }
    return out;
  }

  /**
   * Listen on every mapped address too, unless ListenPort binds every address already (then the
   * one listener receives them all and the local address tells them apart).
   */
  async listen(server: ProxyServer): Promise<Result<true, string>> {
    this.server = server;
    for (const vd of this.domains) {
      const r = await this.listenOn(vd);
      if (!r.ok) return r;
    }
    return ok(true);
  }

  /**
   * SIGHUP: read the vdmap again. New connections get the new table; established sessions keep
   * the settings they started with. A file with problems changes nothing.
   */
  async reload(): Promise<Result<LoadedVdmap, ConfigProblem[]>> {
    const { log, path } = this.options;
    const loaded = loadVdmap(path);
    if (!loaded.ok) {
      for (const p of loaded.error)
        log.error('reload', 'vdmap refused, keeping the previous one', {
          where: p.where,
          problem: p.message,
        });
      return loaded;
    }
    for (const w of loaded.value.warnings)
      log.at('lifecycle', 'reload', 'vdmap warning', { where: w.where, problem: w.message });
    const next = this.settingsOf(loaded.value.domains);
    const problems = this.problemsOf([...next.values()]);
    if (problems.length > 0) {
      for (const p of problems)
        log.error('reload', 'vdmap refused, keeping the previous one', {
          where: p.where,
          problem: p.message,
        });
      return err(problems);
    }
    const before = this.domains;
    this.byAddress = next;
    if (this.server !== undefined) {
      for (const vd of loaded.value.domains) {
        const r = await this.listenOn(vd);
        if (!r.ok) log.error('reload', 'cannot listen on a mapped address', { error: r.error });
      }
      const kept = new Set(loaded.value.domains.map((d) => d.address));
      for (const vd of before) {
        if (kept.has(vd.address)) continue;
        const extra = this.extraListener(vd);
        if (extra !== undefined) await this.server.unlisten(extra);
        const extraTls = this.extraTlsListener(vd);
        if (extraTls !== undefined) await this.server.unlisten(extraTls, true);
      }
    }
    log.at('lifecycle', 'reload', 'vdmap reloaded', {
      file: path,
      domains: loaded.value.domains.map((d) => `${d.name}=${d.address}`).join(' '),
    });
    return loaded;
  }

  /** Close every directory client this table opened (the global one belongs to main.ts). */
  async close(): Promise<void> {
    const own = [...this.directories.values()].filter((d) => d !== this.options.directory);
    this.directories.clear();
    await Promise.all(own.map((d) => d.close()));
  }

  private install(domains: readonly VirtualDomain[]): void {
    this.byAddress = this.settingsOf(domains);
  }

  private settingsOf(
    domains: readonly VirtualDomain[],
  ): Map<string, { vd: VirtualDomain; settings: ProxySettings }> {
    const { protocol, values, settings } = this.options;
    const next = new Map<string, { vd: VirtualDomain; settings: ProxySettings }>();
    for (const vd of domains) {
      // Whatever main.ts added to the global settings (spoof message, TLS contexts…) carries over;
      // everything read from parameters is recomputed from the merged values.
      const own = settingsFrom({ protocol, values: applyVirtualDomain(values, vd) });
      next.set(vd.address, { vd, settings: { ...settings, ...own } });
    }
    return next;
  }

  /** The listener a domain needs besides ListenPort's, if any. */
  private extraListener(vd: VirtualDomain): Required<ListenAddress> | undefined {
    const listen = this.options.settings.listen;
    if (listen.host === undefined) return undefined;
    if (normalizeAddress(listen.host) === vd.address) return undefined;
    return { host: vd.address, port: listen.port };
  }

  /** The same for SSLListenPort, when SSL is on. */
  private extraTlsListener(vd: VirtualDomain): Required<ListenAddress> | undefined {
    const security = this.options.settings.security;
    if (security === undefined || !security.enable) return undefined;
    const listen = security.listen;
    if (listen.host === undefined) return undefined;
    if (normalizeAddress(listen.host) === vd.address) return undefined;
    return { host: vd.address, port: listen.port };
  }

  private async listenOn(vd: VirtualDomain): Promise<Result<true, string>> {
    const server = this.server;
    if (server === undefined) return ok(true);
    const wanted = [
      { address: this.extraListener(vd), tls: false },
      { address: this.extraTlsListener(vd), tls: true },
    ];
    for (const { address, tls } of wanted) {
      if (address === undefined) continue;
      try {
        await server.listenAlso(address, tls);
        this.options.log.at('lifecycle', 'start', 'listening for a virtual domain', {
          vdmap: vd.name,
          address: address.host,
          port: address.port,
          tls,
        });
      } catch (e) {
        return err(`${address.host}:${address.port} (vdmap ${vd.name}): ${(e as Error).message}`);
      }
    }
    return ok(true);
  }
}
