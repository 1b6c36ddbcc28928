/**
 * The runtime: everything sessions use that is made from the configuration and the files it
 * names — the settings of each site (the global one and each virtual domain's), their directory
 * clients with their connection pools and lookup caches, the loaded certmaps and CA bundles, the
 * server's TLS contexts, the spoof message — and the state logins share (the attempt limiter,
 * the refusal timing, the stores' POP3 capabilities, the pre-authentication cache).
 *
 * `main` builds one (buildRuntime) and gives it to the server; nothing in it is changed
 * afterwards, and no module keeps state of its own. A session takes the runtime current when it
 * was accepted and keeps it to the end, so that a newer runtime (a reload) serves new sessions
 * only: buildRuntime given the previous one (`sources.previous`) keeps the shared state whose
 * settings did not change.
 */

import { basename } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import {
  type ConfigProblem,
  type ConfigValues,
  type Protocol,
  type Result,
  type VirtualDomain,
  applyVirtualDomain,
  err,
  formatProblem,
  normalizeAddress,
  ok,
} from '@mmp/config';
import { StoreAttempts } from './attemptLimiter.js';
import { AuthPenalty, type FailedLogins, FleetPenalty } from './clientLimits.js';
import { Directory, type DirectorySettings, type UserDirectory } from './directory.js';
import { type ReadFile, readFromDisk } from './files.js';
import { type WorkerChannel, localFleet } from './ipc.js';
import { CachingDirectory } from './lookupCache.js';
import { type DirectoryHostState, Metrics } from './metrics/metrics.js';
import { StoreCapabilities } from './pop3/storeCapa.js';
import { type SpoofMessage, loadSpoofMessage, spoofWarnings } from './pop3/spoof.js';
import { PreAuthCache, PreAuthPool } from './preauth.js';
import { RefusalTiming } from './refusalTiming.js';
import { type ProxySettings, settingsFrom } from './settings.js';
import { type ServerTls, loadServerTls } from './tls/serverTls.js';
import { type CertLogin, type StoreTls, loadCertLogin, loadStoreTls } from './tls/settings.js';

/**
 * What a connection accepted on one local address works with: the settings for that address (the
 * global ones, or a virtual domain's over them) and what they name, loaded.
 */
export interface Site {
  readonly settings: ProxySettings;
  /** Its directory client, shared by every site with the same directory settings. */
  readonly directory: UserDirectory;
  /** Certificate login (CertMapFile, StoreAdmin), ready; undefined when not configured. */
  readonly certLogin: CertLogin | undefined;
  /** TLS to the stores (SSLBacksidePort), ready; undefined: plain TCP. */
  readonly storeTls: StoreTls | undefined;
}

/** A vdmap entry and its site. */
export interface DomainSite {
  readonly domain: VirtualDomain;
  readonly site: Site;
}

/**
 * One directory client per distinct directory settings (the global directory and each virtual
 * domain's own LdapUrl), each behind its lookup cache (LdapCacheSize, LdapCacheTTL), so that
 * sites and runtimes sharing a directory share its connections and cache. Closed at shutdown.
 */
export class Directories {
  private readonly open: { settings: DirectorySettings; directory: UserDirectory }[] = [];

  constructor(
    private readonly cache: {
      readonly entries: number;
      readonly ttlMs: number;
      readonly negativeTtlMs: number;
    },
    private readonly connect: (settings: DirectorySettings) => UserDirectory,
    private readonly metrics?: Metrics,
  ) {}

  for(settings: DirectorySettings): UserDirectory {
    const known = this.open.find((d) => isDeepStrictEqual(d.settings, settings));
    if (known !== undefined) return known.directory;
    const inner = this.connect(settings);
    const { entries, ttlMs, negativeTtlMs } = this.cache;
    const directory =
      (entries > 0 && ttlMs > 0) || negativeTtlMs > 0
        ? new CachingDirectory(inner, {
            ...this.cache,
            onHit: () => this.metrics?.directoryCacheHit(),
          })
        : inner;
    this.open.push({ settings, directory });
    return directory;
  }

  /** Every directory's hosts and their state (metrics, status page). */
  hostStates(): DirectoryHostState[] {
    return this.open.flatMap((d) => d.directory.hostStates?.() ?? []);
  }

  async close(): Promise<void> {
    const all = this.open.splice(0);
    await Promise.all(all.map((d) => d.directory.close()));
  }
}

export class ProxyRuntime {
  private readonly byAddress: ReadonlyMap<string, Site>;

  constructor(
    readonly protocol: Protocol,
    /** The global parameters it was made from (a virtual domain's values are merged onto them). */
    readonly values: ConfigValues,
    /** Connections on addresses no vdmap entry names. */
    readonly global: Site,
    /** The vdmap's entries, in file order. */
    readonly domains: readonly DomainSite[],
    /** SSLEnable: the certificates, keys and contexts for SSLListenPort and STARTTLS. */
    readonly serverTls: ServerTls | undefined,
    /** SpoofMessageFile, read and checked (POP3). */
    readonly spoof: SpoofMessage | undefined,
    readonly shared: {
      readonly directories: Directories;
      /** MaxConcurrentConnectionAttempts, per store. */
      readonly attempts: StoreAttempts;
      /** How long unknown users are held (`refusalTiming.ts`). */
      readonly refusalTiming: RefusalTiming;
      /** What each store's CAPA said (POP3 replay). */
      readonly storeCapabilities: StoreCapabilities;
      /** PreAuthCacheTTL. */
      readonly preAuthCache: PreAuthCache;
      /** Requests to the primary, for state one across NumThreads workers (`ipc.ts`). */
      readonly fleet: WorkerChannel;
      /** PreAuth's bounded bind connections. */
      readonly preAuthPool: PreAuthPool;
      /** AuthFailureDelay per client address (`clientLimits.ts`). */
      readonly authPenalty: FailedLogins;
      /** What is counted (`metrics/metrics.ts`), whether or not MetricsListen serves it. */
      readonly metrics: Metrics;
    },
  ) {
    this.byAddress = new Map(domains.map((d) => [d.domain.address, d.site]));
  }

  /** The site of a connection accepted on this local address. */
  siteFor(localAddress: string): Site {
    const a = normalizeAddress(localAddress);
    return (a === undefined ? undefined : this.byAddress.get(a)) ?? this.global;
  }
}

export interface RuntimeInput {
  readonly protocol: Protocol;
  readonly values: ConfigValues;
  /** The vdmap's entries (`vdomain/table.ts` loadVdmap) and its path, for messages. */
  readonly vdmap: { readonly path: string; readonly domains: readonly VirtualDomain[] } | undefined;
}

export interface RuntimeSources {
  /** Where files are read from (default: the disk). */
  readonly read?: ReadFile;
  /** Opens a directory client (default: LDAP, `directory.ts`). */
  readonly openDirectory?: (settings: DirectorySettings) => UserDirectory;
  /** Told each start-up warning (a file served with defaults), worded for the operator. */
  readonly warn?: (message: string) => void;
  /** This process's end of the channel to the primary (default: one with nobody answering). */
  readonly fleet?: WorkerChannel;
  /**
   * A reload: the runtime in force, whose shared state the new one keeps (directory clients with
   * their pools and caches, store attempt counts, refusal timing, stores' CAPA, the pre-auth
   * cache), unless the parameters that shape it changed.
   */
  readonly previous?: ProxyRuntime;
}

/**
 * Build the runtime: every file read and checked, every problem worded for the operator (one line
 * each; `main` prints them and exits 2). Nothing listens or connects yet.
 */
export function buildRuntime(
  input: RuntimeInput,
  sources: RuntimeSources = {},
): Result<ProxyRuntime, string[]> {
  const read = sources.read ?? readFromDisk;
  const { protocol, values } = input;
  const settings = settingsFrom({ protocol, values });
  let spoof: SpoofMessage | undefined;
  if (settings.spoofMessageFile !== undefined) {
    // Checked before listening: a broken file is an operator error to report now, not a surprise
    // on the day a store goes down (admin guide, SpoofMessageFile).
    const loaded = loadSpoofMessage(settings.spoofMessageFile, read);
    if (!loaded.ok) return err([`SpoofMessageFile ${settings.spoofMessageFile}: ${loaded.error}`]);
    spoof = loaded.value;
    for (const w of spoofWarnings(spoof))
      sources.warn?.(`SpoofMessageFile ${settings.spoofMessageFile}: ${w}`);
  }
  let serverTls: ServerTls | undefined;
  if (settings.security.enable) {
    const loaded = loadServerTls(settings.security.server, read);
    if (!loaded.ok) return err([loaded.error]);
    serverTls = loaded.value;
  }
  const before = sources.previous?.shared;
  // Kept over a reload: the counters go on (Prometheus sees no reset).
  const metrics =
    before?.metrics ??
    new Metrics(protocol, { processMetrics: settings.metricsListen !== undefined });
  const sameCache =
    sources.previous !== undefined &&
    isDeepStrictEqual(sources.previous.global.settings.lookupCache, settings.lookupCache);
  const directories =
    before !== undefined && sameCache
      ? before.directories
      : new Directories(
          settings.lookupCache,
          sources.openDirectory ?? ((s) => new Directory(s)),
          metrics,
        );
  const requestsCertificates = serverTls?.requestCert === true;
  const global = buildSite(settings, directories, read, requestsCertificates);
  if (!global.ok) return err([global.error]);
  const fleet = sources.fleet ?? before?.fleet ?? localFleet().worker;
  const samePreAuth =
    sources.previous?.global.settings.security.preAuthCacheTtlMs ===
    settings.security.preAuthCacheTtlMs;
  const attempts = before?.attempts ?? new StoreAttempts();
  const shared = {
    directories,
    attempts,
    metrics,
    refusalTiming: before?.refusalTiming ?? new RefusalTiming(),
    storeCapabilities: before?.storeCapabilities ?? new StoreCapabilities(),
    preAuthCache:
      before !== undefined && samePreAuth
        ? before.preAuthCache
        : new PreAuthCache(settings.security.preAuthCacheTtlMs),
    fleet,
    preAuthPool: before?.preAuthPool ?? new PreAuthPool(),
    // Kept by the primary for every worker (this process's own if it does not answer).
    authPenalty:
      before?.authPenalty ??
      new FleetPenalty(
        fleet,
        new AuthPenalty(settings.authPenalty, settings.connectionLimits.prefix4),
      ),
  };
  const domains = domainSites(
    protocol,
    values,
    input.vdmap,
    directories,
    read,
    requestsCertificates,
  );
  if (!domains.ok) return err(domains.error.map(formatProblem));
  // Re-pointed at each build that is used: the directories may be new ones (a changed cache).
  metrics.watch({
    stores: () => attempts.states(),
    directoryHosts: () => directories.hostStates(),
  });
  return ok(
    new ProxyRuntime(protocol, values, global.value, domains.value, serverTls, spoof, shared),
  );
}

function domainSites(
  protocol: Protocol,
  values: ConfigValues,
  vdmap: RuntimeInput['vdmap'],
  directories: Directories,
  read: ReadFile,
  requestsCertificates: boolean,
): Result<DomainSite[], ConfigProblem[]> {
  if (vdmap === undefined) return ok([]);
  const sites: DomainSite[] = [];
  const problems: ConfigProblem[] = [];
  for (const domain of vdmap.domains) {
    // Everything read from parameters is recomputed from the merged values: a domain's settings
    // are a new object, never the global ones changed.
    const settings = settingsFrom({ protocol, values: applyVirtualDomain(values, domain) });
    const site = buildSite(settings, directories, read, requestsCertificates);
    if (site.ok) sites.push({ domain, site: site.value });
    else
      problems.push({
        where: `${basename(vdmap.path)}:${domain.line}`,
        message: `vdmap ${domain.name}: ${site.error}`,
      });
  }
  return problems.length > 0 ? err(problems) : ok(sites);
}

/** A site's files (its certmap, the stores' CA bundle), read and checked; the first problem. */
function buildSite(
  settings: ProxySettings,
  directories: Directories,
  read: ReadFile,
  requestsCertificates: boolean,
): Result<Site, string> {
  const { proxyProtocol } = settings;
  if ((proxyProtocol.listen || proxyProtocol.sslListen) && proxyProtocol.trusted.length === 0)
    return err(
      'ProxyProtocol is set but ProxyProtocolTrustedNetworks is not: no balancer could connect',
    );
  const { certLogin, storeTls } = settings.security;
  const cert = certLogin === undefined ? ok(undefined) : loadCertLogin(certLogin, read);
  if (!cert.ok) return cert;
  // The TLS contexts are global: a vdmap entry's own StoreAdmin is useless unless they ask
  // clients for certificates (never silently off).
  if (cert.value !== undefined && !requestsCertificates)
    return err(
      'certificate login: StoreAdmin is set but client certificates are not requested: set SSLClientCAFile',
    );
  // The same for a required certificate: OpenSSL can only require what it asks for.
  const { requireClientCert } = settings.security;
  if (requireClientCert !== 'no' && !requestsCertificates)
    return err(
      `SSLRequireClientCert=${requireClientCert} needs the CA that issues client certificates: set SSLClientCAFile`,
    );
  const store = storeTls === undefined ? ok(undefined) : loadStoreTls(storeTls, read);
  if (!store.ok) return store;
  return ok({
    settings,
    directory: directories.for(settings.directory),
    certLogin: cert.value,
    storeTls: store.value,
  });
}
