/**
 * The Node.js flags the proxies run with, here so that both the runtime (NumThreads workers are
 * forked with them) and the installer (the `MMPRoot/bin` launchers pass them) read one list
 * without the installer depending on the runtime.
 *
 * `--max-semi-space-size=2` (MiB): an idle piped session holds about 5 KB of heap, but each login
 * allocates briefly, and under a stream of logins V8 grows its young generation to its 16 MiB
 * per semi-space default and keeps it, which is as much memory as thousands of idle sessions.
 * Measured with 4,000 idle IMAP sessions through one process: 14.4 KB of RSS per session with
 * the default, 8.7 KB with 2 MiB (README, "Memory per session").
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2'];
