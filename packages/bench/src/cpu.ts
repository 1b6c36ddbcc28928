// CPU time of the processes a target needs, from /proc/PID/stat (proc(5)): utime + stime of every
// live process of its process groups, plus cutime + cstime (the time of children that exited and
// were reaped). A child's time moves into its parent's cutime/cstime when the parent waits for it,
// so the sum over the live members of a group stays exact across perdition's and socat's forked
// per-connection processes and Dovecot's restarts of its own, whether they exit during a phase or
// not: the difference of two samples is what the group spent in between.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

/** The fields of /proc/PID/stat the benchmark uses. */
export interface ProcStat {
  pid: number;
  comm: string;
  /** R, S, D, Z (zombie: exited, not yet reaped; its own times still count) … */
  state: string;
  ppid: number;
  pgrp: number;
  /** clock ticks spent in user mode, kernel mode, and by waited-for children */
  utime: number;
  stime: number;
  cutime: number;
  cstime: number;
}

/**
 * Parse one /proc/PID/stat line. The command name (field 2) is in parentheses and may itself hold
 * spaces and parentheses, so the fields after it are found from the last ')'.
 */
export function parseStat(text: string): ProcStat | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const pid = Number(text.slice(0, open).trim());
  // fields 3 … : state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
  //              utime stime cutime cstime …
  const rest = text
    .slice(close + 2)
    .trim()
    .split(' ');
  if (rest.length < 15 || !Number.isInteger(pid)) return undefined;
  const n = (i: number): number => Number(rest[i]);
  const stat: ProcStat = {
    pid,
    comm: text.slice(open + 1, close),
    state: rest[0] ?? '?',
    ppid: n(1),
    pgrp: n(2),
    utime: n(11),
    stime: n(12),
    cutime: n(13),
    cstime: n(14),
  };
  const numbers = [stat.ppid, stat.pgrp, stat.utime, stat.stime, stat.cutime, stat.cstime];
  return numbers.every(Number.isFinite) ? stat : undefined;
}

/** Ticks a process and its reaped children spent (what a group's sum is made of). */
export function ownAndReapedTicks(s: ProcStat): number {
  return s.utime + s.stime + s.cutime + s.cstime;
}

/** Every process's stat, read now ('X' dead entries skipped; zombies kept). */
export function readAllStats(): ProcStat[] {
  const out: ProcStat[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = parseStat(readFileSync(`/proc/${entry}/stat`, 'latin1'));
      if (stat !== undefined && stat.state !== 'X') out.push(stat);
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** Members of the given process groups. */
export function groupMembers(stats: readonly ProcStat[], pgids: readonly number[]): ProcStat[] {
  const wanted = new Set(pgids);
  return stats.filter((s) => wanted.has(s.pgrp));
}

/** A process and all its descendants (by ppid), e.g. a process that moved to a group of its own. */
export function processTree(stats: readonly ProcStat[], root: number): ProcStat[] {
  const byParent = new Map<number, ProcStat[]>();
  for (const s of stats) {
    const siblings = byParent.get(s.ppid);
    if (siblings === undefined) byParent.set(s.ppid, [s]);
    else siblings.push(s);
  }
  const out: ProcStat[] = [];
  const self = stats.find((s) => s.pid === root);
  if (self === undefined) return out;
  const queue = [self];
  const seen = new Set<number>();
  while (queue.length > 0) {
    const s = queue.shift() as ProcStat;
    if (seen.has(s.pid)) continue;
    seen.add(s.pid);
    out.push(s);
    queue.push(...(byParent.get(s.pid) ?? []));
  }
  return out;
}

/** Sum of ownAndReapedTicks over processes, each counted once. */
export function sumTicks(processes: readonly ProcStat[]): number {
  const seen = new Set<number>();
  let sum = 0;
  for (const p of processes) {
    if (seen.has(p.pid)) continue;
    seen.add(p.pid);
    sum += ownAndReapedTicks(p);
  }
  return sum;
}

let clockTicksCache: number | undefined;

/** USER_HZ, the unit of the stat times (sysconf(_SC_CLK_TCK); 100 on Linux practically always). */
export function clockTicksPerSecond(): number {
  if (clockTicksCache !== undefined) return clockTicksCache;
  let hz = 100;
  try {
    const out = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    if (Number.isInteger(out) && out > 0) hz = out;
  } catch {
    // getconf missing: Linux's USER_HZ is 100 on every architecture we run on
  }
  clockTicksCache = hz;
  return hz;
}

export function ticksToMicros(ticks: number, hz: number): number {
  return (ticks * 1_000_000) / hz;
}

/** The parts of a target whose CPU is reported separately. */
export const CPU_PARTS = ['proxy', 'balancer', 'directory', 'auth', 'stores'] as const;
export type CpuPart = (typeof CPU_PARTS)[number];

export const CPU_PART_LABELS: Record<CpuPart, string> = {
  proxy: 'proxy',
  balancer: 'HAProxy',
  directory: 'slapd',
  auth: 'auth_http',
  stores: 'Dovecot',
};

/** Process groups per part (re-read at each sample: a restarted slapd has a new one). */
export type CpuGroups = Partial<Record<CpuPart, () => number[]>>;

/** Ticks per part at one moment. */
export type CpuSample = Partial<Record<CpuPart, number>>;

/** The processes of each part at one reading of /proc. */
export type CpuSnapshot = Partial<Record<CpuPart, ProcStat[]>>;

export function snapshot(
  pgids: Partial<Record<CpuPart, number[]>>,
  stats: readonly ProcStat[],
): CpuSnapshot {
  const out: CpuSnapshot = {};
  for (const part of CPU_PARTS) {
    const groups = pgids[part];
    if (groups !== undefined) out[part] = groupMembers(stats, groups);
  }
  return out;
}

/**
 * Two readings agree when every part has the same processes with the same reaped-children
 * times: no process exited or was reaped in between, so neither reading can have caught a
 * child in the middle of being reaped (seen neither as itself nor in its parent's cutime).
 */
export function consistent(a: CpuSnapshot, b: CpuSnapshot): boolean {
  for (const part of CPU_PARTS) {
    const x = a[part] ?? [];
    const y = b[part] ?? [];
    if (x.length !== y.length) return false;
    const reaped = new Map(x.map((p) => [p.pid, p.cutime + p.cstime]));
    if (!y.every((p) => reaped.get(p.pid) === p.cutime + p.cstime)) return false;
  }
  return true;
}

export function totals(snap: CpuSnapshot): CpuSample {
  const out: CpuSample = {};
  for (const part of CPU_PARTS) {
    const members = snap[part];
    if (members !== undefined) out[part] = sumTicks(members);
  }
  return out;
}

/**
 * Ticks per part now. /proc is read until two readings in a row agree (at most a few times):
 * a per-connection process that exits while /proc is read would otherwise be lost or counted
 * twice.
 */
export function sampleCpu(groups: CpuGroups, read: () => ProcStat[] = readAllStats): CpuSample {
  const pgids: Partial<Record<CpuPart, number[]>> = {};
  for (const part of CPU_PARTS) {
    const of = groups[part];
    if (of !== undefined) pgids[part] = of();
  }
  let previous = snapshot(pgids, read());
  for (let i = 0; i < 5; i++) {
    const next = snapshot(pgids, read());
    if (consistent(previous, next)) return totals(next);
    previous = next;
  }
  return totals(previous);
}

/**
 * Microseconds each part spent between two samples. A part whose sum went down (a process
 * left the group unreaped, e.g. killed by a fault) is reported from 0 rather than negative.
 */
export function cpuBetween(before: CpuSample, after: CpuSample, hz: number): CpuSample {
  const out: CpuSample = {};
  for (const part of CPU_PARTS) {
    const a = before[part];
    const b = after[part];
    if (a === undefined || b === undefined) continue;
    out[part] = ticksToMicros(Math.max(0, b - a), hz);
  }
  return out;
}

/** Microseconds per `unit` operations (e.g. per login: unit 1; per 1,000 NOOPs: unit 1000). */
export function perOperation(
  micros: CpuSample,
  operations: number,
  unit = 1,
): CpuSample | undefined {
  if (!(operations > 0)) return undefined;
  const out: CpuSample = {};
  for (const part of CPU_PARTS) {
    const m = micros[part];
    if (m !== undefined) out[part] = (m / operations) * unit;
  }
  return out;
}
