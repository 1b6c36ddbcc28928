/**
 * What one client address may cost everyone else: how many connections it holds
 * (MaxClientConnections, MaxConnectionsPerAddress) and how long its failed logins wait
 * (AuthFailureDelay, AuthFailureDelayMax). Both are keyed by the connection's client address
 * (`SessionContext.clientIp`, the one value a PROXY protocol header replaces), grouped: an IPv4
 * address by its ConnectionLimitPrefix, an IPv6 address by its /64 (one host or LAN gets a /64,
 * RFC 6177, and can pick any address in it).
 *
 * With NumThreads the counts must be the whole server's, not a worker's: the primary keeps them
 * (`clientLimitsService`, asked over `ipc.ts`; in the one process when there is no primary). A
 * question the primary does not answer in time fails open: a limit never stops the service.
 * Each process also keeps its own descriptor cap (`descriptorCap`), which only it can know.
 */

import { isIP } from 'node:net';
import { type ConfigValues, type IpNetwork, type Result, normalizeAddress } from '@mmp/config';
import { inNetworks } from './clientAddress.js';
import {
  type IpcError,
  type MessageKind,
  type PrimaryService,
  type WorkerChannel,
  messageKind,
} from './ipc.js';
import { AUTH_PENALTY_FORGET_MS, DESCRIPTOR_RESERVE, MAX_PENALISED_ADDRESSES } from './limits.js';
import type { Log } from './log.js';

export interface ConnectionLimitSettings {
  /** MaxClientConnections, lowered to what the descriptor limit allows (`descriptorCap`). */
  readonly max: number;
  readonly perAddress: number;
  /** ConnectionLimitPrefix: IPv4 prefix length of an address group. */
  readonly prefix4: number;
  /** ConnectionLimitExempt. */
  readonly exempt: readonly IpNetwork[];
}

export interface AuthPenaltySettings {
  readonly firstMs: number;
  readonly maxMs: number;
}

/** The parameters of both, from the configuration (`settings.ts` and the primary read them here). */
export function clientLimitSettings(v: ConfigValues): {
  connections: ConnectionLimitSettings;
  penalty: AuthPenaltySettings;
} {
  return {
    connections: {
      max: v.MaxClientConnections,
      perAddress: v.MaxConnectionsPerAddress,
      prefix4: v.ConnectionLimitPrefix,
      exempt: v.ConnectionLimitExempt ?? [],
    },
    penalty: {
      firstMs: v.AuthFailureDelay * 1000,
      maxMs: Math.max(v.AuthFailureDelay, v.AuthFailureDelayMax) * 1000,
    },
  };
}

/** The address group a client address counts in: `10.1.2.0/24`, `2001:db8:1:2::/64`. */
export function addressGroup(ip: string, prefix4: number): string {
  const a = normalizeAddress(ip);
  if (a === undefined) return ip;
  const bits = isIP(a) === 4 ? prefix4 : 64;
  return `${maskedAddress(a, bits)}/${bits}`;
}

/** The address with every bit after the first `bits` cleared, as a comparable string. */
function maskedAddress(a: string, bits: number): string {
  const bytes = addressBytes(a);
  const out = bytes.map((b, i) => {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    return keep === 8 ? b : b & (0xff << (8 - keep)) & 0xff;
  });
  if (bytes.length === 4) return out.join('.');
  const words: string[] = [];
  for (let i = 0; i < 16; i += 2)
    words.push((((out[i] ?? 0) << 8) | (out[i + 1] ?? 0)).toString(16));
  return normalizeAddress(words.join(':')) ?? words.join(':');
}

function addressBytes(a: string): number[] {
  if (isIP(a) === 4) return a.split('.').map(Number);
  // Expand `::` into the missing zero words, then two bytes per word.
  const [head = '', tail] = a.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const words =
    tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return words.flatMap((w) => {
    const n = parseInt(w, 16);
    return [n >> 8, n & 0xff];
  });
}

/** Why a connection is refused. */
export type Refused = 'server-full' | 'address-full';

/** A connection counted in: `release` counts it out (the first call; later ones do nothing). */
export interface Counted {
  ok: true;
  release(): void;
}

/**
 * Connections held now, in all and per address group. `admit` counts one in (or says why not);
 * the admitted connection calls `release` once when it closes.
 */
export class ConnectionCounts {
  private total = 0;
  private readonly byGroup = new Map<string, number>();

  constructor(private readonly settings: ConnectionLimitSettings) {}

  admit(ip: string): Counted | { ok: false; refused: Refused } {
    const { max, perAddress, prefix4, exempt } = this.settings;
    if (this.total >= max) return { ok: false, refused: 'server-full' };
    const group = inNetworks(ip, exempt) ? undefined : addressGroup(ip, prefix4);
    const held = group === undefined ? 0 : (this.byGroup.get(group) ?? 0);
    if (group !== undefined && held >= perAddress) return { ok: false, refused: 'address-full' };
    this.total++;
    if (group !== undefined) this.byGroup.set(group, held + 1);
    return new CountedConnection(this, group);
  }

  /** A connection of `group` (undefined: an exempt address) closed: `CountedConnection`'s. */
  countOut(group: string | undefined): void {
    this.total--;
    if (group === undefined) return;
    const left = (this.byGroup.get(group) ?? 1) - 1;
    if (left > 0) this.byGroup.set(group, left);
    else this.byGroup.delete(group);
  }

  get connections(): number {
    return this.total;
  }
}

/**
 * One connection in `ConnectionCounts`: an object rather than a closure and its context, since
 * an idle session keeps it for hours (issue 18).
 */
class CountedConnection implements Counted {
  readonly ok = true;
  private released = false;

  constructor(
    private readonly counts: ConnectionCounts,
    private readonly group: string | undefined,
  ) {}

  release(): void {
    if (this.released) return;
    this.released = true;
    this.counts.countOut(this.group);
  }
}

/** What a login asks of the failed-login penalty (answered by another process with NumThreads). */
export interface FailedLogins {
  /** One more failure from `ip`: how long to wait before saying so. */
  failed(ip: string): number | Promise<number>;
  /** A login from `ip` succeeded. */
  succeeded(ip: string): void;
}

/**
 * Failed logins per address group (Dovecot's auth penalty): each failure is answered after a
 * delay that starts at `firstMs` and doubles with each further failure of the group, up to
 * `maxMs`. Keyed by address, never by user name, so that nobody can lock a real user out by
 * failing in their name; a success clears its own group only. A group is forgotten
 * AUTH_PENALTY_FORGET_MS after its last failure, and at most MAX_PENALISED_ADDRESSES are kept
 * (the oldest go first), so an attacker spraying addresses cannot grow the table without bound.
 */
export class AuthPenalty implements FailedLogins {
  /** Failures and the time of the last one, in order of last failure (a Map keeps insertion). */
  private readonly groups = new Map<string, { failures: number; last: number }>();

  constructor(
    private readonly settings: AuthPenaltySettings,
    private readonly prefix4: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** One more failure from `ip`: how long to wait before saying so. */
  failed(ip: string): number {
    const group = addressGroup(ip, this.prefix4);
    const now = this.now();
    const known = this.groups.get(group);
    const failures =
      known !== undefined && now - known.last < AUTH_PENALTY_FORGET_MS ? known.failures + 1 : 1;
    this.groups.delete(group);
    this.groups.set(group, { failures, last: now });
    if (this.groups.size > MAX_PENALISED_ADDRESSES) {
      const oldest = this.groups.keys().next();
      if (oldest.done !== true) this.groups.delete(oldest.value);
    }
    const { firstMs, maxMs } = this.settings;
    return Math.min(maxMs, firstMs * 2 ** Math.min(30, failures - 1));
  }

  /** A login from `ip` succeeded: its own group starts afresh (no one else's). */
  succeeded(ip: string): void {
    this.groups.delete(addressGroup(ip, this.prefix4));
  }
}

/**
 * MaxClientConnections as the descriptor limit allows it: each client may hold its store
 * connection too, and DESCRIPTOR_RESERVE stay for LDAP, logs and listeners. `limits`: the text of
 * /proc/self/limits (undefined where there is none: the configured value stands).
 */
export function descriptorCap(configured: number, limits: string | undefined): number {
  const soft = /^Max open files\s+(\d+|unlimited)/m.exec(limits ?? '')?.[1];
  if (soft === undefined || soft === 'unlimited') return configured;
  return Math.max(1, Math.min(configured, Math.floor((Number(soft) - DESCRIPTOR_RESERVE) / 2)));
}

// ---- One count for all NumThreads workers (`ipc.ts`) ----

const MAX_ADDRESS_TEXT = 64;

function isAddressRequest(v: unknown): v is { ip: string } {
  if (typeof v !== 'object' || v === null) return false;
  const ip = (v as { ip?: unknown }).ip;
  return typeof ip === 'string' && ip.length <= MAX_ADDRESS_TEXT;
}

function isIdRequest(v: unknown): v is { id: number } {
  if (typeof v !== 'object' || v === null) return false;
  const id = (v as { id?: unknown }).id;
  return typeof id === 'number' && Number.isSafeInteger(id);
}

type Admission = { ok: true; id: number } | { ok: false; refused: Refused };

/** Count a client connection in (its id, to release it) or say why not. */
export const ADMIT: MessageKind<{ ip: string }, Admission> = messageKind(
  'clientLimits.admit',
  isAddressRequest,
);
/** An admitted connection closed. */
export const RELEASE: MessageKind<{ id: number }, void> = messageKind(
  'clientLimits.release',
  isIdRequest,
);
/** A failed login from this address: the delay before saying so. */
export const FAILED_LOGIN: MessageKind<{ ip: string }, number> = messageKind(
  'clientLimits.failed',
  isAddressRequest,
);
/** A login from this address succeeded. */
export const SUCCEEDED_LOGIN: MessageKind<{ ip: string }, void> = messageKind(
  'clientLimits.succeeded',
  isAddressRequest,
);

/** Every kind `clientLimitsService` answers. */
export const CLIENT_LIMIT_KINDS = [ADMIT, RELEASE, FAILED_LOGIN, SUCCEEDED_LOGIN] as const;

/**
 * The primary's side: the connection counts and the failed-login penalty of the whole server.
 * What a worker held is released when it dies (it never says goodbye then).
 */
export const clientLimitsService: PrimaryService = (primary, { values }) => {
  const settings = clientLimitSettings(values());
  const counts = new ConnectionCounts(settings.connections);
  const penalty = new AuthPenalty(settings.penalty, settings.connections.prefix4);
  const held = new Map<number, { counted: Counted; worker: number }>();
  let next = 1;
  primary.handle(ADMIT, ({ ip }, from): Admission => {
    const admitted = counts.admit(ip);
    if (!admitted.ok) return admitted;
    const id = next++;
    held.set(id, { counted: admitted, worker: from.id });
    return { ok: true, id };
  });
  primary.handle(RELEASE, ({ id }, from) => {
    const h = held.get(id);
    if (h === undefined || h.worker !== from.id) return;
    held.delete(id);
    h.counted.release();
  });
  primary.handle(FAILED_LOGIN, ({ ip }) => penalty.failed(ip));
  primary.handle(SUCCEEDED_LOGIN, ({ ip }) => penalty.succeeded(ip));
  primary.onWorkerGone((peer) => {
    for (const [id, h] of held)
      if (h.worker === peer.id) {
        held.delete(id);
        h.counted.release();
      }
  });
};

/** The limit that refused a connection: this process's, or the server's (the primary's). */
export type RefusingLimit = 'descriptor cap' | 'MaxClientConnections' | 'MaxConnectionsPerAddress';

/** A connection admitted, with the release to call once when it closes, or refused, and by what. */
export type Admitted = Counted | { ok: false; refused: Refused; limit: RefusingLimit };

/**
 * A serving process's admission: this process's descriptor cap first, then the server's counts
 * (the primary's). With the primary's services in this process (NumThreads 0) the counts answer
 * at once and so does this; across processes it resolves with the primary's answer.
 */
export function admitConnection(
  fleet: WorkerChannel,
  local: ConnectionCounts,
  ip: string,
): Admitted | Promise<Admitted> {
  const mine = local.admit(ip);
  if (!mine.ok) return { ...mine, limit: 'descriptor cap' };
  const shared = fleet.requestNow?.(ADMIT, { ip }) ?? fleet.request(ADMIT, { ip });
  return shared instanceof Promise
    ? shared.then((s) => countedIn(fleet, mine, s))
    : countedIn(fleet, mine, shared);
}

/** The server's answer on a connection this process has counted in (`mine`). */
function countedIn(
  fleet: WorkerChannel,
  mine: Counted,
  shared: Result<Admission, IpcError>,
): Admitted {
  // Unanswered (the primary busy or gone): fail open rather than refuse everyone.
  if (!shared.ok) return mine;
  if (!shared.value.ok) {
    mine.release();
    const { refused } = shared.value;
    return {
      ok: false,
      refused,
      limit: refused === 'server-full' ? 'MaxClientConnections' : 'MaxConnectionsPerAddress',
    };
  }
  return new CountedByServer(mine, fleet, shared.value.id);
}

/** A connection counted in this process (`mine`) and by the server (its `id` there). */
class CountedByServer implements Counted {
  readonly ok = true;

  constructor(
    private readonly mine: Counted,
    private readonly fleet: WorkerChannel,
    private readonly id: number,
  ) {}

  release(): void {
    this.mine.release();
    this.fleet.notify(RELEASE, { id: this.id });
  }
}

/** The failed-login penalty as the primary keeps it; this process's own when it does not answer. */
export class FleetPenalty implements FailedLogins {
  constructor(
    private readonly fleet: WorkerChannel,
    private readonly fallback: AuthPenalty,
  ) {}

  async failed(ip: string): Promise<number> {
    const r = await this.fleet.request(FAILED_LOGIN, { ip });
    return r.ok ? r.value : this.fallback.failed(ip);
  }

  succeeded(ip: string): void {
    this.fleet.notify(SUCCEEDED_LOGIN, { ip });
    this.fallback.succeeded(ip);
  }
}

/**
 * The one record of a full server (issue 14, point 5): each connection refused by the descriptor
 * cap or MaxClientConnections is a `refusal` record (LogLevel 3) of its session, which a default
 * LogLevel does not show, and a flood would be a record per connection. This says it at every
 * LogLevel, at most once per `intervalMs`: the first refusal at once, those that follow within the
 * interval as one record at its end, with how many and which limits.
 */
export class FullServerReport {
  private refused = 0;
  private readonly limits = new Set<RefusingLimit>();
  private last = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly log: Log,
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  refusedBy(limit: RefusingLimit): void {
    this.refused++;
    this.limits.add(limit);
    if (this.timer !== undefined) return;
    const wait = this.last + this.intervalMs - this.now();
    if (wait <= 0) return this.flush();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, wait);
    this.timer.unref();
  }

  /** Say what is pending now (the server stops). */
  close(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.flush();
  }

  private flush(): void {
    if (this.refused === 0) return;
    const sinceLast = Number.isFinite(this.last) ? Math.round(this.now() - this.last) : null;
    this.log.at('lifecycle', 'limits', 'connections refused: the server is full', {
      refused: this.refused,
      limit: [...this.limits].join(', '),
      ...(sinceLast === null ? {} : { sinceLastMs: sinceLast }),
    });
    this.refused = 0;
    this.limits.clear();
    this.last = this.now();
  }
}
