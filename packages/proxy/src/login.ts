/**
 * The login path shared by both protocols (admin guide, "How Multiplexor Works", steps 2 and 3):
 * directory lookup → each of the user's stores in turn → the protocol's login replay. The outcome
 * is one value the protocol handler turns into its own answer.
 *
 * A store that cannot be reached, hangs, or greets with a refusal is skipped for the next mailHost;
 * a store that answers the login (accepts or refuses the password) is final.
 */

import type { Socket } from 'node:net';
import { expandSearch } from '@mmp/config';
import { StoreAttempts } from './attemptLimiter.js';
import type { UserDirectory } from './directory.js';
import { MAX_UNKNOWN_USER_HOLD_MS } from './limits.js';
import type { Log } from './log.js';
import type { Credentials } from './sasl.js';
import { preAuthMessage, preAuthenticate } from './preauth.js';
import type { ProxySettings } from './settings.js';
import { type MappedName, mapUserName } from './vdomain/names.js';
import {
  type StoreAddress,
  type StoreFailure,
  StoreConversation,
  connectStore,
  formatAddress,
  storeAddress,
} from './store.js';

/** What a protocol's replay concluded on one store. */
export type ReplayResult =
  /** Logged in. `answer`: the store's final response (e.g. IMAP `OK [CAPABILITY …] Logged in`). */
  | { kind: 'accepted'; answer: Buffer }
  /** The store refused the credentials; `answer` is its text, to pass to the client. */
  | { kind: 'refused'; answer: Buffer }
  /** The store failed before judging the credentials: try the next one. */
  | { kind: 'failed'; failure: StoreFailure };

/** Replays a login on a connected store (whose greeting has not been read yet). */
export type Replay = (
  conversation: StoreConversation,
  name: Buffer,
  password: Buffer,
  log: Log,
) => Promise<ReplayResult>;

export type LoginOutcome =
  | {
      kind: 'logged-in';
      store: StoreAddress;
      socket: Socket;
      /** Bytes the store sent after its answer (to reach the client before anything else). */
      leftover: Buffer;
      answer: Buffer;
    }
  | { kind: 'refused'; store: StoreAddress; answer: Buffer }
  /** No such user, several entries, no mail host, or a name that is not UTF-8. */
  | { kind: 'unknown-user'; reason: string }
  | { kind: 'directory-down'; detail: string }
  | { kind: 'stores-down'; detail: string };

export interface LoginContext {
  settings: ProxySettings;
  directory: UserDirectory;
  log: Log;
  clientIp: string;
  serverIp: string;
  /** The session id, for the pre-authentication log line. */
  sessionId?: string;
  /** The verified client certificate's subject DN (UidSearch `%D`), when one was presented. */
  subjectDn?: string | undefined;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * How long stores take to refuse a wrong password, so that an unknown user is answered no sooner:
 * the answers' texts are the same, and their timing must not tell either which names exist (a
 * store adds its own failure delay, Dovecot's auth_failure_delay; the directory alone answers in
 * milliseconds). Per process, a level that jumps to the slowest recent refusal (whole login
 * duration) and decays towards faster ones: erring on the slow side is what hides the difference.
 */
export class RefusalTiming {
  private levelMs: number | undefined;

  observe(ms: number): void {
    this.levelMs = this.levelMs === undefined ? ms : Math.max(ms, this.levelMs * 0.8 + ms * 0.2);
  }

  /** How much longer to hold the answer for an unknown user that took `elapsedMs` so far. */
  holdFor(elapsedMs: number, random: () => number = Math.random): number {
    if (this.levelMs === undefined) return 0;
    // ±10 % jitter, so that the hold itself is not a constant to subtract.
    const target = Math.min(MAX_UNKNOWN_USER_HOLD_MS, this.levelMs * (0.9 + 0.2 * random()));
    return Math.max(0, Math.round(target - elapsedMs));
  }
}

const refusalTiming = new RefusalTiming();

/** Connection attempts in flight per store, for the whole process (`attemptLimiter.ts`). */
const storeAttempts = new StoreAttempts();

export async function loginUpstream(
  ctx: LoginContext,
  credentials: Credentials,
  replay: Replay,
  timing: RefusalTiming = refusalTiming,
  attempts: StoreAttempts = storeAttempts,
): Promise<LoginOutcome> {
  const started = Date.now();
  const outcome = await attemptLogin(ctx, credentials, replay, attempts);
  const elapsed = Date.now() - started;
  if (outcome.kind === 'refused') timing.observe(elapsed);
  if (outcome.kind === 'unknown-user') {
    const hold = timing.holdFor(elapsed);
    if (hold > 0) await new Promise((resolve) => setTimeout(resolve, hold));
  }
  return outcome;
}

async function attemptLogin(
  ctx: LoginContext,
  credentials: Credentials,
  replay: Replay,
  attempts: StoreAttempts,
): Promise<LoginOutcome> {
  const { settings, log } = ctx;
  let typed: string;
  try {
    typed = utf8.decode(credentials.user);
  } catch {
    // A directory holds UTF-8 names (RFC 4511 §4.1.2); such a name can match nobody.
    return { kind: 'unknown-user', reason: 'user name is not UTF-8' };
  }
  // Virtual domains: `alice@one.example` (or `alice` on one.example's address) is
  // `alice+one.example` for the directory and the store; a domain not served here is refused like
  // an unknown user (vdomain/names.ts).
  let names: MappedName = { user: typed, canonical: typed, original: typed };
  if (settings.userNames !== undefined) {
    const mapped = mapUserName(typed, settings.userNames);
    if (!mapped.ok) return { kind: 'unknown-user', reason: mapped.error };
    names = mapped.value;
    log.at('dialogue', 'user name', 'virtual domain applied', {
      typed,
      canonical: names.canonical,
    });
  }
  const filter = expandSearch(settings.searchFormat, {
    ...names,
    clientIp: ctx.clientIp,
    serverIp: ctx.serverIp,
    ...(ctx.subjectDn === undefined ? {} : { subjectDn: ctx.subjectDn }),
  });

  const entry = await ctx.directory.lookup(filter, log);
  if (!entry.ok) {
    const e = entry.error;
    if (e.kind === 'unavailable') return { kind: 'directory-down', detail: e.detail };
    return { kind: 'unknown-user', reason: e.kind };
  }
  // UidAttr names the account on the store; else the canonical name (the typed one without
  // virtual domains).
  const name =
    entry.value.replayName ??
    (settings.userNames === undefined ? credentials.user : Buffer.from(names.canonical, 'utf8'));

  if (settings.security?.preAuth === true) {
    // PreAuth (guide, "User Pre-Authentication"): the directory judges the password first.
    const pre = await preAuthenticate(
      settings.directory.hosts,
      entry.value.dn,
      credentials.password,
      {
        cacheTtlMs: settings.security.preAuthCacheTtlMs,
        log,
      },
    );
    if (pre.kind === 'unavailable') return { kind: 'directory-down', detail: pre.detail };
    if (pre.kind === 'refused')
      return { kind: 'unknown-user', reason: `pre-authentication: ${pre.detail}` };
    // Guide: the pre-authentication line's "user name includes the virtual domain (if any)".
    log.guide('session', 'pre-authentication', preAuthMessage(names.canonical, ctx.clientIp), {
      cached: pre.cached,
    });
  }

  const failures: string[] = [];
  for (const target of entry.value.mailHosts) {
    const address = storeAddress(target, settings.backsidePort);
    const where = formatAddress(address);
    // MaxConcurrentConnectionAttempts: a hung store at its cap, or one marked down after a
    // timeout, is skipped like a down one, so users fail over (or get the temporary failure) at
    // once; a busy but healthy store makes them wait for a slot.
    const slot = await attempts.acquire(where, settings.maxStoreAttempts ?? Infinity);
    if (!slot.ok) {
      failures.push(`${where} ${slot.reason}`);
      // The cached answer stays: the store is busy, the user has not moved (and a directory
      // search per skipped login would add load just when stores are in trouble).
      log.at('refusal', 'store connect', 'store skipped', { store: where, reason: slot.reason });
      continue;
    }
    log.at('dialogue', 'store connect', 'connecting to store', { store: where });
    const conn = await connectStore(
      address,
      settings.storeConnectTimeoutMs,
      settings.security?.storeTls,
    );
    if (!conn.ok) {
      slot.release(conn.error.kind === 'timeout' ? 'timeout' : 'answered');
      // A failed store connection: the cached answer may be stale (the user moved), ask again.
      ctx.directory.forget?.(filter);
      failures.push(`${where} ${conn.error.detail}`);
      log.at('refusal', 'store connect', 'store unreachable', {
        store: where,
        error: conn.error.detail,
      });
      continue;
    }
    const conversation = new StoreConversation(conn.value);
    const result = await replay(conversation, name, credentials.password, log);
    // A store that let a step of the replay time out (greeting included) counts as hung.
    slot.release(
      result.kind === 'failed' && result.failure.kind === 'timeout' ? 'timeout' : 'answered',
    );
    if (result.kind === 'failed') ctx.directory.forget?.(filter);
    switch (result.kind) {
      case 'accepted': {
        const { socket, leftover } = conversation.release();
        return { kind: 'logged-in', store: address, socket, leftover, answer: result.answer };
      }
      case 'refused':
        conversation.close();
        return { kind: 'refused', store: address, answer: result.answer };
      case 'failed':
        conversation.close();
        failures.push(`${where} ${result.failure.detail}`);
        log.at('refusal', 'store login', 'store failed before answering the login', {
          store: where,
          error: result.failure.detail,
        });
        continue;
    }
  }
  return { kind: 'stores-down', detail: failures.join('; ') };
}
