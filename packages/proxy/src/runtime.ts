/**
 * The Node.js flags the proxies run with: the start scripts written by mmp-setup pass them, and
 * NumThreads workers are forked with them whatever started the primary.
 *
 * `--max-semi-space-size=2` (MiB): an idle piped session holds about 5 KB of heap, but each login
 * allocates briefly, and under a stream of logins V8 grows its young generation to its 16 MiB
 * per semi-space default and keeps it, which is as much memory as thousands of idle sessions.
 * Measured with 4,000 idle IMAP sessions through one process: 14.4 KB of RSS per session with
 * the default, 8.7 KB with 2 MiB (README, "Memory per session").
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2'];

/** `execArgv` with our flags added, unless the operator set the same flags already. */
export function withNodeFlags(execArgv: readonly string[]): string[] {
  const name = (flag: string): string => flag.split('=')[0] ?? flag;
  const given = new Set(execArgv.map(name));
  return [...execArgv, ...NODE_FLAGS.filter((f) => !given.has(name(f)))];
}
