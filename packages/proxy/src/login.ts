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
import type { Log } from './log.js';
import type { Credentials } from './sasl.js';
import { preAuthMessage, preAuthenticate } from './preauth.js';
import type { ProxyRuntime, Site } from './proxyRuntime.js';
import { type MappedName, mapUserName } from './vdomain/names.js';
import {
  type Replay,
  type StoreAddress,
  StoreConversation,
  connectStore,
  formatAddress,
  storeAddress,
} from './store.js';
import { connectStoreTls } from './tls/storeTls.js';

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
  /** The session's site: its settings, directory, certificate login and store TLS. */
  site: Site;
  /** The runtime's shared login state: attempt limiter, refusal timing, pre-authentication cache. */
  shared: ProxyRuntime['shared'];
  log: Log;
  clientIp: string;
  serverIp: string;
  /** The session id, for the pre-authentication log line. */
  sessionId?: string;
  /** The verified client certificate's subject DN (UidSearch `%D`), when one was presented. */
  subjectDn?: string | undefined;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export async function loginUpstream(
  ctx: LoginContext,
  credentials: Credentials,
  replay: Replay,
): Promise<LoginOutcome> {
  const timing = ctx.shared.refusalTiming;
  const started = Date.now();
  const outcome = await attemptLogin(ctx, credentials, replay);
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
): Promise<LoginOutcome> {
  const { site, log } = ctx;
  const { settings } = site;
  const { attempts } = ctx.shared;
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

  const entry = await site.directory.lookup(filter, log);
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

  if (settings.security.preAuth) {
    // PreAuth (guide, "User Pre-Authentication"): the directory judges the password first.
    const pre = await preAuthenticate(
      settings.directory.hosts,
      entry.value.dn,
      credentials.password,
      { cache: ctx.shared.preAuthCache, log },
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
    const slot = await attempts.acquire(where, settings.maxStoreAttempts);
    if (!slot.ok) {
      failures.push(`${where} ${slot.reason}`);
      // The cached answer stays: the store is busy, the user has not moved (and a directory
      // search per skipped login would add load just when stores are in trouble).
      log.at('refusal', 'store connect', 'store skipped', { store: where, reason: slot.reason });
      continue;
    }
    log.at('dialogue', 'store connect', 'connecting to store', { store: where });
    const conn = await (site.storeTls === undefined
      ? connectStore(address, settings.storeConnectTimeoutMs)
      : connectStoreTls(address, settings.storeConnectTimeoutMs, site.storeTls));
    if (!conn.ok) {
      slot.release(conn.error.kind === 'timeout' ? 'timeout' : 'answered');
      // A failed store connection: the cached answer may be stale (the user moved), ask again.
      site.directory.forget?.(filter);
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
    if (result.kind === 'failed') site.directory.forget?.(filter);
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
