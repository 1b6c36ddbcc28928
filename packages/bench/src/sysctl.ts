// A kernel setting the idle ramps need higher than Linux's default, set for their duration and put
// back afterwards (`localPorts.ts`, `loopback.ts`). As root; without it the ramp runs with the
// machine's value and says why.
import { readFileSync, writeFileSync } from 'node:fs';

export interface Sysctl<T> {
  /** its file under /proc/sys */
  file: string;
  parse(text: string): T | undefined;
  format(value: T): string;
  /** The value to set given the current one, or undefined to leave it (never lower it). */
  raise(current: T): T | undefined;
}

/** Set `s` to what `raise` asks; returns the value set and how to restore the old one, or why not. */
export function raiseSysctl<T>(
  s: Sysctl<T>,
): { value: T; restore: () => void } | { unchanged: string } {
  let before: string;
  try {
    before = readFileSync(s.file, 'utf8');
  } catch (error) {
    return { unchanged: `cannot read ${s.file}: ${(error as Error).message}` };
  }
  const current = s.parse(before);
  if (current === undefined) return { unchanged: `unexpected ${s.file}: ${before.trim()}` };
  const value = s.raise(current);
  if (value === undefined) return { unchanged: `already ${before.trim()}` };
  try {
    writeFileSync(s.file, `${s.format(value)}\n`);
  } catch (error) {
    return { unchanged: `cannot write ${s.file}: ${(error as Error).message}` };
  }
  return { value, restore: () => writeFileSync(s.file, `${s.format(current)}\n`) };
}
