// Everything in the benchmark talks over loopback, where the kernel queues each packet sent on a
// CPU's backlog (net.core.netdev_max_backlog, 1000 by default) until its softirq delivers it, and
// drops what does not fit. The idle ramp's sessions have TCP keepalive on both of the proxy's
// sockets (60 s, then 10 probes 1 s apart: libuv's fixed setting); the kernel fires keepalive
// timers due within about 2 s together, so 50,000 sessions send probes and answers in bursts of
// thousands. With the default backlog the ramp saw up to 4,000 packets a second dropped and, in two
// ramps of seven, 73, 76 and 265 healthy idle sessions ended with ETIMEDOUT when ten probes in a row were
// lost. Across a network card this queue is not in the path; on one host it is, so the ramp raises
// it for its duration, puts the old value back, and reports the drops it saw.
import { readFileSync } from 'node:fs';
import { raiseSysctl } from './sysctl.js';

const BACKLOG_FILE = '/proc/sys/net/core/netdev_max_backlog';
const SOFTNET_FILE = '/proc/net/softnet_stat';

/** Room for a keepalive burst of 100,000 sockets (probe and answer each) with margin. */
export const RAMP_BACKLOG = 16_384;

/** Packets dropped at the backlog so far, all CPUs (softnet_stat's second column, hex). */
export function parseSoftnetDrops(text: string): number | undefined {
  let total = 0;
  let rows = 0;
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 2 || fields[1] === undefined) continue;
    const dropped = Number.parseInt(fields[1], 16);
    if (Number.isNaN(dropped)) return undefined;
    total += dropped;
    rows++;
  }
  return rows > 0 ? total : undefined;
}

export function softnetDrops(): number | undefined {
  try {
    return parseSoftnetDrops(readFileSync(SOFTNET_FILE, 'utf8'));
  } catch {
    return undefined;
  }
}

/** The backlog to set: `wanted` when it is above `current`, else nothing to do. */
export function higherBacklog(current: number, wanted: number): number | undefined {
  return wanted > current ? wanted : undefined;
}

/**
 * Raise the backlog (as root) to `wanted`; returns how to restore it, or why it stays (the ramp
 * then runs with the machine's value and reports the drops).
 */
export function raiseBacklog(
  wanted: number = RAMP_BACKLOG,
): { value: number; restore: () => void } | { unchanged: string } {
  return raiseSysctl({
    file: BACKLOG_FILE,
    parse: (text) => {
      const n = Number(text.trim());
      return Number.isInteger(n) && n > 0 ? n : undefined;
    },
    format: String,
    raise: (current) => higherBacklog(current, wanted),
  });
}
