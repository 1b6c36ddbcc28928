/**
 * Who serves the clients (issue 12, as nginx, Dovecot and perdition do it): a proxy started by
 * root reads its configuration, keys, certificates and secrets and opens every listener as root,
 * then every process that talks to clients becomes `RunAsUser` (supplementary groups, then gid,
 * then uid — in that order, since each step needs the privilege the next one drops) before it
 * serves its first client. The parser of internet input and the passwords in flight then live in
 * a process that cannot read the configuration file, bind a privileged port or touch anything
 * else root owns.
 *
 * - The started process stays a small root primary (`control.ts`, `listeners.ts`): it reads
 *   every file and binds every listener, serves no client, and shares each listening socket with
 *   the workers (one even with NumThreads 0), which accept on it. Workers drop to RunAsUser (`dropPrivileges`) before
 *   they take their first connection and build their runtime from the file contents the primary
 *   sends (`snapshot.ts`), so a reload re-reads root-only files and opens new privileged
 *   listeners in the primary.
 * - Started by root, RunAsUser must name a user: unset or unknown stops the start with one line;
 *   `root` is the explicit opt-in to serve clients as root.
 * - Started by anyone else, nothing changes (high ports, that user's files).
 *
 * Log files are opened by root before the drop (and by the root primary at midnight and on
 * SIGUSR1) in a directory the run-as user can write: `ownedLogOpener` creates them owned by that
 * user, without following a symlink or a hard link planted there (the nginx packaging's
 * CVE-2016-1247), so the unprivileged processes can reopen them after a rotation.
 */

import { execFileSync } from 'node:child_process';
import { closeSync, constants, fstatSync, fchownSync, openSync, readFileSync } from 'node:fs';
import { type Result, err, ok } from '@mmp/config';
import { LOG_FILE_MODE, type LogOpener } from './log.js';

export interface Account {
  readonly user: string;
  readonly uid: number;
  readonly gid: number;
}

/** What this process does about privileges, decided once from RunAsUser and who started it. */
export type Privileges =
  /** Not started by root: run as whoever started it (RunAsUser has no effect). */
  | { readonly kind: 'unprivileged'; readonly ignored?: string }
  /** Started by root with RunAsUser=root: the operator chose to serve clients as root. */
  | { readonly kind: 'root' }
  /** Started by root: serve clients as this account. */
  | { readonly kind: 'drop'; readonly account: Account };

/** passwd lookup through NSS (getent), so users from LDAP or sssd count; /etc/passwd without it. */
export function lookupAccount(user: string): Account | undefined {
  let line: string | undefined;
  try {
    line = execFileSync('getent', ['passwd', user], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
  } catch (e) {
    // Exit 2: no such user. Anything else (no getent): read the file ourselves.
    if ((e as { status?: unknown }).status === 2) return undefined;
    try {
      line = readFileSync('/etc/passwd', 'utf8')
        .split('\n')
        .find((l) => l.split(':')[0] === user);
    } catch {
      return undefined;
    }
  }
  const f = line?.trim().split(':');
  if (f === undefined || f[0] !== user) return undefined;
  const uid = Number(f[2]);
  const gid = Number(f[3]);
  return Number.isInteger(uid) && Number.isInteger(gid) ? { user, uid, gid } : undefined;
}

export function privilegesFor(
  runAsUser: string | undefined,
  euid: number = process.geteuid?.() ?? -1,
  lookup: (user: string) => Account | undefined = lookupAccount,
): Result<Privileges, string> {
  const wanted = runAsUser?.trim() ?? '';
  if (euid !== 0) {
    // Started by the run-as user itself (or a developer): nothing to drop, nothing to say.
    const self = wanted === '' ? undefined : lookup(wanted);
    return ok(
      wanted === '' || self?.uid === euid
        ? { kind: 'unprivileged' }
        : { kind: 'unprivileged', ignored: wanted },
    );
  }
  if (wanted === '')
    return err(
      'started as root but RunAsUser is not set: set RunAsUser to the user that serves clients ' +
        '(mmp-setup writes it; RunAsUser=root serves them as root)',
    );
  if (wanted === 'root') return ok({ kind: 'root' });
  const account = lookup(wanted);
  if (account === undefined) return err(`RunAsUser '${wanted}' is not a user on this system`);
  if (account.uid === 0)
    return err(`RunAsUser '${wanted}' has uid 0: write RunAsUser=root to serve clients as root`);
  return ok({ kind: 'drop', account });
}

type ProcessWithInitgroups = NodeJS.Process & {
  initgroups?: (user: string, extraGroup: number) => void;
};

/** Become `account` for good: groups, gid, uid; then prove root cannot be regained. */
export function dropPrivileges(account: Account): Result<Account, string> {
  try {
    // initgroups(3): the user's supplementary groups from NSS (missing from @types/node).
    (process as ProcessWithInitgroups).initgroups?.(account.user, account.gid);
    process.setgid?.(account.gid);
    process.setuid?.(account.uid);
  } catch (e) {
    return err(`cannot become ${account.user}: ${(e as Error).message}`);
  }
  const ids = [process.getuid?.(), process.geteuid?.(), process.getgid?.(), process.getegid?.()];
  if (ids.some((id, i) => id !== (i < 2 ? account.uid : account.gid)))
    return err(`cannot become ${account.user}: ids are ${ids.join('/')} after the switch`);
  try {
    process.setuid?.(0);
  } catch {
    return ok(account);
  }
  return err(`became ${account.user} but could switch back to root: refusing to serve`);
}

/** openLogFile's `open` option: files root creates belong to the user who will reopen them. */
export function logOpener(privileges: Privileges): { open?: LogOpener } {
  return privileges.kind === 'drop'
    ? { open: ownedLogOpener({ uid: privileges.account.uid, gid: privileges.account.gid }) }
    : {};
}

/**
 * For a root process writing into a directory the run-as user owns: open (or create, mode 0600)
 * `path` without following a symlink, refuse anything but a regular file with one link, give it
 * to the run-as user, and hand the writer `/proc/self/fd/N` so that it opens this very inode,
 * whatever is renamed into place meanwhile.
 */
export function ownedLogOpener(owner: { uid: number; gid: number }): LogOpener {
  return (path) => {
    // After the drop the process can only hurt itself, and /proc/self/fd is root's by then (the
    // kernel clears the dumpable flag on setuid): open plainly.
    if (process.geteuid?.() !== 0) return ok({ path, release: () => undefined });
    let fd: number;
    try {
      fd = openSync(
        path,
        constants.O_WRONLY |
          constants.O_APPEND |
          constants.O_CREAT |
          constants.O_NOFOLLOW |
          constants.O_NONBLOCK,
        LOG_FILE_MODE,
      );
    } catch (e) {
      return err(`${path}: ${(e as Error).message}`);
    }
    try {
      const st = fstatSync(fd);
      if (!st.isFile() || st.nlink !== 1) {
        closeSync(fd);
        return err(`${path} is not a plain file (a link or a device?): not written as root`);
      }
      if (st.uid !== owner.uid || st.gid !== owner.gid) fchownSync(fd, owner.uid, owner.gid);
    } catch (e) {
      closeSync(fd);
      return err(`${path}: ${(e as Error).message}`);
    }
    let open = true;
    return {
      ok: true,
      value: {
        path: `/proc/self/fd/${fd}`,
        release() {
          if (open) closeSync(fd);
          open = false;
        },
      },
    };
  };
}
