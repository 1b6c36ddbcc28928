/**
 * The MMPRoot layout of Table 13.6: `MMPRoot/bin/ImapProxy`, `MMPRoot/bin/PopProxy` and
 * `MMPRoot/mmp-setup`, small POSIX launchers that run the installed runtime (`runtime.ts`) with
 * the `node` found on PATH, never a path into a build tree nor the node that ran the installer:
 * upgrading Node.js or the package, or moving a checkout and running mmp-setup again, keeps every
 * instance working. The package installs the same launchers as /usr/bin/ImapProxy, PopProxy and
 * mmp-setup.
 */
import { NODE_FLAGS, PROTOCOLS, type Protocol, programName, shellQuote } from '@mmp/config';
import type { Runtime } from './runtime.js';

export const SETUP_PROGRAM = 'mmp-setup';

/** Node.js that the bundles are built for and the package depends on. */
export const NODE_REQUIRED = '20.19';

/** Where new instances log, each in its own directory (the package makes it, for its user). */
export const DEFAULT_LOG_ROOT = '/var/log/mmp';

/**
 * The log root: `MMP_LOG_ROOT` names another, like `MMP_CONF_FILE` the conf file (tests, and
 * unprivileged users running a checkout).
 */
export function logRoot(env: Readonly<Record<string, string | undefined>>): string {
  const given = env.MMP_LOG_ROOT;
  return given !== undefined && given.startsWith('/') ? given : DEFAULT_LOG_ROOT;
}

/** The default LogDir of a new instance (issue 12): a directory the run-as user can write. */
export function defaultLogDir(root: string, instance: string): string {
  return `${root}/${instance}`;
}

/** Where each launcher lives under MMPRoot (Table 13.6). */
export function launcherPath(root: string, program: Protocol | 'setup'): string {
  return program === 'setup' ? `${root}/${SETUP_PROGRAM}` : `${root}/bin/${programName(program)}`;
}

/**
 * A launcher: `node [flags] ENTRY "$@"` with exec, so that the pid a start script records is the
 * proxy's. PATH gains the usual directories (an init system's may be bare); a missing node is
 * one clear line and exit 127, the shell's "command not found".
 */
export function launcherScript(name: string, entry: string, nodeFlags: readonly string[]): string {
  const flags = nodeFlags.map(shellQuote).join(' ');
  return `#!/bin/sh
# ${name}: runs ${entry} with the node on PATH (Node.js ${NODE_REQUIRED} or later).
# Written by mmp-setup (Table 13.6 layout); mmp-setup writes it again after an upgrade.
PATH="\${PATH:+$PATH:}/usr/local/bin:/usr/bin:/bin"
if ! command -v node >/dev/null 2>&1; then
  echo "${name}: node (Node.js ${NODE_REQUIRED} or later) is not on PATH ($PATH)" >&2
  exit 127
fi
exec node ${flags === '' ? '' : `${flags} `}${shellQuote(entry)} "$@"
`;
}

/** The three launchers of an MMPRoot for a runtime, as [path, content]. */
export function launchers(root: string, runtime: Runtime): readonly [string, string][] {
  return [
    ...PROTOCOLS.map((p): [string, string] => [
      launcherPath(root, p),
      launcherScript(programName(p), runtime.proxies[p], NODE_FLAGS),
    ]),
    [launcherPath(root, 'setup'), launcherScript(SETUP_PROGRAM, runtime.setup, [])],
  ];
}
