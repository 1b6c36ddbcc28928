/**
 * Where does a user live? One LDAP search (admin guide, "How Multiplexor Works", step 2):
 * bind as BindDN/BindPass (anonymous when unset), search under BaseDN with the expanded UidSearch
 * filter, require exactly one entry, and read its MailHostAttrs values in order (each a store,
 * `host[:port]`) and UidAttr (the name to replay).
 *
 * LDAPHost may list several servers: they are tried in order, and one that failed (no connection,
 * no answer within LdapTimeout) is skipped for DIRECTORY_DEAD_HOST_MS. When every host is marked
 * dead, lookups fail at once (the login gets `[UNAVAILABLE]` / `[SYS/TEMP]`, not a wait of
 * LdapTimeout each) while a probe connects and binds to each host every DIRECTORY_PROBE_INTERVAL_MS;
 * the first that answers is used again at once (issue 14). Connections are kept open and shared by
 * all sessions; one that fails is dropped and replaced on the next lookup. At most
 * DIRECTORY_MAX_SEARCHES searches are in flight per directory; a few more wait, for LdapTimeout.
 *
 * Protocol-neutral: ImapProxy and PopProxy both use it. Errors are values, never exceptions.
 */

import { Client, NoSuchObjectError, ResultCodeError, SizeLimitExceededError } from 'ldapts';
import { type HostPort, type Result, err, ok } from '@mmp/config';
import { Gate } from './gate.js';
import {
  DIRECTORY_DEAD_HOST_MS,
  DIRECTORY_MAX_SEARCHES,
  DIRECTORY_MAX_WAITING_SEARCHES,
  DIRECTORY_POOL_SIZE,
  DIRECTORY_PROBE_INTERVAL_MS,
} from './limits.js';
import type { Log } from './log.js';
import type { DirectoryHostState } from './metrics/metrics.js';

/** One directory server: LDAPHost's `host[:port]`, or an LdapUrl (which may be ldaps). */
export interface DirectoryHost extends Readonly<HostPort> {
  /** ldaps:// (TLS from the first byte; default port 636). */
  readonly secure?: boolean | undefined;
  /** The URL's own base DN, over `baseDn`. */
  readonly baseDn?: string | undefined;
}

export interface DirectorySettings {
  /** LDAPHost (or LdapUrl), in order of preference. */
  readonly hosts: readonly DirectoryHost[];
  readonly baseDn: string;
  readonly bindDn: string | undefined;
  readonly bindPassword: string | undefined;
  /** MailHostAttrs, in order. */
  readonly mailHostAttrs: readonly string[];
  /** UidAttr: attribute whose value is the name replayed to the store. */
  readonly uidAttr: string | undefined;
  /** LdapTimeout: to connect, and for each bind or search. */
  readonly timeoutMs: number;
}

/**
 * LDAP result codes that say "not now" rather than "no" (RFC 4511 §A.2): timeLimitExceeded (3),
 * adminLimitExceeded (11), busy (51), unavailable (52), unwillingToPerform (53). A directory that
 * is overloaded or shutting down answers these; a login that gets one is a temporary failure, never
 * a wrong password (issue 14).
 */
const TEMPORARY_RESULT_CODES: ReadonlySet<number> = new Set([3, 11, 51, 52, 53]);

/** How an LDAP operation's failure reads: the server's word, a temporary one, or no answer. */
export type LdapFailure = 'refused' | 'temporary' | 'timeout' | 'lost';

export function classifyLdapError(e: unknown): LdapFailure {
  if (e instanceof ResultCodeError)
    return TEMPORARY_RESULT_CODES.has(e.code) ? 'temporary' : 'refused';
  // ldapts words its own time limits "Connection timeout" and "…: Operation timed out".
  if (e instanceof Error && /time(d)? ?out/i.test(e.message)) return 'timeout';
  return 'lost';
}

export interface UserEntry {
  dn: string;
  /** Stores to try, in MailHostAttrs order then value order; ports absent when not given. */
  mailHosts: HostPort[];
  /** The UidAttr value, when UidAttr is set and the entry has it. */
  replayName?: Buffer;
}

export type LookupError =
  /** No directory server could be reached, or it failed the search or our bind. */
  | { kind: 'unavailable'; detail: string }
  | { kind: 'no-such-user' }
  /** The filter matched several entries: refuse rather than guess. */
  | { kind: 'ambiguous' }
  /** The entry has no usable MailHostAttrs value. */
  | { kind: 'no-mail-host' };

/**
 * Where a lookup searches when not under BaseDN (certificate login, `certlogin.ts`): the subtree
 * under `dn`, or with scope `base` the entry `dn` itself (certmap.conf's subject-DN map).
 */
export interface SearchBase {
  readonly dn: string;
  readonly scope: 'base' | 'sub';
}

/** What the login path needs from a directory (the LDAP one below, or a fake in tests). */
export interface UserDirectory {
  /** Find the single entry matching `filter` (already expanded and RFC 4515-escaped), under
   * BaseDN or where `where` says. */
  lookup(filter: string, log: Log, where?: SearchBase): Promise<Result<UserEntry, LookupError>>;
  /** Drop a cached answer for `filter` (`lookupCache.ts`): its store failed. */
  forget?(filter: string, where?: SearchBase): void;
  /** Whether a directory host answers now (/healthz): the host that did, or why none did. */
  probe?(log: Log): Promise<Result<string, string>>;
  /** Each host and whether it is marked dead (metrics, status page). */
  hostStates?(): DirectoryHostState[];
  close(): Promise<void>;
}

const DEFAULT_LDAP_PORT = 389;
const DEFAULT_LDAPS_PORT = 636;

/** Parse a mailHost value: `host`, `host:port`, `[v6]`, `[v6]:port`, or a bare IPv6 address. */
export function parseMailHost(value: string): HostPort | undefined {
  const v = value.trim();
  if (v === '' || /[\s/@]/.test(v)) return undefined;
  if (v.startsWith('[')) {
    const close = v.indexOf(']');
    if (close < 2) return undefined;
    const host = v.slice(1, close);
    const rest = v.slice(close + 1);
    if (rest === '') return { host };
    const port = rest.startsWith(':') ? parsePort(rest.slice(1)) : undefined;
    return port === undefined ? undefined : { host, port };
  }
  const colons = v.split(':').length - 1;
  if (colons === 0) return { host: v };
  if (colons > 1) return { host: v }; // a bare IPv6 address
  const [host = '', portText = ''] = v.split(':');
  const port = parsePort(portText);
  return host === '' || port === undefined ? undefined : { host, port };
}

function parsePort(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= 1 && n <= 65535 ? n : undefined;
}

function hostKey(h: DirectoryHost): string {
  if (h.secure === true) return `ldaps://${h.host}:${h.port ?? DEFAULT_LDAPS_PORT}`;
  return `${h.host}:${h.port ?? DEFAULT_LDAP_PORT}`;
}

function ldapUrl(h: DirectoryHost): string {
  const host = h.host.includes(':') ? `[${h.host}]` : h.host;
  if (h.secure === true) return `ldaps://${host}:${h.port ?? DEFAULT_LDAPS_PORT}`;
  return `ldap://${host}:${h.port ?? DEFAULT_LDAP_PORT}`;
}

/** Values of an attribute as bytes, matching its name case-insensitively (RFC 4512 §2.5). */
function attributeValues(entry: Record<string, unknown>, name: string): Buffer[] {
  const lower = name.toLowerCase();
  for (const [key, raw] of Object.entries(entry)) {
    if (key.toLowerCase() !== lower) continue;
    const list = Array.isArray(raw) ? (raw as unknown[]) : [raw];
    return list.flatMap((v) =>
      Buffer.isBuffer(v) ? [v] : typeof v === 'string' ? [Buffer.from(v, 'utf8')] : [],
    );
  }
  return [];
}

interface PooledClient {
  client: Client;
  /** Settles once the connection is open and bound. */
  ready: Promise<Result<true, { detail: string; dead: boolean }>>;
  settled: boolean;
}

const ALL_DEAD = 'every directory host is marked dead';

export class Directory implements UserDirectory {
  /** Open connections per host key. */
  private readonly pools = new Map<string, PooledClient[]>();
  private readonly nextInPool = new Map<string, number>();
  /** Host key → time until which it is considered dead. */
  private readonly deadUntil = new Map<string, number>();
  private readonly searches = new Gate(DIRECTORY_MAX_SEARCHES, DIRECTORY_MAX_WAITING_SEARCHES);
  /** The background probe while every host is marked dead. */
  private probeTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly settings: DirectorySettings,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Find the single entry matching `filter` (already expanded and escaped) and its stores.
   */
  async lookup(
    filter: string,
    log: Log,
    where?: SearchBase,
  ): Promise<Result<UserEntry, LookupError>> {
    if (this.allDead(filter, log)) return err({ kind: 'unavailable', detail: ALL_DEAD });
    const slot = await this.searches.enter(this.settings.timeoutMs);
    if (!slot.ok) {
      log.at('refusal', 'directory search', 'too many directory searches', { reason: slot.reason });
      return err({ kind: 'unavailable', detail: `too many directory searches: ${slot.reason}` });
    }
    try {
      // The hosts may have died while this search waited for its turn.
      if (this.allDead(filter, log)) return err({ kind: 'unavailable', detail: ALL_DEAD });
      return await this.lookupOn(this.hostsToTry(), filter, log, where);
    } finally {
      slot.leave();
    }
  }

  /**
   * Every host failed a moment ago: then a lookup says so at once rather than wait out LdapTimeout
   * on a dead server; the probe brings a host back as soon as one answers.
   */
  private allDead(filter: string, log: Log): boolean {
    if (this.settings.hosts.length === 0 || this.hostsToTry().length > 0) return false;
    this.startProbe(log);
    log.at('refusal', 'directory search', ALL_DEAD, { filter });
    return true;
  }

  private async lookupOn(
    hosts: readonly DirectoryHost[],
    filter: string,
    log: Log,
    where: SearchBase | undefined,
  ): Promise<Result<UserEntry, LookupError>> {
    let lastFailure = 'no LDAPHost configured';
    for (const host of hosts) {
      const key = hostKey(host);
      log.at('dialogue', 'directory search', 'searching the directory', {
        ldap: key,
        base: where?.dn ?? host.baseDn ?? this.settings.baseDn,
        ...(where === undefined ? {} : { scope: where.scope }),
        filter,
      });
      // A pooled connection may have died since its last use (directory restarted): one retry on
      // a fresh connection before this host counts as down. A time-out is not retried: a hung
      // server would only make the user wait LdapTimeout twice.
      for (let attempt = 1; attempt <= 2; attempt++) {
        const r = await this.searchOn(host, filter, log, where);
        if (r.kind === 'done') return r.result;
        lastFailure = r.detail;
        log.at('refusal', 'directory search', 'directory search failed', {
          ldap: key,
          error: r.detail,
        });
        if (r.kind === 'refused') break; // the server answered: retrying would get the same
        if (r.kind === 'connect-failed' || r.kind === 'timeout' || attempt === 2) {
          this.markDead(host, log);
          break;
        }
      }
    }
    return err({ kind: 'unavailable', detail: lastFailure });
  }

  private async searchOn(
    host: DirectoryHost,
    filter: string,
    log: Log,
    where: SearchBase | undefined,
  ): Promise<
    | { kind: 'done'; result: Result<UserEntry, LookupError> }
    | { kind: 'connect-failed' | 'lost' | 'refused' | 'timeout'; detail: string }
  > {
    const s = this.settings;
    const attributes = [...s.mailHostAttrs];
    if (s.uidAttr !== undefined && s.uidAttr !== '') attributes.push(s.uidAttr);
    const conn = await this.connection(host, log);
    if (!conn.ok)
      return { kind: conn.error.dead ? 'connect-failed' : 'refused', detail: conn.error.detail };
    try {
      // sizeLimit 2: enough to tell "exactly one" from "several" without fetching a crowd.
      const { searchEntries } = await conn.value.client.search(
        where?.dn ?? host.baseDn ?? s.baseDn,
        {
          scope: where?.scope ?? 'sub',
          filter,
          attributes,
          sizeLimit: 2,
          explicitBufferAttributes: attributes,
        },
      );
      this.deadUntil.delete(hostKey(host));
      log.at('dialogue', 'directory search', 'directory answered', {
        ldap: hostKey(host),
        entries: searchEntries.length,
      });
      if (searchEntries.length === 0)
        return { kind: 'done', result: err({ kind: 'no-such-user' }) };
      if (searchEntries.length > 1) return { kind: 'done', result: err({ kind: 'ambiguous' }) };
      const entry = searchEntries[0] as Record<string, unknown> & { dn: string };
      return { kind: 'done', result: this.toUserEntry(entry, log) };
    } catch (e) {
      if (e instanceof SizeLimitExceededError)
        return { kind: 'done', result: err({ kind: 'ambiguous' }) };
      // A search base taken from a certificate that names no entry: nobody, not a failure.
      if (e instanceof NoSuchObjectError && where !== undefined)
        return { kind: 'done', result: err({ kind: 'no-such-user' }) };
      this.drop(host, conn.value);
      const failure = classifyLdapError(e);
      // Busy, unavailable…: the server answered, but another server may do better.
      const kind = failure === 'temporary' ? 'refused' : failure;
      return { kind, detail: describe(e) };
    }
  }

  /**
   * Does a directory host answer? A base-scope search of the base DN (no attributes) on the
   * first live host that answers: a balancer's health check must see a hung directory, which an
   * open connection alone would not show. An LDAP error result still is an answer. Hosts that do
   * not answer are marked dead, as a lookup would mark them.
   */
  async probe(log: Log): Promise<Result<string, string>> {
    const hosts = this.hostsToTry();
    // Every host marked dead: lookups fail at once until the background probe revives one.
    if (hosts.length === 0) return err('every LDAPHost is marked dead');
    let lastFailure = 'no LDAPHost configured';
    for (const host of hosts) {
      const key = hostKey(host);
      const conn = await this.connection(host, log);
      if (!conn.ok) {
        lastFailure = `${key}: ${conn.error.detail}`;
        if (conn.error.dead) this.markDead(host, log);
        continue;
      }
      try {
        await conn.value.client.search(host.baseDn ?? this.settings.baseDn, {
          scope: 'base',
          filter: '(objectClass=*)',
          attributes: ['1.1'],
          sizeLimit: 1,
        });
        return ok(key);
      } catch (e) {
        if (e instanceof ResultCodeError) return ok(key);
        this.drop(host, conn.value);
        this.markDead(host, log);
        lastFailure = `${key}: ${describe(e)}`;
      }
    }
    return err(lastFailure);
  }

  hostStates(): DirectoryHostState[] {
    const t = this.now();
    return this.settings.hosts.map((h) => {
      const host = hostKey(h);
      return { host, down: (this.deadUntil.get(host) ?? 0) > t };
    });
  }

  /** Close every pooled connection (shutdown). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.probeTimer !== undefined) clearTimeout(this.probeTimer);
    this.probeTimer = undefined;
    const all = [...this.pools.values()].flat();
    this.pools.clear();
    await Promise.all(all.map((p) => p.client.unbind().catch(() => undefined)));
  }

  private toUserEntry(
    entry: Record<string, unknown> & { dn: string },
    log: Log,
  ): Result<UserEntry, LookupError> {
    const s = this.settings;
    const mailHosts: HostPort[] = [];
    for (const attr of s.mailHostAttrs) {
      for (const raw of attributeValues(entry, attr)) {
        const parsed = parseMailHost(raw.toString('utf8'));
        if (parsed === undefined) {
          log.at('refusal', 'directory entry', 'ignoring an unusable mail host value', {
            dn: entry.dn,
            attr,
          });
          continue;
        }
        mailHosts.push(parsed);
      }
    }
    log.at('dialogue', 'directory entry', 'user entry found', {
      dn: entry.dn,
      mailHosts: mailHosts
        .map((h) => (h.port === undefined ? h.host : `${h.host}:${h.port}`))
        .join(' '),
    });
    if (mailHosts.length === 0) return err({ kind: 'no-mail-host' });
    const result: UserEntry = { dn: entry.dn, mailHosts };
    if (s.uidAttr !== undefined && s.uidAttr !== '') {
      const name = attributeValues(entry, s.uidAttr)[0];
      if (name !== undefined && name.length > 0) result.replayName = name;
    }
    return ok(result);
  }

  /** The hosts not marked dead, in configured order (none: every one is). */
  private hostsToTry(): DirectoryHost[] {
    const t = this.now();
    return this.settings.hosts.filter((h) => (this.deadUntil.get(hostKey(h)) ?? 0) <= t);
  }

  /**
   * Skip `host` for DIRECTORY_DEAD_HOST_MS, dropping its connections (a hung server's would hang
   * the next searches too); with every host dead, probe them.
   */
  private markDead(host: DirectoryHost, log: Log): void {
    const key = hostKey(host);
    this.deadUntil.set(key, this.now() + DIRECTORY_DEAD_HOST_MS);
    for (const p of [...(this.pools.get(key) ?? [])]) this.drop(host, p);
    log.at('refusal', 'directory', 'directory host marked dead', { ldap: key });
    if (this.hostsToTry().length === 0) this.startProbe(log);
  }

  /**
   * While every host is marked dead: every DIRECTORY_PROBE_INTERVAL_MS, connect and bind to each
   * (a new connection, not a pooled one that may hang), within LdapTimeout; the first that
   * answers is alive again. `log`: the log of the lookup that found them dead.
   */
  private startProbe(log: Log): void {
    if (this.probeTimer !== undefined || this.closed) return;
    const probe = async (): Promise<void> => {
      const dead = this.settings.hosts.filter((h) => this.deadUntil.has(hostKey(h)));
      const alive = await Promise.all(dead.map((h) => this.probeHost(h)));
      if (this.closed) return;
      dead.forEach((h, i) => {
        if (alive[i] !== true) return;
        this.deadUntil.delete(hostKey(h));
        log.at('session', 'directory', 'directory host answers again', { ldap: hostKey(h) });
      });
      if (this.hostsToTry().length > 0) {
        this.probeTimer = undefined;
        return;
      }
      this.probeTimer = setTimeout(() => void probe(), DIRECTORY_PROBE_INTERVAL_MS);
      this.probeTimer.unref();
    };
    this.probeTimer = setTimeout(() => void probe(), DIRECTORY_PROBE_INTERVAL_MS);
    this.probeTimer.unref();
  }

  private async probeHost(host: DirectoryHost): Promise<boolean> {
    const client = this.newClient(host);
    try {
      const s = this.settings;
      const dn = s.bindDn ?? '';
      await client.bind(dn, dn === '' ? '' : (s.bindPassword ?? ''));
      return true;
    } catch (e) {
      // A refused bind is an answer: the server is up (the searches will say what is wrong).
      return e instanceof ResultCodeError && classifyLdapError(e) === 'refused';
    } finally {
      client.unbind().catch(() => undefined);
    }
  }

  private newClient(host: DirectoryHost): Client {
    const { timeoutMs } = this.settings;
    return new Client({ url: ldapUrl(host), connectTimeout: timeoutMs, timeout: timeoutMs });
  }

  /**
   * A bound connection to `host` from the pool, creating one while the pool is not full or in
   * place of one that lost its connection. Each connection is opened and bound once, by one
   * caller, and the sessions sharing it wait for that: ldapts reconnects lazily on the next
   * operation, and many operations arriving on a closed client at once would each open a socket.
   */
  private async connection(
    host: DirectoryHost,
    log: Log,
  ): Promise<Result<PooledClient, { detail: string; dead: boolean }>> {
    const key = hostKey(host);
    const pool = this.pools.get(key) ?? [];
    this.pools.set(key, pool);
    for (const p of [...pool]) {
      if (p.settled && !p.client.isConnected) this.drop(host, p);
    }
    let pooled: PooledClient;
    if (pool.length >= DIRECTORY_POOL_SIZE) {
      const i = (this.nextInPool.get(key) ?? 0) % pool.length;
      this.nextInPool.set(key, i + 1);
      pooled = pool[i] as PooledClient;
    } else {
      const client = this.newClient(host);
      const created: PooledClient = { client, settled: false, ready: this.bind(client, key, log) };
      void created.ready.then(() => (created.settled = true));
      pooled = created;
      pool.push(pooled);
    }
    const ready = await pooled.ready;
    if (ready.ok) return ok(pooled);
    this.drop(host, pooled);
    return err(ready.error);
  }

  /** Connect and bind: as BindDN, or anonymously (RFC 4513 §5.1.1) so that the connection is up. */
  private async bind(
    client: Client,
    key: string,
    log: Log,
  ): Promise<Result<true, { detail: string; dead: boolean }>> {
    const s = this.settings;
    const dn = s.bindDn ?? '';
    try {
      log.at('dialogue', 'directory bind', 'binding to the directory', {
        ldap: key,
        bindDn: dn === '' ? '(anonymous)' : dn,
      });
      await client.bind(dn, dn === '' ? '' : (s.bindPassword ?? ''));
      return ok(true);
    } catch (e) {
      const detail = describe(e);
      log.at('refusal', 'directory bind', 'cannot bind to the directory', {
        ldap: key,
        error: detail,
      });
      // A refused bind is a configuration problem, not a dead server: do not skip the host.
      return err({ detail, dead: classifyLdapError(e) !== 'refused' });
    }
  }

  private drop(host: HostPort, pooled: PooledClient): void {
    const key = hostKey(host);
    const pool = this.pools.get(key);
    if (pool !== undefined) {
      const i = pool.indexOf(pooled);
      if (i >= 0) pool.splice(i, 1);
    }
    pooled.client.unbind().catch(() => undefined);
  }
}

function describe(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as Error & { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${e.message}` : e.message;
  }
  return String(e);
}
