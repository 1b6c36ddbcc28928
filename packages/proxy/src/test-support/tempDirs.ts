// Temporary directories a test file makes, removed once its tests are done. A run of the suite
// left about 130 behind in /tmp (2026-12-03), most of them proxies' LogDirs, which tests read
// after stop() and so cannot be removed there. Vitest evaluates this module once per test file,
// so each file removes its own.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

const made: string[] = [];

afterAll(removeTempDirs);

/** A fresh directory under the system's temporary one, removed after this file's tests. */
export async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

/** Remove every directory `tempDir` made so far (also run after the file's tests). */
export async function removeTempDirs(): Promise<void> {
  await Promise.all(made.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
}
