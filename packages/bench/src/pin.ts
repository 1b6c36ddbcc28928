// --pin: the load generator, the stores and the proxy on chosen cores (taskset), alike for every
// target. On two shared cores the unpinned rates swing 2–4× between runs because the scheduler
// moves three busy processes around; with fixed places the ratios settle (README, "Benchmark").
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

/** Who goes where: a taskset CPU list per role ('0', '1', '0-1' …). */
export interface Pinning {
  /** the load generator's processes (the clients) */
  load: string;
  /** the proxy's processes (mmp with its workers, nginx, perdition, socat) */
  proxy: string;
  /** what a proxy needs besides itself: slapd, nginx's auth_http service */
  aux: string;
  /** every Dovecot process of both stores */
  stores: string;
}

export const PIN_ROLES = ['load', 'proxy', 'aux', 'stores'] as const;

/**
 * The default on two cores: the clients alone on core 0, the server side (proxy, its directory,
 * the stores) on core 1. Direct access then has Dovecot alone on core 1 and a proxy must share it,
 * so the ratio to direct is what the proxy's hop costs on a fixed budget.
 */
export function defaultPinning(cores: number): Pinning {
  const last = String(Math.max(0, cores - 1));
  return { load: '0', proxy: last, aux: last, stores: last };
}

const CPU_LIST = /^\d+(-\d+)?(,\d+(-\d+)?)*$/;

/**
 * `load=0,proxy=1,aux=1,stores=1` (roles not named keep the default). Returns an error text for a
 * bad spec.
 */
export function parsePinning(spec: string, cores: number): Pinning | string {
  const out = defaultPinning(cores);
  if (spec.trim() === '') return out;
  for (const part of spec.split(/[;\s]+|,(?=[a-z])/)) {
    if (part === '') continue;
    const [role, cpus] = part.split('=');
    if (
      role === undefined ||
      cpus === undefined ||
      !(PIN_ROLES as readonly string[]).includes(role)
    )
      return `--pin-cores: "${part}" is not ROLE=CPUS (roles: ${PIN_ROLES.join(', ')})`;
    if (!CPU_LIST.test(cpus)) return `--pin-cores: "${cpus}" is not a CPU list like 0 or 0-1`;
    for (const n of cpus.split(/[,-]/)) {
      if (Number(n) >= cores) return `--pin-cores: CPU ${n} does not exist (${cores} cores)`;
    }
    out[role as keyof Pinning] = cpus;
  }
  return out;
}

export function describePinning(p: Pinning): string {
  return `load generator on CPU ${p.load}, proxy on CPU ${p.proxy}, slapd and auth_http on CPU ${p.aux}, Dovecot on CPU ${p.stores}`;
}

/** Pin every thread of each process (`taskset -a`); processes they fork later inherit it. */
export function pinProcesses(pids: readonly number[], cpus: string): void {
  for (const pid of pids) {
    try {
      execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
    } catch {
      // exited meanwhile
    }
  }
}

/** Live members of process groups (zombies cannot be pinned). */
export function liveGroupMembers(pgids: readonly number[]): number[] {
  const wanted = new Set(pgids);
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'latin1');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (wanted.has(Number(rest[2])) && rest[0] !== 'Z') out.push(Number(entry));
    } catch {
      // gone
    }
  }
  return out;
}

export function pinGroups(pgids: readonly number[], cpus: string): void {
  pinProcesses(liveGroupMembers(pgids), cpus);
}

/** A target's process groups, as `Running.groups` names them. */
export interface TargetGroups {
  proxy: () => number[];
  auth?: () => number[];
  balancer?: () => number[];
}

/** A started target in its places: the proxy and its balancer with the proxy, its auth service
 * with slapd. */
export function pinTarget(groups: TargetGroups, p: Pinning): void {
  pinGroups(groups.proxy(), p.proxy);
  if (groups.balancer !== undefined) pinGroups(groups.balancer(), p.proxy);
  if (groups.auth !== undefined) pinGroups(groups.auth(), p.aux);
}
