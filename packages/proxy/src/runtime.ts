/**
 * The Node.js flags the proxies run with (`NODE_FLAGS`, in `@mmp/config` so the installer reads
 * them without depending on the runtime): NumThreads workers are forked with them whatever
 * started the primary.
 */
import { NODE_FLAGS } from '@mmp/config';

export { NODE_FLAGS };

/** `execArgv` with our flags added, unless the operator set the same flags already. */
export function withNodeFlags(execArgv: readonly string[]): string[] {
  const name = (flag: string): string => flag.split('=')[0] ?? flag;
  const given = new Set(execArgv.map(name));
  return [...execArgv, ...NODE_FLAGS.filter((f) => !given.has(name(f)))];
}
