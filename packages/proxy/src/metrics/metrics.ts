/**
 * What the multiplexor counts (issue 16), in one place: every Prometheus metric it exposes, with
 * the calls that record them. The code where an event happens makes one small call here
 * (`metrics.login(…)`, `metrics.storeAttempt(…)`); nothing on the piped hot path: bytes are read
 * from the sockets' own counters when a session ends. The listener that serves them
 * (`metrics/listener.ts`), the status page (`metrics/status.ts`) and the aggregation across
 * NumThreads workers (`metrics/cluster.ts`) only read the registry.
 *
 * One `Metrics` per process, made with the runtime (`proxyRuntime.ts`, `runtime.shared.metrics`):
 * a registry of its own (never prom-client's global one), so tests and reloads see their own.
 *
 * Counting a refusal of a limit: one line where the limit refuses,
 *
 *     ctx.runtime.shared.metrics.refused('bad-commands');
 *
 * with the limit's name added to LIMITS below (kebab-case, after its constant in `limits.ts` or
 * its parameter), so that its series exists at 0 from the start and `rate()` works at once.
 */

import {
  Counter,
  Gauge,
  Histogram,
  type MetricObjectWithValues,
  type MetricValue,
  Registry,
  collectDefaultMetrics,
} from 'prom-client';
import type { Protocol } from '@mmp/config';

/** Every limit whose refusals are counted (`mmp_limit_refusals_total{limit}`). */
export const LIMITS = [
  /** MAX_BAD_COMMANDS invalid commands in a row: the session is closed. */
  'bad-commands',
  /** MAX_FAILED_LOGINS failed logins in one session: the session is closed. */
  'failed-logins',
  /** Timeout: a client idle before login is closed. */
  'idle',
  /** A framing limit (line, literal, list depth…) that ends the session. */
  'framing',
  /** MAX_PIPELINED_BYTES: the client stopped being read while its login runs. */
  'pipelined-bytes',
  /** MaxConcurrentConnectionAttempts (or a store marked down): a store skipped for a login. */
  'store-attempts',
  /** MAX_COMMANDS_BEFORE_LOGIN: the session is closed instead of answering one more. */
  'too-many-commands',
  /** LoginTimeout: no login in time, whatever the client sent. */
  'login-timeout',
  /** MaxClientConnections or the descriptor cap: refused with a greeting. */
  'server-full',
  /** MaxConnectionsPerAddress: refused with a greeting. */
  'address-full',
] as const;
export type Limit = (typeof LIMITS)[number];

/** Where a session is: before login (commands, TLS, SASL), logging in, piped, or in the POP3
 * spoof inbox. */
export type SessionPhase = 'pre-login' | 'logging-in' | 'piped' | 'spoof';
const PHASES: readonly SessionPhase[] = ['pre-login', 'logging-in', 'piped', 'spoof'];

/** `LoginOutcome['kind']` (login.ts), as a label. */
export type LoginResult =
  'logged-in' | 'refused' | 'unknown-user' | 'directory-down' | 'stores-down' | 'aborted';
const LOGIN_RESULTS: readonly LoginResult[] = [
  'logged-in',
  'refused',
  'unknown-user',
  'directory-down',
  'stores-down',
  'aborted',
];

/** What one directory lookup found. */
export type LookupResult = 'found' | 'no-such-user' | 'ambiguous' | 'no-mail-host' | 'unavailable';

/** What one attempt on one store came to (login.ts, tryStores). */
export type StoreAttemptResult =
  /** Logged in. */
  | 'accepted'
  /** The store refused the credentials. */
  | 'refused'
  /** No connection (refused, timeout, TLS). */
  | 'unreachable'
  /** Connected but failed before answering the login (greeting, replay timeout…). */
  | 'failed'
  /** Not tried: MaxConcurrentConnectionAttempts reached, or marked down. */
  | 'skipped';

export type TlsKind = 'implicit' | 'starttls';

/** A store's state as the attempt limiter sees it (`attemptLimiter.ts`). */
export interface StoreState {
  readonly store: string;
  readonly inFlight: number;
  readonly down: boolean;
}

/** A directory host's state (`directory.ts`): marked dead after a failure, or usable. */
export interface DirectoryHostState {
  readonly host: string;
  readonly down: boolean;
}

/** One entry of the recent errors the status page shows: no user name, no secret. */
export interface RecentError {
  readonly at: string;
  readonly pid: number;
  readonly what: string;
  readonly detail: string;
}

/** How many recent errors each process keeps for the status page. */
export const RECENT_ERRORS = 20;

/** Seconds: a directory answers in about a millisecond, a store login in a few; a hung one
 * times out after StoreConnectTimeout (10 s) or STORE_REPLY_TIMEOUT_MS (30 s). */
const LATENCY_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];

/** A session's place in `mmp_sessions`, moved as it goes and removed when it ends. */
export interface SessionTracker {
  phase(phase: SessionPhase, store?: string): void;
  /** The session ended; `bytes`: the client connection's counters (socket.bytesRead/Written). */
  end(bytes: { fromClient: number; toClient: number }): void;
}

/** One session's place in the session gauge: an object, not closures (an idle piped session keeps
 * it for hours). */
class TrackedSession implements SessionTracker {
  private labels: { phase: SessionPhase; store: string } = { phase: 'pre-login', store: '' };
  private ended = false;

  constructor(
    private readonly gauge: Gauge<'phase' | 'store'>,
    private readonly bytes: Counter<'direction'>,
  ) {
    gauge.inc(this.labels);
  }

  phase(phase: SessionPhase, store = ''): void {
    if (this.ended) return;
    this.gauge.dec(this.labels);
    this.labels = { phase, store };
    this.gauge.inc(this.labels);
  }

  end({ fromClient, toClient }: { fromClient: number; toClient: number }): void {
    if (this.ended) return;
    this.ended = true;
    this.gauge.dec(this.labels);
    this.bytes.inc({ direction: 'from_client' }, fromClient);
    this.bytes.inc({ direction: 'to_client' }, toClient);
  }
}

export class Metrics {
  readonly registry = new Registry();
  private readonly sessions: Gauge<'phase' | 'store'>;
  private readonly connections: Counter;
  private readonly logins: Counter<'outcome' | 'principal'>;
  private readonly directorySeconds: Histogram;
  private readonly storeSeconds: Histogram;
  private readonly lookups: Counter<'result'>;
  private readonly cacheHits: Counter;
  private readonly storeAttempts: Counter<'store' | 'result'>;
  private readonly bytes: Counter<'direction'>;
  private readonly tls: Counter<'kind' | 'result'>;
  private readonly refusals: Counter<'limit'>;
  private readonly recent: RecentError[] = [];
  /** Stores ever tried, so that one that came back up still shows `mmp_store_down 0`. */
  private readonly storesSeen = new Set<string>();
  private stores: () => readonly StoreState[] = () => [];
  private directoryHosts: () => readonly DirectoryHostState[] = () => [];
  private draining = false;

  constructor(
    readonly protocol: Protocol,
    options: { processMetrics?: boolean } = {},
  ) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ protocol });
    if (options.processMetrics !== false) {
      // prom-client's process and Node.js metrics (CPU, memory, heap, event-loop lag, GC),
      // without the three gauges it names `_total`, which `promtool check metrics` rejects.
      collectDefaultMetrics({ register: this.registry, prefix: 'mmp_' });
      for (const name of ['handles', 'requests', 'resources'])
        this.registry.removeSingleMetric(`mmp_nodejs_active_${name}_total`);
    }
    this.sessions = new Gauge({
      name: 'mmp_sessions',
      help: 'Client sessions open now, by phase (pre-login, logging-in, piped, spoof) and store',
      labelNames: ['phase', 'store'],
      registers,
    });
    for (const phase of PHASES) if (phase !== 'piped') this.sessions.set({ phase, store: '' }, 0);
    this.connections = new Counter({
      name: 'mmp_connections_total',
      help: 'Client connections accepted',
      registers,
    });
    this.logins = new Counter({
      name: 'mmp_logins_total',
      help: 'Logins by outcome and principal (password, certificate, bearer)',
      labelNames: ['outcome', 'principal'],
      registers,
    });
    for (const outcome of LOGIN_RESULTS) this.logins.inc({ outcome, principal: 'password' }, 0);
    this.directorySeconds = new Histogram({
      name: 'mmp_login_directory_seconds',
      help: "Time a login spent on the directory (lookup, cache included; PreAuth's bind)",
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.storeSeconds = new Histogram({
      name: 'mmp_login_store_seconds',
      help: 'Time a login spent on the stores (each mailHost tried: connect, greeting, replay)',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.lookups = new Counter({
      name: 'mmp_directory_lookups_total',
      help: 'Directory lookups by result (cache hits included)',
      labelNames: ['result'],
      registers,
    });
    for (const result of ['found', 'no-such-user', 'ambiguous', 'no-mail-host', 'unavailable'])
      this.lookups.inc({ result }, 0);
    this.cacheHits = new Counter({
      name: 'mmp_directory_cache_hits_total',
      help: 'Directory lookups answered by the lookup cache (LdapCacheSize, LdapCacheTTL)',
      registers,
    });
    this.storeAttempts = new Counter({
      name: 'mmp_store_attempts_total',
      help: 'Login attempts on each store by result (accepted, refused, unreachable, failed, skipped)',
      labelNames: ['store', 'result'],
      registers,
    });
    // The state gauges read the limiter and the directories at each scrape (`collect`, whose
    // `this` is the gauge).
    const seen = this.storesSeen;
    const storeStates = (): Map<string, StoreState> =>
      new Map(this.stores().map((s) => [s.store, s]));
    const hostStates = (): readonly DirectoryHostState[] => this.directoryHosts();
    const draining = (): boolean => this.draining;
    new Gauge({
      name: 'mmp_store_down',
      help: 'Store marked down after a timeout (1) or usable (0); with NumThreads, by any worker',
      labelNames: ['store'],
      registers,
      aggregator: 'max',
      collect() {
        this.reset();
        const states = storeStates();
        for (const store of seen) this.set({ store }, states.get(store)?.down === true ? 1 : 0);
      },
    });
    new Gauge({
      name: 'mmp_store_attempts_in_flight',
      help: 'Login attempts in flight to each store (MaxConcurrentConnectionAttempts caps them)',
      labelNames: ['store'],
      registers,
      collect() {
        this.reset();
        const states = storeStates();
        for (const store of seen) this.set({ store }, states.get(store)?.inFlight ?? 0);
      },
    });
    new Gauge({
      name: 'mmp_directory_host_down',
      help: 'Directory host (LDAPHost) marked dead after a failure (1) or usable (0)',
      labelNames: ['host'],
      registers,
      aggregator: 'max',
      collect() {
        this.reset();
        for (const h of hostStates()) this.set({ host: h.host }, h.down ? 1 : 0);
      },
    });
    new Gauge({
      name: 'mmp_draining',
      help: 'The process is draining (stopping, or told to drain): it accepts no new logins',
      registers,
      aggregator: 'max',
      collect() {
        this.set(draining() ? 1 : 0);
      },
    });
    this.bytes = new Counter({
      name: 'mmp_client_bytes_total',
      help: 'Bytes on client connections, from_client or to_client, counted when a session ends',
      labelNames: ['direction'],
      registers,
    });
    this.bytes.inc({ direction: 'from_client' }, 0);
    this.bytes.inc({ direction: 'to_client' }, 0);
    this.tls = new Counter({
      name: 'mmp_tls_handshakes_total',
      help: 'Client TLS handshakes by kind (implicit: SSLListenPort, starttls) and result',
      labelNames: ['kind', 'result'],
      registers,
    });
    for (const kind of ['implicit', 'starttls'])
      for (const result of ['ok', 'failed']) this.tls.inc({ kind, result }, 0);
    this.refusals = new Counter({
      name: 'mmp_limit_refusals_total',
      help: 'Refusals by a limit (limits.ts and limit parameters), by limit',
      labelNames: ['limit'],
      registers,
    });
    for (const limit of LIMITS) this.refusals.inc({ limit }, 0);
  }

  /** Where the store and directory-host states are read at each scrape (`proxyRuntime.ts`). */
  watch(sources: {
    stores?: () => readonly StoreState[];
    directoryHosts?: () => readonly DirectoryHostState[];
  }): void {
    if (sources.stores !== undefined) this.stores = sources.stores;
    if (sources.directoryHosts !== undefined) this.directoryHosts = sources.directoryHosts;
  }

  /** A client connection was accepted: its session starts before login. */
  sessionStarted(): SessionTracker {
    this.connections.inc();
    return new TrackedSession(this.sessions, this.bytes);
  }

  /** A login ended with `outcome`; `seconds`: its directory and store times (absent: not
   * reached). */
  login(
    outcome: LoginResult,
    principal: 'password' | 'certificate' | 'bearer',
    seconds: { directory?: number | undefined; store?: number | undefined },
  ): void {
    this.logins.inc({ outcome, principal });
    if (seconds.directory !== undefined) this.directorySeconds.observe(seconds.directory);
    if (seconds.store !== undefined) this.storeSeconds.observe(seconds.store);
  }

  directoryLookup(result: LookupResult): void {
    this.lookups.inc({ result });
  }

  /** A lookup the cache answered (counted in directoryLookup too, as found). */
  directoryCacheHit(): void {
    this.cacheHits.inc();
  }

  storeAttempt(store: string, result: StoreAttemptResult): void {
    this.storesSeen.add(store);
    this.storeAttempts.inc({ store, result });
  }

  tlsHandshake(kind: TlsKind, ok: boolean): void {
    this.tls.inc({ kind, result: ok ? 'ok' : 'failed' });
  }

  /** One refusal by a limit (see the module comment). */
  refused(limit: Limit): void {
    this.refusals.inc({ limit });
  }

  /** Something went wrong that an operator should see on the status page. Never a user name or
   * a secret in `detail`: error messages of sockets, the directory, the stores. */
  error(what: string, detail: string): void {
    this.recent.push({ at: new Date().toISOString(), pid: process.pid, what, detail });
    if (this.recent.length > RECENT_ERRORS) this.recent.shift();
  }

  recentErrors(): readonly RecentError[] {
    return this.recent;
  }

  /** Draining (stopping, or a drain request): /healthz answers 503 from now on. */
  setDraining(draining: boolean): void {
    this.draining = draining;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** This process's metrics as JSON, the form the workers send to be aggregated. */
  snapshot(): Promise<MetricObjectWithValues<MetricValue<string>>[]> {
    return this.registry.getMetricsAsJSON();
  }
}
