// What the test bed leaves behind, removed however the process ends: server process groups
// (process.ts), temporary directories, mounts. stop() methods clean up in the normal case; the
// exit hook here is the synchronous last resort on exit and on the usual termination signals;
// reap.ts handles what a SIGKILLed process could not.
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killAllServerProcesses } from './process.js';
import { DIR_PREFIX, reapOrphans, writeOwner } from './reap.js';

interface Registered {
  dir: string;
  keep: boolean;
}

const dirs = new Set<Registered>();
const mounts = new Set<string>();
let exitHookInstalled = false;

/** Lazily unmount every mount still registered (synchronous: exit handlers cannot wait). */
function unmountAllNow(): void {
  for (const path of mounts) spawnSync('umount', ['-l', path], { stdio: 'ignore' });
  mounts.clear();
}

function removeDirsNow(): void {
  for (const entry of dirs) {
    if (!entry.keep) {
      try {
        rmSync(entry.dir, { recursive: true, force: true });
      } catch {
        // best effort at exit
      }
    }
  }
  dirs.clear();
}

function cleanUpNow(): void {
  killAllServerProcesses();
  unmountAllNow();
  removeDirsNow();
}

export function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', cleanUpNow);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    // Only take over a signal nobody else handles: clean up, then die of it as before.
    if (process.listenerCount(signal) > 0) continue;
    const handler = (): void => {
      cleanUpNow();
      if (process.listenerCount(signal) === 1) {
        process.removeListener(signal, handler);
        process.kill(process.pid, signal);
      }
    };
    process.on(signal, handler);
  }
}

/** A directory removed at exit unless `keep`; stop() methods remove it earlier. */
export function registerDir(dir: string, keep: boolean): Registered {
  installExitHook();
  const entry = { dir, keep };
  dirs.add(entry);
  return entry;
}

export function unregisterDir(entry: Registered): void {
  dirs.delete(entry);
}

export function registerMount(path: string): void {
  installExitHook();
  mounts.add(path);
}

export function unregisterMount(path: string): void {
  mounts.delete(path);
}

/** A private directory for parts started outside startTestbed (a HAProxy, a full tmpfs). */
export interface PrivateDir {
  readonly dir: string;
  /** Remove it (unless kept); safe to call twice. */
  remove(): Promise<void>;
}

/**
 * A fresh `mmp-testbed-XXXXXX` directory under the system's temporary directory, owned by this
 * process (so that a later start reaps the servers started in it if this process is SIGKILLed)
 * and removed at exit unless `keep`.
 */
export async function privateDir(keep = process.env.MMP_TESTBED_KEEP === '1'): Promise<PrivateDir> {
  await reapOrphans(tmpdir()).catch(() => []);
  const dir = await mkdtemp(join(tmpdir(), DIR_PREFIX));
  const entry = registerDir(dir, keep);
  await writeOwner(dir, keep);
  let removed = false;
  return {
    dir,
    async remove(): Promise<void> {
      if (removed) return;
      removed = true;
      unregisterDir(entry);
      if (!keep) await rm(dir, { recursive: true, force: true });
    },
  };
}
