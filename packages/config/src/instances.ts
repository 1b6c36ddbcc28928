/**
 * The instance directories under MMPRoot, found the same way by everything that names an
 * instance: `ImapProxy -n NAME` (and the packaged systemd template units, which run it), and
 * mmp-setup's `--list`, `--modify` and `--import`. The guide spells them three ways:
 * `MMPRoot/MMP_<name>` (Table 13.6; new instances are made so, `instanceDir`), `MMP-<name>` (its
 * installation steps) and a plain `<name>` (its `MMPRoot/mplex1`).
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { configFileName, instanceDir } from './configFile.js';
import { PROTOCOLS, type Result, err, ok } from './types.js';

/** What finding instances reads: the directories under MMPRoot, and which files exist. */
export interface InstanceFs {
  /** Names of the directories in `path` (none when it is missing or unreadable). */
  subdirectories(path: string): readonly string[];
  /** The file's text; null when it does not exist; an error message otherwise. */
  readFile(path: string): Result<string | null, string>;
}

export const nodeInstanceFs: InstanceFs = {
  subdirectories(path) {
    let names: string[];
    try {
      names = readdirSync(path);
    } catch {
      return [];
    }
    return names.filter((n) => {
      try {
        return statSync(join(path, n)).isDirectory();
      } catch {
        return false;
      }
    });
  },
  readFile(path) {
    try {
      return ok(readFileSync(path, 'utf8'));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return ok(null);
      return err(`${path}: ${(e as Error).message}`);
    }
  },
};

/** Instance names go into unit names, scripts and paths: no slash, no leading dot. */
const INSTANCE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function checkInstanceName(name: string): Result<string, string> {
  const v = name.trim();
  return INSTANCE_RE.test(v)
    ? ok(v)
    : err(`instance: '${name}' is not a valid name (letters, digits, '.', '_' and '-')`);
}

/** An instance directory under MMPRoot and the instance name it gives. */
export interface InstanceEntry {
  readonly name: string;
  readonly dir: string;
}

/** Ours and the guide's Table 13.6 spelling. */
const PREFIX = 'MMP_';
/** The guide's installation steps spell it `MMPRoot/MMP-instanceName/`. */
const GUIDE_PREFIX = 'MMP-';

/**
 * The instance directories under MMPRoot, by name then directory (a missing MMPRoot has none).
 * `MMP_<name>` is one whatever it holds; `MMP-<name>` and a plain `<name>` are one when they
 * hold an ImapMMP.config or PopMMP.config. Hidden directories (mmp-setup's staging) never are.
 */
export function findInstances(
  root: string,
  fs: InstanceFs = nodeInstanceFs,
): readonly InstanceEntry[] {
  const holdsConfig = (dir: string): boolean =>
    PROTOCOLS.some((p) => {
      const f = fs.readFile(join(dir, configFileName(p)));
      return !f.ok || f.value !== null;
    });
  const out: InstanceEntry[] = [];
  for (const n of fs.subdirectories(root)) {
    const dir = join(root, n);
    if (n.startsWith('.')) continue;
    if (n.startsWith(PREFIX) && n.length > PREFIX.length) {
      out.push({ name: n.slice(PREFIX.length), dir });
      continue;
    }
    if (!holdsConfig(dir)) continue;
    const name =
      n.startsWith(GUIDE_PREFIX) && n.length > GUIDE_PREFIX.length
        ? n.slice(GUIDE_PREFIX.length)
        : n;
    if (checkInstanceName(name).ok) out.push({ name, dir });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name) || a.dir.localeCompare(b.dir));
}

/**
 * The directory of instance `name`: the existing one in any spelling, else (a new instance)
 * `MMPRoot/MMP_<name>`. Two directories giving the same name is an error, never a guess.
 */
export function locateInstance(
  root: string,
  name: string,
  fs: InstanceFs = nodeInstanceFs,
): Result<string, string> {
  const found = findInstances(root, fs).filter((e) => e.name === name);
  const [first, second] = found;
  if (first === undefined) return ok(instanceDir(root, name));
  if (second !== undefined)
    return err(
      `instance ${name}: ${found.map((e) => e.dir).join(' and ')} both hold it; rename one`,
    );
  return ok(first.dir);
}
