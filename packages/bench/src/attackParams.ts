// Every tunable of `--attack` in one place (issue 13, "How it is shown"): the legitimate load,
// each attacker kind with its source address and its intensity. The attackers come from
// 127.0.7.0/24, the legitimate clients from 127.0.8.0/24, so that per-address limits separate the
// two. MMP_BENCH_ATTACK_NET (`127.0.22`) puts both in one /24 instead (attackers .1–.5, legitimate
// clients .101–.116), for a machine where each user of the loopback keeps to a range of its own.

import type { Account, Endpoint } from './load/scenarios.js';
import type { SteadyJob } from './load/steady.js';

export const ATTACK_KINDS = ['slowloris', 'lonecr', 'noread', 'wrongpass', 'alpaca'] as const;
export type AttackKind = (typeof ATTACK_KINDS)[number];

export const ATTACK_LABELS: Record<AttackKind, string> = {
  slowloris: 'slowloris',
  lonecr: 'lone-CR flood',
  noread: 'commands, never read',
  wrongpass: 'wrong passwords',
  alpaca: 'HTTP to IMAP (ALPACA)',
};

export interface AttackParams {
  slowloris: {
    source: string;
    connections: number;
    /** at most this many per load process (each process may hold 20,000 descriptors) */
    perProcess: number;
    /** new connections per second while ramping */
    openPerSecond: number;
    /** the partial line sent after the greeting (no CRLF) */
    partial: string;
    /** one more byte of it every this many milliseconds */
    dripMs: number;
  };
  lonecr: {
    source: string;
    /** flooding connections at once; each reconnects when closed */
    connections: number;
    /** sent after `a NOOP` on each connection, in CR bytes */
    mebibytes: number;
    /**
     * at most this fast per connection: on a shared 2-core machine an unbounded flood measures
     * the attacker's own CPU more than the proxy; what the proxy keeps is the point
     */
    mebibytesPerSecond: number;
  };
  noread: {
    source: string;
    connections: number;
    /** the commands written again and again (never reading an answer) */
    commands: string;
    /** at most this fast per connection (as for the lone-CR flood) */
    kibPerSecond: number;
  };
  wrongpass: {
    source: string;
    /** new attempts per second (each its own connection, one wrong LOGIN) */
    perSecond: number;
    /** attempts waiting for their answer at most (then the next ones are skipped) */
    maxInFlight: number;
  };
  alpaca: {
    source: string;
    /** one HTTP request every this many milliseconds, each on a new connection */
    everyMs: number;
    /** how long each waits for the answer before giving up */
    waitMs: number;
  };
}

/** Attackers' and legitimate clients' addresses: two /24s, or one given as `a.b.c`. */
export function attackAddresses(net: string | undefined): {
  attacker: (n: number) => string;
  legit: (n: number) => string;
} {
  if (net === undefined || net === '')
    return { attacker: (n) => `127.0.7.${n}`, legit: (n) => `127.0.8.${n}` };
  if (!/^127\.\d{1,3}\.\d{1,3}$/.test(net))
    throw new Error(`MMP_BENCH_ATTACK_NET: a loopback /24 as 127.x.y, not ${net}`);
  return { attacker: (n) => `${net}.${n}`, legit: (n) => `${net}.${100 + n}` };
}

const addr = attackAddresses(process.env.MMP_BENCH_ATTACK_NET);

export const ATTACKS: AttackParams = {
  slowloris: {
    source: addr.attacker(1),
    connections: 5000,
    perProcess: 5000,
    openPerSecond: 1000,
    partial: 'a LOGIN user',
    dripMs: 5000,
  },
  lonecr: { source: addr.attacker(2), connections: 2, mebibytes: 64, mebibytesPerSecond: 16 },
  noread: {
    source: addr.attacker(3),
    connections: 20,
    commands: 'a CAPABILITY\r\nb NOOP\r\n',
    kibPerSecond: 512,
  },
  wrongpass: { source: addr.attacker(4), perSecond: 50, maxInFlight: 2000 },
  alpaca: { source: addr.attacker(5), everyMs: 200, waitMs: 5000 },
};

export interface LegitParams {
  /** concurrent login+fetch loops */
  concurrency: number;
  /** long sessions (logged in at the start, NOOP at an interval) that must survive */
  longSessions: number;
  noopIntervalMs: number;
  /** message fetched per cycle: the small first message of every mailbox */
  fetchMessage: number;
  timeoutMs: number;
  sources: string[];
}

export const LEGIT: LegitParams = {
  concurrency: 8,
  longSessions: 20,
  noopIntervalMs: 1000,
  fetchMessage: 1,
  timeoutMs: 30_000,
  sources: Array.from({ length: 16 }, (_, i) => addr.legit(i + 1)),
};

/** The legitimate clients' login+fetch loop with LEGIT's settings; what differs per use in `o`. */
export function legitJob(
  endpoint: Endpoint,
  accounts: Account[],
  o: {
    durationMs: number;
    delayMs?: number;
    concurrency?: number;
    longAccounts?: Account[];
  },
): SteadyJob {
  return {
    kind: 'steady',
    endpoint,
    accounts,
    concurrency: o.concurrency ?? LEGIT.concurrency,
    localAddresses: LEGIT.sources,
    delayMs: o.delayMs ?? 0,
    durationMs: o.durationMs,
    timeoutMs: LEGIT.timeoutMs,
    fetchMessage: LEGIT.fetchMessage,
    longAccounts: o.longAccounts ?? [],
    noopIntervalMs: LEGIT.noopIntervalMs,
  };
}
