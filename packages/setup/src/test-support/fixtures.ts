/** Temporary directories, a fake machine for the dialogue, and in-process CLI runs. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { DialogueEnv, LoadedInstance } from '../dialogue.js';
import { type CliIo, main } from '../cli.js';
import { listInstances, loadInstance } from '../instances.js';
import type { Prompter } from '../prompter.js';
import type { Runtime } from '../runtime.js';

export interface TempDir {
  readonly path: string;
  cleanup(): void;
}

export function tempDir(prefix = 'mmp-setup-'): TempDir {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/** A machine with the given users; instances are read from the real MMPRoot under test. */
export function fakeEnv(
  cwd: string,
  users: readonly string[] = ['nobody', 'root', 'nsmmp'],
  extra: Readonly<Record<string, LoadedInstance>> = {},
): DialogueEnv {
  return {
    cwd,
    hostName: 'mx1.example.com',
    userExists: (u) => users.includes(u),
    logRoot: '/var/log/mmp',
    listInstances: (root) => [...new Set([...listInstances(root), ...Object.keys(extra)])].sort(),
    loadInstance: (root, name) => {
      const e = extra[name];
      return e !== undefined ? { ok: true, value: e } : loadInstance(root, name);
    },
  };
}

export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** A fake runtime: the launchers only need absolute paths. */
export const FAKE_RUNTIME: Runtime = {
  proxies: { imap: '/opt/test/ImapProxy.mjs', pop3: '/opt/test/PopProxy.mjs' },
  setup: '/opt/test/mmp-setup.mjs',
  kind: 'bundle',
  missing: [],
};

export async function runCli(
  argv: readonly string[],
  opts: {
    confFile: string;
    cwd: string;
    prompter?: Prompter;
    signal?: AbortSignal;
    onApplyStep?: CliIo['onApplyStep'];
    passwdFile?: string;
  },
): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const code = await main({
    argv,
    // New instances' log directories go beside the conf file, not into /var/log.
    env: { MMP_CONF_FILE: opts.confFile, MMP_LOG_ROOT: join(dirname(opts.confFile), 'log') },
    cwd: opts.cwd,
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    hostName: 'mx1.example.com',
    runtime: FAKE_RUNTIME,
    ...(opts.prompter !== undefined ? { prompter: opts.prompter } : {}),
    ...(opts.signal !== undefined ? { signal: opts.signal } : {}),
    ...(opts.onApplyStep !== undefined ? { onApplyStep: opts.onApplyStep } : {}),
    ...(opts.passwdFile !== undefined ? { passwdFile: opts.passwdFile } : {}),
  });
  return { code, stdout, stderr };
}
