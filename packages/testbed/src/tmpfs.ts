// A tiny tmpfs, filled to the last byte: a LogDir on a full disk (issue 14). Needs root
// (mount). Unmounted by unmount(), at process exit, or by the next start's reaper.
import { mkdir, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { privateDir, registerMount, unregisterMount } from './cleanup.js';

export interface FullTmpfs {
  /** The mount point: a directory where writing a byte fails with ENOSPC. */
  readonly path: string;
  readonly sizeBytes: number;
  /** Fill every free byte again (after free()). */
  fill(): Promise<void>;
  /** Remove the filler file: the whole size is free again. */
  free(): Promise<void>;
  /** Unmount and remove the directory; safe to call twice. */
  unmount(): Promise<void>;
}

export interface FullTmpfsOptions {
  /** Size in KiB, rounded up to whole pages by the kernel (default 64). */
  sizeKiB?: number;
  /** Fill it at once (default true). */
  fill?: boolean;
}

const FILLER = '.filler';

async function fillUp(path: string): Promise<void> {
  const file = await open(join(path, FILLER), 'a');
  try {
    const chunk = Buffer.alloc(4096, 0x2e);
    for (;;) {
      try {
        await file.write(chunk);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOSPC') break;
        throw error;
      }
    }
    // the last partial page: byte by byte until nothing fits
    for (;;) {
      try {
        await file.write(chunk.subarray(0, 1));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOSPC') return;
        throw error;
      }
    }
  } finally {
    await file.close();
  }
}

/** Mount a `sizeKiB` tmpfs in a private directory and fill it. */
export async function mountFullTmpfs(options: FullTmpfsOptions = {}): Promise<FullTmpfs> {
  const sizeKiB = options.sizeKiB ?? 64;
  if (!Number.isInteger(sizeKiB) || sizeKiB < 4) throw new Error('sizeKiB: a whole number ≥ 4');
  const own = await privateDir();
  const path = join(own.dir, 'full');
  await mkdir(path, { mode: 0o755 });
  registerMount(path);
  const mounted = await execa(
    'mount',
    ['-t', 'tmpfs', '-o', `size=${sizeKiB}k,mode=0777`, 'mmp-testbed-full', path],
    { reject: false, all: true, stdin: 'ignore' },
  );
  if (mounted.exitCode !== 0) {
    unregisterMount(path);
    await own.remove();
    throw new Error(`mount tmpfs failed (needs root): ${mounted.all ?? ''}`);
  }
  let unmounted = false;
  const fs: FullTmpfs = {
    path,
    sizeBytes: sizeKiB * 1024,
    fill: () => fillUp(path),
    free: () => rm(join(path, FILLER), { force: true }),
    async unmount(): Promise<void> {
      if (unmounted) return;
      unmounted = true;
      // lazy: a process still holding a log file open there does not keep the mount alive
      await execa('umount', ['-l', path], { reject: false, stdin: 'ignore' });
      unregisterMount(path);
      await own.remove();
    },
  };
  if (options.fill ?? true) {
    try {
      await fs.fill();
    } catch (error) {
      await fs.unmount();
      throw error;
    }
  }
  return fs;
}
