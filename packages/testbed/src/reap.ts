// Clean-up after test processes that died without stopping their test bed (SIGKILL, say):
// each test bed directory records its owner's pid; a later start kills the servers of any
// test bed whose owner is gone and removes its directory (unless it was to be kept).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { findProcesses } from './process.js';

export const DIR_PREFIX = 'mmp-testbed-';
const OWNER_FILE = 'owner.json';

interface Owner {
  pid: number;
  keep: boolean;
}

export async function writeOwner(dir: string, keep: boolean): Promise<void> {
  const owner: Owner = { pid: process.pid, keep };
  await writeFile(join(dir, OWNER_FILE), `${JSON.stringify(owner)}\n`);
}

/** Mount points at or below `dir` (a full tmpfs of tmpfs.ts), deepest first. */
export function mountsUnder(dir: string): string[] {
  let table: string;
  try {
    table = readFileSync('/proc/self/mounts', 'utf8');
  } catch {
    return [];
  }
  return table
    .split('\n')
    .map((line) => (line.split(' ')[1] ?? '').replace(/\\040/g, ' '))
    .filter((point) => point === dir || point.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Kill the servers of orphaned test beds under `parent`; returns the directories handled. */
export async function reapOrphans(parent: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(parent);
  } catch {
    return [];
  }
  const reaped: string[] = [];
  for (const name of names) {
    if (!/^mmp-testbed-[A-Za-z0-9]{6}$/.test(name)) continue;
    const dir = join(parent, name);
    let owner: Owner;
    try {
      owner = JSON.parse(await readFile(join(dir, OWNER_FILE), 'utf8')) as Owner;
    } catch {
      continue; // being created, or not ours
    }
    if (typeof owner.pid !== 'number' || alive(owner.pid)) continue;
    // slapd and the Dovecot masters name the directory on their command line; Dovecot's
    // children carry the instance name, which contains the directory's name.
    for (const { pid } of findProcesses(name)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    for (const point of mountsUnder(dir)) spawnSync('umount', ['-l', point], { stdio: 'ignore' });
    if (owner.keep) await rm(join(dir, OWNER_FILE), { force: true });
    else await rm(dir, { recursive: true, force: true });
    reaped.push(dir);
  }
  return reaped;
}
