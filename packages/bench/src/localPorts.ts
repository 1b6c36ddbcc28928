// Linux hands out local ports for outgoing connections from net.ipv4.ip_local_port_range
// (32768–60999 by default). connect() without bind() takes even ports and may reuse one across
// destinations; bind() to port 0, as the load generator does to spread over source addresses,
// takes odd ones and blocks that port number for connect(). So a proxy holding tens of thousands
// of sessions to two stores runs out of ports near 40,000 sessions (EADDRNOTAVAIL) with the
// default range. The ramp widens it for its duration and puts the old one back.
import { raiseSysctl } from './sysctl.js';

const RANGE_FILE = '/proc/sys/net/ipv4/ip_local_port_range';

/** Every port above the well-known ones. */
export const WIDE_RANGE: PortRange = { low: 1024, high: 65535 };

export interface PortRange {
  low: number;
  high: number;
}

export function parsePortRange(text: string): PortRange | undefined {
  const m = /^\s*(\d+)\s+(\d+)\s*$/.exec(text);
  if (m === null) return undefined;
  const low = Number(m[1]);
  const high = Number(m[2]);
  return low > 0 && low <= high && high <= 65535 ? { low, high } : undefined;
}

/** The range to set: `wanted` when it adds ports to `current`, else nothing to do. */
export function widerRange(current: PortRange, wanted: PortRange): PortRange | undefined {
  const low = Math.min(current.low, wanted.low);
  const high = Math.max(current.high, wanted.high);
  return low === current.low && high === current.high ? undefined : { low, high };
}

/**
 * Widen the machine's local port range (as root); returns how to restore it, or a reason why
 * the range stays as it was (the ramp then runs with fewer ports and may stop early).
 */
export function widenLocalPorts(
  wanted: PortRange = WIDE_RANGE,
): { value: PortRange; restore: () => void } | { unchanged: string } {
  return raiseSysctl({
    file: RANGE_FILE,
    parse: parsePortRange,
    format: (r) => `${r.low} ${r.high}`,
    raise: (current) => widerRange(current, wanted),
  });
}
