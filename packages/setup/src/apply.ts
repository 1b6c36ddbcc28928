/**
 * Write a plan so that nothing is ever half-written (issue 7): every file is first written in
 * full to a temporary name beside its target, then renamed over it (rename(2) replaces a name
 * atomically on one file system). A new instance is staged as a whole hidden directory and
 * renamed into place. Until the last step, every replaced file is kept as a hard-link backup, so
 * a failure or an abort (Ctrl-C) at any point puts back exactly what was there.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import {
  access,
  chmod,
  chown,
  link,
  mkdir,
  open,
  rename,
  rm,
  rmdir,
  stat,
  unlink,
} from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Result } from '@mmp/config';
import type { Plan } from './plan.js';

export interface ApplyReport {
  /** The instance directory did not exist before. */
  readonly created: boolean;
  /** Files of dropped protocols that were removed. */
  readonly removed: readonly string[];
}

export interface ApplyOptions {
  /** Aborting (Ctrl-C) rolls everything back at the next step. */
  readonly signal?: AbortSignal;
  /** Called after each step with its name: tests use it to fail or abort at every point. */
  readonly onStep?: (step: string) => void | Promise<void>;
}

class Aborted extends Error {
  override name = 'Aborted';
}

/** Write `content` to a new file with `mode`, flushed to disk before it may be renamed. */
async function writeNew(path: string, content: string, mode: number): Promise<void> {
  // O_EXCL: never follow or reuse something planted at the temporary name.
  const fh = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  try {
    await fh.writeFile(content);
    // The umask may have narrowed the mode; the plan's mode is the one we promise.
    await fh.chmod(mode);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

const exists = async (path: string): Promise<boolean> =>
  access(path).then(
    () => true,
    () => false,
  );

/** Create `dir` and its missing parents (0755; `dir` itself `mode`), returning the ones
 * created (deepest last). */
async function mkdirs(dir: string, mode = 0o755): Promise<string[]> {
  const missing: string[] = [];
  for (let d = dir; !(await exists(d)); d = dirname(d)) missing.unshift(d);
  for (const d of missing) {
    await mkdir(d, { mode: 0o755 });
    // The umask may have narrowed it; the plan's mode is the one we promise.
    if (d === dir) await chmod(d, mode);
  }
  return missing;
}

/** An undo log: each step pushes how to take it back; rollback runs them in reverse. */
type Undo = () => Promise<void>;

export async function applyPlan(
  plan: Plan,
  options: ApplyOptions = {},
): Promise<Result<ApplyReport, string>> {
  const tag = `mmp-setup-${process.pid}-${randomBytes(4).toString('hex')}`;
  const undo: Undo[] = [];
  // Backups and temporaries to delete once everything is in place.
  const cleanup: string[] = [];
  // Directories we made (MMPRoot, log directories, the conf file's), removed last on failure.
  const createdDirs: string[] = [];
  const step = async (name: string): Promise<void> => {
    if (options.signal?.aborted) throw new Aborted('interrupted');
    await options.onStep?.(name);
    if (options.signal?.aborted) throw new Aborted('interrupted');
  };
  const dir = plan.instanceDir;
  let created: boolean;
  const removed: string[] = [];

  /** Put `tmp` at `target`, keeping the old file as a backup until the end. */
  const replace = async (tmp: string, target: string): Promise<void> => {
    if (await exists(target)) {
      const bak = join(dirname(target), `.${basename(target)}.${tag}.bak`);
      await link(target, bak);
      cleanup.push(bak);
      await rename(tmp, target);
      undo.push(() => rename(bak, target));
    } else {
      await rename(tmp, target);
      undo.push(() => unlink(target));
    }
  };

  try {
    createdDirs.push(...(await mkdirs(dirname(dir))));
    await step('root');

    created = !(await exists(dir));
    if (created) {
      // A whole new directory: stage it hidden beside its final name, then one rename.
      const stage = join(dirname(dir), `.${basename(dir)}.${tag}`);
      cleanup.push(stage);
      await mkdir(stage);
      // Readable by the MMP user whatever the umask: the proxy runs in it.
      await chmod(stage, 0o755);
      for (const f of plan.files) {
        await writeNew(join(stage, f.name), f.content, f.mode);
        await step(`stage ${f.name}`);
      }
      await rename(stage, dir);
      // The directory is registered for removal only now that it exists under its real name.
      undo.push(() => rm(dir, { recursive: true, force: true }));
      await step('instance directory');
    } else {
      const st = await stat(dir);
      if (!st.isDirectory()) return { ok: false, error: `${dir} exists and is not a directory` };
      const temps: { tmp: string; target: string }[] = [];
      for (const f of plan.files) {
        const tmp = join(dir, `.${f.name}.${tag}.tmp`);
        cleanup.push(tmp);
        await writeNew(tmp, f.content, f.mode);
        temps.push({ tmp, target: join(dir, f.name) });
        await step(`stage ${f.name}`);
      }
      for (const { tmp, target } of temps) {
        await replace(tmp, target);
        await step(`commit ${basename(target)}`);
      }
      for (const name of plan.remove) {
        const target = join(dir, name);
        if (!(await exists(target))) continue;
        // Moved aside rather than deleted, so a rollback can bring it back.
        const bak = join(dir, `.${name}.${tag}.bak`);
        await rename(target, bak);
        cleanup.push(bak);
        undo.push(() => rename(bak, target));
        removed.push(name);
        await step(`remove ${name}`);
      }
    }

    // The directories the proxy writes (LogDir), given to the run-as user; an existing one is
    // the operator's and left as it is.
    for (const d of plan.dirs) {
      const made = await mkdirs(d.path, d.mode);
      createdDirs.push(...made);
      if (made.length > 0 && d.owner !== undefined) await chown(d.path, d.owner.uid, d.owner.gid);
      await step(`directory ${d.path}`);
    }

    // MMPRoot's launchers, then the conf file recording MMPRoot: each written whole, then
    // renamed into place.
    for (const f of [...plan.launchers, plan.conf]) {
      const tmp = `${f.path}.${tag}.tmp`;
      createdDirs.push(...(await mkdirs(dirname(f.path))));
      cleanup.push(tmp);
      await writeNew(tmp, f.content, f.mode);
      await replace(tmp, f.path);
      await step(`file ${f.path}`);
    }
  } catch (e) {
    const problems: string[] = [];
    for (const u of undo.reverse()) {
      try {
        await u();
      } catch (ue) {
        problems.push((ue as Error).message);
      }
    }
    for (const c of cleanup) await rm(c, { recursive: true, force: true }).catch(() => undefined);
    for (const d of createdDirs.reverse()) {
      try {
        await rmdir(d);
      } catch (de) {
        problems.push((de as Error).message);
      }
    }
    const why = e instanceof Aborted ? 'interrupted' : (e as Error).message;
    const tail =
      problems.length > 0
        ? `; rolling back also failed: ${problems.join('; ')}`
        : '; nothing was changed';
    return { ok: false, error: `${why}${tail}` };
  }

  // Committed: the backups and leftovers can go. A failure here loses nothing.
  for (const c of cleanup) await rm(c, { recursive: true, force: true }).catch(() => undefined);
  return { ok: true, value: { created, removed } };
}
