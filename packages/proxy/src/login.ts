/**
 * The login path, one for every way of logging in and for both protocols (admin guide, "How
 * Multiplexor Works", steps 2 and 3):
 *
 *   principal ─▶ directory filter ─▶ the user's entry ─▶ what to replay ─▶ each mailHost in turn
 *     (attempt limiter, cache eviction, ForwardClientAddress) ─▶ the protocol's replay
 *
 * The outcome is one value the session turns into its protocol's words. Whatever the principal,
 * a login gets every protection: the cap on attempts in flight per store, a failed store evicting
 * the user's cached entry, the client's address told to the store, an unknown user answered no
 * sooner than a store refuses, and the same log records.
 *
 * A store that cannot be reached, hangs, or greets with a refusal is skipped for the next mailHost;
 * a store that answers the login (accepts or refuses) is final.
 */

import type { Socket } from 'node:net';
import { expandSearch, parseDn, type Result, err, ok } from '@mmp/config';
import type { ConnectionAddresses } from './clientAddress.js';
import type { SearchBase, UserEntry } from './directory.js';
import type { Log } from './log.js';
import { preAuthMessage, preAuthenticate } from './preauth.js';
import type { ProxyRuntime, Site } from './proxyRuntime.js';
import { type BearerMechanism, type Credentials, bearerRefusal, isCancel } from './sasl.js';
import {
  type ChallengeRelay,
  type Replay,
  type StoreAddress,
  type StoreLogin,
  StoreConversation,
  connectStore,
  formatAddress,
  storeAddress,
  storeGreets,
} from './store.js';
import type { ClientCertificateInfo } from './tls/clientTls.js';
import { connectStoreTls } from './tls/storeTls.js';
import { type MappedName, mapUserName } from './vdomain/names.js';

/** Who logs in, and what proves it. */
export type Principal =
  /**
   * A name and password (IMAP LOGIN, POP3 USER/PASS, AUTHENTICATE / AUTH PLAIN or LOGIN); `sasl`:
   * given by AUTHENTICATE / AUTH.
   */
  | { kind: 'password'; credentials: Credentials; sasl: boolean }
  /**
   * A verified client certificate (AUTHENTICATE / AUTH EXTERNAL, RFC 4422 App. A), the directory
   * search certmap.conf made of it (`certlogin.ts`, once), and the authorization identity the
   * client asked for (empty: whoever the certificate names). The store's master user logs in.
   */
  | { kind: 'certificate'; peer: ClientCertificateInfo; search: CertificateSearch; authzid: Buffer }
  /**
   * An OAuth2 bearer token (AUTHENTICATE / AUTH XOAUTH2 or OAUTHBEARER, RFC 7628): `user`, the
   * name inside the message, finds the store; the store, which alone can judge the token, gets
   * the same mechanism and `message` byte for byte (`sasl.ts`).
   */
  | { kind: 'bearer'; mechanism: BearerMechanism; user: Buffer; message: Buffer };

/** Where a certificate's entry is searched (`certlogin.ts`): the filter, and the base when it is
 * not BaseDN (certmap.conf's DNComps, or the subject DN itself). */
export interface CertificateSearch {
  readonly filter: string;
  readonly where: SearchBase | undefined;
}

export type LoginOutcome =
  | {
      kind: 'logged-in';
      store: StoreAddress;
      socket: Socket;
      /** Bytes the store sent after its answer (to reach the client before anything else). */
      leftover: Buffer;
      answer: Buffer;
      /** IMAP: the store's untagged lines before its answer, CRLFs included, for the client. */
      untagged?: Buffer | undefined;
    }
  | { kind: 'refused'; store: StoreAddress; answer: Buffer; untagged?: Buffer | undefined }
  /** No such user, several entries, no mail host, or a name that is not UTF-8. */
  | { kind: 'unknown-user'; reason: string }
  | { kind: 'directory-down'; detail: string }
  | { kind: 'stores-down'; detail: string }
  /** A bearer login whose user is unknown: the client cancelled the error challenge (`*`). */
  | { kind: 'aborted' };

export interface LoginContext {
  /** The session's site: its settings, directory, certificate login and store TLS. */
  readonly site: Site;
  /** The runtime's shared login state: attempt limiter, refusal timing, pre-authentication cache. */
  readonly shared: ProxyRuntime['shared'];
  readonly log: Log;
  /** Both ends of the client connection (UidSearch %C %S, ForwardClientAddress). */
  readonly addresses: ConnectionAddresses;
  /** The verified client certificate's subject DN (UidSearch `%D`), when one was presented. */
  readonly subjectDn: string | undefined;
  /** The protocol's replay (`imap/replay.ts`, `pop3/replay.ts`). */
  readonly replay: Replay;
  /**
   * Say a SASL challenge line (`+ …`) to the client and give back its reply line as sent, or
   * undefined when the client left: a store's RFC 7628 error challenge travels to the client and
   * the reply back to the store unchanged (the session, `session.ts`).
   */
  readonly relay: ChallengeRelay;
}

/** Log `principal` in: find the user, then their store. */
export async function logIn(ctx: LoginContext, principal: Principal): Promise<LoginOutcome> {
  const timing = ctx.shared.refusalTiming;
  const started = Date.now();
  const seconds: Seconds = {};
  const outcome = await attempt(ctx, principal, seconds);
  const elapsed = Date.now() - started;
  const { metrics } = ctx.shared;
  metrics.login(outcome.kind, principal.kind, seconds);
  if (outcome.kind === 'directory-down') metrics.error('directory unavailable', outcome.detail);
  if (outcome.kind === 'stores-down') metrics.error('no store reachable', outcome.detail);
  // A bearer refusal took as long as the client took to answer the store's challenge too.
  if (outcome.kind === 'refused' && principal.kind !== 'bearer') timing.observe(elapsed);
  if (outcome.kind === 'unknown-user') {
    const hold = timing.holdFor(elapsed);
    if (principal.kind === 'bearer') {
      // The proxy cannot tell a good token from a bad one, only the store can: an unknown user
      // gets what a Dovecot store says to any refused token (its error challenge, the client's
      // reply, then the same NO), so that names cannot be probed (sasl.ts, bearerRefusal).
      const reply = await ctx.relay(bearerRefusal(principal.mechanism));
      if (reply !== undefined && isCancel(reply)) return { kind: 'aborted' };
    }
    if (hold > 0) await new Promise((resolve) => setTimeout(resolve, hold));
  }
  await penalise(ctx, outcome);
  return outcome;
}

/**
 * AuthFailureDelay: a failed login (a store's refusal, an unknown user, a PreAuth refusal, a
 * cancelled bearer challenge) is answered only after its address's penalty (`clientLimits.ts`),
 * the same for every kind of failure so that neither text nor timing tells them apart; a success
 * clears its own address's count. Keyed by the client address, never the user: nobody can lock a
 * real user out by failing in their name.
 */
async function penalise(ctx: LoginContext, outcome: LoginOutcome): Promise<void> {
  const { clientIp } = ctx.addresses;
  const penalty = ctx.shared.authPenalty;
  switch (outcome.kind) {
    case 'logged-in':
      penalty.succeeded(clientIp);
      return;
    case 'refused':
    case 'unknown-user':
    case 'aborted': {
      const delay = await penalty.failed(clientIp);
      if (delay <= 0) return;
      ctx.log.at('refusal', 'login', 'failed login delayed', { client: clientIp, ms: delay });
      await new Promise((resolve) => setTimeout(resolve, delay));
      return;
    }
    case 'directory-down':
    case 'stores-down':
      return;
  }
}

/** A principal, ready for the directory: its filter, and what to replay once its entry is found. */
interface User {
  filter: string;
  /** The search base, when not BaseDN (certificate login). */
  where?: SearchBase | undefined;
  storeLogin(entry: UserEntry): Promise<Result<StoreLogin, LoginOutcome>>;
}

function userOf(ctx: LoginContext, principal: Principal): Result<User, LoginOutcome> {
  switch (principal.kind) {
    case 'password':
      return passwordUser(ctx, principal);
    case 'certificate':
      return certificateUser(ctx, principal);
    case 'bearer':
      return bearerUser(ctx, principal);
  }
}

/** Where a login spent its time (metrics): the directory (lookup, PreAuth) and the stores. */
interface Seconds {
  directory?: number;
  store?: number;
}

const since = (start: bigint): number => Number(process.hrtime.bigint() - start) / 1e9;

async function attempt(
  ctx: LoginContext,
  principal: Principal,
  seconds: Seconds,
): Promise<LoginOutcome> {
  const user = userOf(ctx, principal);
  if (!user.ok) return user.error;
  const { filter, where } = user.value;
  const directoryStart = process.hrtime.bigint();
  const entry = await ctx.site.directory.lookup(filter, ctx.log, where);
  ctx.shared.metrics.directoryLookup(entry.ok ? 'found' : entry.error.kind);
  if (!entry.ok) {
    seconds.directory = since(directoryStart);
    const e = entry.error;
    if (e.kind === 'unavailable') return { kind: 'directory-down', detail: e.detail };
    return { kind: 'unknown-user', reason: e.kind };
  }
  const login = await user.value.storeLogin(entry.value);
  seconds.directory = since(directoryStart);
  if (!login.ok) return login.error;
  const storeStart = process.hrtime.bigint();
  const outcome = await tryStores(ctx, { filter, where }, entry.value, login.value);
  seconds.store = since(storeStart);
  return outcome;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

const unknown = (reason: string): { ok: false; error: LoginOutcome } =>
  err({ kind: 'unknown-user', reason });

/** A typed user name as the directory sees it: the names (virtual domains applied) and the
 * expanded UidSearch filter. */
function namedUser(
  ctx: LoginContext,
  user: Buffer,
): Result<{ names: MappedName; filter: string }, LoginOutcome> {
  const { settings } = ctx.site;
  let typed: string;
  try {
    typed = utf8.decode(user);
  } catch {
    // A directory holds UTF-8 names (RFC 4511 §4.1.2); such a name can match nobody.
    return unknown('user name is not UTF-8');
  }
  // Virtual domains: `alice@one.example` (or `alice` on one.example's address) is
  // `alice+one.example` for the directory and the store; a domain not served here is refused like
  // an unknown user (vdomain/names.ts).
  let names: MappedName = { user: typed, canonical: typed, original: typed };
  if (settings.userNames !== undefined) {
    const mapped = mapUserName(typed, settings.userNames);
    if (!mapped.ok) return unknown(mapped.error);
    names = mapped.value;
    ctx.log.at('dialogue', 'user name', 'virtual domain applied', {
      typed,
      canonical: names.canonical,
    });
  }
  const { clientIp, serverIp } = ctx.addresses;
  const filter = expandSearch(settings.searchFormat, {
    ...names,
    clientIp,
    serverIp,
    ...(ctx.subjectDn === undefined ? {} : { subjectDn: ctx.subjectDn }),
  });
  return ok({ names, filter });
}

function passwordUser(
  ctx: LoginContext,
  { credentials, sasl }: Extract<Principal, { kind: 'password' }>,
): Result<User, LoginOutcome> {
  const { settings } = ctx.site;
  const named = namedUser(ctx, credentials.user);
  if (!named.ok) return named;
  const { names, filter } = named.value;
  return ok({
    filter,
    storeLogin: async (entry) => {
      if (settings.security.preAuth) {
        const refused = await preAuthenticated(ctx, entry, credentials.password, names.canonical);
        if (refused !== undefined) return err(refused);
      }
      // UidAttr names the account on the store; else the canonical name (the typed one without
      // virtual domains).
      const name =
        entry.replayName ??
        (settings.userNames === undefined
          ? credentials.user
          : Buffer.from(names.canonical, 'utf8'));
      return ok({ kind: 'user', name, password: credentials.password, sasl });
    },
  });
}

/**
 * OAuth2 (RFC 7628): the name in the message finds the store, as a typed name does (virtual
 * domains included); the store gets the message unchanged, since the token was issued for the
 * name the client put there. No PreAuth: there is no password to bind with, and the store judges
 * the token.
 */
function bearerUser(
  ctx: LoginContext,
  { mechanism, user, message }: Extract<Principal, { kind: 'bearer' }>,
): Result<User, LoginOutcome> {
  const named = namedUser(ctx, user);
  if (!named.ok) return named;
  return ok({
    filter: named.value.filter,
    storeLogin: () => Promise.resolve(ok({ kind: 'bearer', mechanism, message })),
  });
}

/**
 * PreAuth (guide, "User Pre-Authentication"): the directory judges the password before any store
 * sees it. Undefined when it accepted; else the outcome that ends the login.
 */
async function preAuthenticated(
  ctx: LoginContext,
  entry: UserEntry,
  password: Buffer,
  canonical: string,
): Promise<LoginOutcome | undefined> {
  const { log } = ctx;
  const { directory } = ctx.site.settings;
  const pre = await preAuthenticate(directory.hosts, entry.dn, password, {
    cache: ctx.shared.preAuthCache,
    pool: ctx.shared.preAuthPool,
    timeoutMs: directory.timeoutMs,
    log,
  });
  if (pre.kind === 'unavailable') return { kind: 'directory-down', detail: pre.detail };
  if (pre.kind === 'refused')
    return { kind: 'unknown-user', reason: `pre-authentication: ${pre.detail}` };
  // Guide: the pre-authentication line's "user name includes the virtual domain (if any)".
  log.guide('session', 'pre-authentication', preAuthMessage(canonical, ctx.addresses.clientIp), {
    cached: pre.cached,
  });
  return undefined;
}

/**
 * Certificate login (guide, "Certificate-Based Client Authentication"): the client never sends a
 * password; the store trusts StoreAdmin to say who the user is. The authorization identity the
 * client may send must be that user (we authorize nobody to act as someone else).
 */
function certificateUser(
  ctx: LoginContext,
  { peer, search, authzid }: Extract<Principal, { kind: 'certificate' }>,
): Result<User, LoginOutcome> {
  const { certLogin } = ctx.site;
  if (!peer.verified || certLogin === undefined)
    return unknown('certificate not verified or login not configured');
  const { filter, where } = search;
  ctx.log.at('dialogue', 'certificate login', 'client certificate mapped', {
    subject: peer.subject,
    issuer: peer.issuer,
    filter,
    ...(where === undefined ? {} : { base: where.dn, scope: where.scope }),
  });
  return ok({
    filter,
    where,
    storeLogin: (entry) => {
      // The name the store knows the user by: UidAttr, else the entry DN's uid.
      const user = entry.replayName ?? uidOfDn(entry.dn);
      if (user === undefined)
        return Promise.resolve(unknown('the entry has neither UidAttr nor a uid RDN'));
      if (authzid.length > 0 && !authzid.equals(user))
        return Promise.resolve(unknown('authorization identity is not the certificate user'));
      const { storeAdmin: admin, storeAdminPass: password } = certLogin;
      return Promise.resolve(ok({ kind: 'master', user, admin, password }));
    },
  });
}

function uidOfDn(dn: string): Buffer | undefined {
  const rdns = parseDn(dn);
  if (!rdns.ok) return undefined;
  const uid = rdns.value[0]?.find((a) => a.type.toLowerCase() === 'uid')?.value;
  return uid === undefined ? undefined : Buffer.from(uid, 'utf8');
}

/** Each of the user's stores in turn, until one answers the login. */
async function tryStores(
  ctx: LoginContext,
  search: { filter: string; where: SearchBase | undefined },
  entry: UserEntry,
  login: StoreLogin,
): Promise<LoginOutcome> {
  const { site, log } = ctx;
  const { settings } = site;
  const { attempts, metrics } = ctx.shared;
  const options = {
    greetingTimeoutMs: settings.storeConnectTimeoutMs,
    replyTimeoutMs: settings.storeReplyTimeoutMs,
    forwardAddress: settings.forwardClientAddress ? ctx.addresses : undefined,
  };
  const failures: string[] = [];
  for (const target of entry.mailHosts) {
    const address = storeAddress(target, settings.backsidePort);
    const where = formatAddress(address);
    // MaxConcurrentConnectionAttempts: a hung store at its cap, or one marked down after a
    // timeout, is skipped like a down one, so users fail over (or get the temporary failure) at
    // once; a busy but healthy store makes them wait for a slot.
    const connect = (): ReturnType<typeof connectStore> =>
      site.storeTls === undefined
        ? connectStore(address, settings.storeConnectTimeoutMs)
        : connectStoreTls(address, settings.storeConnectTimeoutMs, site.storeTls);
    const probe = (): Promise<boolean> => storeGreets(connect, settings.storeConnectTimeoutMs);
    const slot = await attempts.acquire(where, settings.maxStoreAttempts, probe);
    if (!slot.ok) {
      failures.push(`${where} ${slot.reason}`);
      metrics.storeAttempt(where, 'skipped');
      metrics.refused('store-attempts');
      // The cached answer stays: the store is busy, the user has not moved (and a directory
      // search per skipped login would add load just when stores are in trouble).
      log.at('refusal', 'store connect', 'store skipped', { store: where, reason: slot.reason });
      continue;
    }
    log.at('dialogue', 'store connect', 'connecting to store', { store: where });
    const conn = await connect();
    if (!conn.ok) {
      slot.release(conn.error.kind === 'timeout' ? 'timeout' : 'answered');
      // A failed store connection: the cached answer may be stale (the user moved), ask again.
      site.directory.forget?.(search.filter, search.where);
      failures.push(`${where} ${conn.error.detail}`);
      metrics.storeAttempt(where, 'unreachable');
      metrics.error(`store ${where} unreachable`, conn.error.detail);
      log.at('refusal', 'store connect', 'store unreachable', {
        store: where,
        error: conn.error.detail,
      });
      continue;
    }
    const conversation = new StoreConversation(conn.value);
    // The cap is on connecting and greeting: once the store greets, it is alive, and the slot
    // goes back. Held through the authentication, a store's delay before refusing a wrong
    // password (Dovecot's auth_failure_delay) let one address with bad passwords take every slot
    // and stall everyone else's logins to that store (the attack benchmark's wrong passwords).
    const greeted = (): void => slot.release('answered');
    // A store that challenged a bearer token has answered (the greeting came before).
    const relay: ChallengeRelay = (line) => {
      slot.release('answered');
      return ctx.relay(line);
    };
    const result = await ctx.replay(conversation, login, { ...options, relay, greeted }, log);
    // A store that let its greeting time out counts as hung (a later step's timeout comes after
    // the slot went back at the greeting).
    slot.release(
      result.kind === 'failed' && result.failure.kind === 'timeout' ? 'timeout' : 'answered',
    );
    if (result.kind === 'failed') site.directory.forget?.(search.filter, search.where);
    switch (result.kind) {
      case 'accepted': {
        metrics.storeAttempt(where, 'accepted');
        const { socket, leftover } = conversation.release();
        const { answer, untagged } = result;
        return { kind: 'logged-in', store: address, socket, leftover, answer, untagged };
      }
      case 'refused':
        conversation.close();
        metrics.storeAttempt(where, 'refused');
        return {
          kind: 'refused',
          store: address,
          answer: result.answer,
          untagged: result.untagged,
        };
      case 'failed':
        conversation.close();
        failures.push(`${where} ${result.failure.detail}`);
        metrics.storeAttempt(where, 'failed');
        metrics.error(`store ${where} failed before the login`, result.failure.detail);
        log.at('refusal', 'store login', 'store failed before answering the login', {
          store: where,
          error: result.failure.detail,
        });
        continue;
    }
  }
  return { kind: 'stores-down', detail: failures.join('; ') };
}
