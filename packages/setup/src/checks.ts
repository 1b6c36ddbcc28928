/**
 * Checks of a finished answer set against the machine, reported as warnings (the operator may
 * fix the machine after the installer, e.g. create the user or the log directory).
 */
import { readFileSync, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { PROTOCOLS } from '@mmp/config';
import type { Answers } from './dialogue.js';
import { findSpec } from './table.js';

export interface Account {
  readonly uid: number;
  readonly gid: number;
}

/** uid and primary gid of a user from /etc/passwd. */
export function account(user: string, passwdFile = '/etc/passwd'): Account | undefined {
  try {
    for (const line of readFileSync(passwdFile, 'utf8').split('\n')) {
      const f = line.split(':');
      if (f[0] === user && f[2] !== undefined && f[3] !== undefined)
        return { uid: Number(f[2]), gid: Number(f[3]) };
    }
  } catch {
    // No passwd file: nothing to check against.
  }
  return undefined;
}

/** Owner/group/other write permission (supplementary groups are not considered). */
function writable(st: { uid: number; gid: number; mode: number }, who: Account): boolean {
  if (who.uid === 0) return true;
  if (st.uid === who.uid) return (st.mode & 0o200) !== 0;
  if (st.gid === who.gid) return (st.mode & 0o020) !== 0;
  return (st.mode & 0o002) !== 0;
}

/**
 * A directory named by a path parameter (LogDir) is where the proxy writes; the proxy runs as
 * the chosen user in the instance directory, which the installer's user owns. Warn when that
 * user could not write there, with what to do.
 */
export function directoryWarnings(
  answers: Answers,
  instanceDir: string,
  installer: Account,
  passwdFile?: string,
): string[] {
  const who = account(answers.user, passwdFile);
  if (who === undefined) return [];
  const out: string[] = [];
  const seen = new Set<string>();
  for (const p of PROTOCOLS) {
    if (!answers.services.includes(p)) continue;
    for (const [name, value] of Object.entries(answers.values[p])) {
      if (value === undefined || findSpec(name).kind !== 'path') continue;
      const abs = isAbsolute(value) ? value : resolve(instanceDir, value);
      let st: { uid: number; gid: number; mode: number; dir: boolean };
      try {
        const s = statSync(abs);
        st = { uid: s.uid, gid: s.gid, mode: s.mode, dir: s.isDirectory() };
      } catch {
        // The instance directory itself does not exist yet: the installer will create it 0755.
        if (abs !== instanceDir) continue;
        st = { uid: installer.uid, gid: installer.gid, mode: 0o755, dir: true };
      }
      if (!st.dir || writable(st, who) || seen.has(`${name}\0${abs}`)) continue;
      seen.add(`${name}\0${abs}`);
      out.push(
        `Warning: ${name} '${value}' (${abs}) is not writable by ${answers.user}, who runs the proxy: ` +
          `create a directory owned by ${answers.user} (e.g. install -d -o ${answers.user} /var/log/mmp) and give it as ${name}.`,
      );
    }
  }
  return out;
}
