/**
 * What is on disk: the conf file recording MMPRoot, the instance directories under it and the
 * files of one instance, read back with the config package's own parser so that `--modify` sees
 * exactly what the proxy will see.
 */
import { existsSync, readFileSync } from 'node:fs';
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
  findInstances,
  formatProblem,
  locateInstance,
  ok,
  parseConfigFile,
  readMmpConf,
} from '@mmp/config';
import { type LoadedInstance } from './dialogue.js';
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

/** Instance names under MMPRoot, sorted, each once (`@mmp/config` findInstances: the same
 * finder as `ImapProxy -n`). */
export function listInstances(root: string): readonly string[] {
  return [...new Set(findInstances(root).map((e) => e.name))];
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
