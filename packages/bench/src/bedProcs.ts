// The test bed's server process groups, for CPU figures: found by their command lines (the test
// bed exposes each server's config file, which its command line names: `slapd … -f slapd.conf`,
// `dovecot -F -c dovecot.conf`). Each runs in a process group of its own (the test bed spawns
// them detached), so a group id covers a Dovecot instance with every process its master forked.
import { findProcesses } from '@mmp/testbed';
import { parseStat, type ProcStat } from './cpu.js';
import { readFileSync } from 'node:fs';

function statOf(pid: number): ProcStat | undefined {
  try {
    return parseStat(readFileSync(`/proc/${pid}/stat`, 'latin1'));
  } catch {
    return undefined;
  }
}

/** The process group of the live process whose command line names `configFile` after `flag`. */
function groupOf(command: string, flag: string, configFile: string): number | undefined {
  const found = findProcesses(`${flag} ${configFile}`).find((p) => p.cmdline.includes(command));
  if (found === undefined) return undefined;
  return statOf(found.pid)?.pgrp;
}

/** slapd's process group (its pid: it leads its group), if it runs. */
export function slapdGroup(ldapConfigFile: string): number | undefined {
  return groupOf('slapd', '-f', ldapConfigFile);
}

/** A Dovecot instance's process group (its master's pid), if it runs. */
export function dovecotGroup(storeConfigFile: string): number | undefined {
  return groupOf('dovecot', '-c', storeConfigFile);
}

/** A test-bed HAProxy's process group (it runs `haproxy -db -f haproxy.cfg` detached). */
export function haproxyGroup(configFile: string): number | undefined {
  return groupOf('haproxy', '-f', configFile);
}

export function defined<T>(xs: readonly (T | undefined)[]): T[] {
  return xs.filter((x): x is T => x !== undefined);
}
