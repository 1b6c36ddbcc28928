/**
 * What is on disk: the conf file recording MMPRoot, the instance directories under it and the
 * files of one instance, read back with the config package's own parser so that `--modify` sees
 * exactly what the proxy will see.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  DEFAULT_MMP_CONF_FILE,
  DEFAULT_MMP_ROOT,
  INSTALLER_PARAMETERS,
  PROTOCOLS,
  type Protocol,
  type Result,
  configFileName,
  err,
  formatProblem,
  instanceDir,
  ok,
  parseConfigFile,
  readMmpConf,
} from '@mmp/config';
import { type LoadedInstance, checkInstanceName } from './dialogue.js';
import { scriptName } from './scripts.js';
import { type ProtocolValues } from './table.js';

/** The guide's /etc/netscape.mmp.conf; `MMP_CONF_FILE` names another (tests, unprivileged use). */
export function confFilePath(env: Readonly<Record<string, string | undefined>>): string {
  return env.MMP_CONF_FILE !== undefined && env.MMP_CONF_FILE !== ''
    ? env.MMP_CONF_FILE
    : DEFAULT_MMP_CONF_FILE;
}

/** MMPRoot as recorded in the conf file; the documented default when there is none yet. */
export function recordedRoot(confPath: string): Result<string, string> {
  let text: string;
  try {
    text = readFileSync(confPath, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return ok(DEFAULT_MMP_ROOT);
    return err(`${confPath}: ${(e as Error).message}`);
  }
  const r = readMmpConf(text, confPath);
  return r.ok ? r : err(r.error.map(formatProblem).join('\n'));
}

/** An instance directory under MMPRoot and the instance name it gives. */
export interface InstanceEntry {
  readonly name: string;
  readonly dir: string;
}

/** Ours and the guide's Table 13.6 spelling; new instances are made so (instanceDir). */
const PREFIX = 'MMP_';
/** The guide's installation steps spell it `MMPRoot/MMP-instanceName/`. */
const GUIDE_PREFIX = 'MMP-';

const isDir = (path: string): boolean => {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
};

const holdsConfig = (dir: string): boolean =>
  PROTOCOLS.some((p) => existsSync(join(dir, configFileName(p))));

/**
 * The instance directories under MMPRoot, by name then directory (a missing MMPRoot has none).
 * `MMP_<name>` is one whatever it holds; the guide's other spellings, `MMP-<name>` (its
 * installation steps) and a plain `<name>` (its `MMPRoot/mplex1`), are one when they hold an
 * ImapMMP.config or PopMMP.config. Hidden directories (mmp-setup's staging) never are.
 */
export function findInstances(root: string): readonly InstanceEntry[] {
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return [];
  }
  const out: InstanceEntry[] = [];
  for (const n of names) {
    const dir = join(root, n);
    if (n.startsWith('.') || !isDir(dir)) continue;
    if (n.startsWith(PREFIX) && n.length > PREFIX.length) {
      out.push({ name: n.slice(PREFIX.length), dir });
      continue;
    }
    if (!holdsConfig(dir)) continue;
    const name =
      n.startsWith(GUIDE_PREFIX) && n.length > GUIDE_PREFIX.length
        ? n.slice(GUIDE_PREFIX.length)
        : n;
    // The name goes into unit names and scripts: only names mmp-setup itself would accept.
    if (checkInstanceName(name).ok) out.push({ name, dir });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name) || a.dir.localeCompare(b.dir));
}

/** Instance names under MMPRoot, sorted, each once. */
export function listInstances(root: string): readonly string[] {
  return [...new Set(findInstances(root).map((e) => e.name))];
}

/**
 * The directory of instance `name`: the existing one in any spelling, else (a new instance)
 * `MMPRoot/MMP_<name>`. Two directories giving the same name is an error, never a guess.
 */
export function locateInstance(root: string, name: string): Result<string, string> {
  const found = findInstances(root).filter((e) => e.name === name);
  const [first, second] = found;
  if (first === undefined) return ok(instanceDir(root, name));
  if (second !== undefined)
    return err(
      `instance ${name}: ${found.map((e) => e.dir).join(' and ')} both hold it; rename one`,
    );
  return ok(first.dir);
}

/** The user recorded in a start script written before RunAsUser (`MMP_USER='name'`). */
export function scriptUser(text: string): string | undefined {
  const m = /^MMP_USER='([^']*)'$/m.exec(text);
  return m?.[1];
}

/** Read an instance's config files (and its run-as user) as dialogue defaults. */
export function loadInstance(root: string, name: string): Result<LoadedInstance, string> {
  const located = locateInstance(root, name);
  if (!located.ok) return located;
  return loadInstanceAt(located.value, name);
}

/** Read the instance in `dir` (found by findInstances). */
export function loadInstanceAt(dir: string, name: string): Result<LoadedInstance, string> {
  if (!existsSync(dir)) return err(`instance ${name}: ${dir} does not exist`);
  const values: ProtocolValues = { imap: {}, pop3: {} };
  const services: Protocol[] = [];
  let user: string | undefined;
  for (const p of PROTOCOLS) {
    const file = join(dir, configFileName(p));
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      return err(`${file}: ${(e as Error).message}`);
    }
    const parsed = parseConfigFile(text, file);
    if (!parsed.ok) return err(parsed.error.map(formatProblem).join('\n'));
    services.push(p);
    for (const [n, entry] of parsed.value) values[p][n] = entry.raw;
    // The installer's "user to run as" is RunAsUser; it is asked as such, not as a parameter.
    user ??= values[p][INSTALLER_PARAMETERS.runAsUser];
    delete values[p][INSTALLER_PARAMETERS.runAsUser];
    try {
      // Instances written before RunAsUser recorded it in the start script only.
      user ??= scriptUser(readFileSync(join(dir, scriptName(p)), 'utf8'));
    } catch {
      // A hand-made instance without our start script: the user is asked with its default.
    }
  }
  if (services.length === 0)
    return err(
      `instance ${name}: ${dir} holds neither ${PROTOCOLS.map(configFileName).join(' nor ')}`,
    );
  return ok({ services, values, ...(user !== undefined ? { user } : {}) });
}

/** Whether /etc/passwd knows the user (the guide: create a user for the MMP first). */
export function userExists(name: string, passwdFile = '/etc/passwd'): boolean {
  try {
    return readFileSync(passwdFile, 'utf8')
      .split('\n')
      .some((line) => line.split(':')[0] === name);
  } catch {
    return false;
  }
}
