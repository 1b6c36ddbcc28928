/**
 * Issue 12, points 1 and 3, on the built executables as root (CI runs as root): a proxy started by
 * root listens on ports below 1024 (its root primary) and serves its clients as RunAsUser
 * (`/proc/PID/status` of every serving process), refuses to start without a RunAsUser, and gives SIGUSR1 nginx's meaning
 * (reopen the log) instead of opening Node's inspector on 127.0.0.1:9229.
 *
 * Fixed ports on 127.0.5.10–12 (this task's loopback range), so nothing else collides.
 */

import { chown, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { type ResultPromise, execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from './test-support/tempDirs.js';
import { type Testbed, childrenOf, credentialsOf, startTestbed, waitUntil } from '@mmp/testbed';
import { lookupAccount } from './privileges.js';
import { IMAP_PROXY, POP_PROXY, testbedArgs } from './test-support/proxyProcess.js';
import { RawClient } from './test-support/rawClient.js';

if (process.getuid?.() !== 0) throw new Error('privileges.e2e.test.ts must run as root (CI does)');

const NOBODY = lookupAccount('nobody');
let bed: Testbed;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  bed = await startTestbed({ tls: false, bulkUsers: 0 });
}, 180_000);

afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  await bed?.stop();
});

interface Started {
  child: ResultPromise<{ reject: false; all: true; buffer: true }>;
  pid: number;
  logDir: string;
  output(): string;
}

/** A log directory only the run-as user can write, as mmp-setup makes it. */
async function logDirFor(uid: number, gid: number): Promise<string> {
  const dir = await tempDir('mmp-priv-log-');
  await chown(dir, uid, gid);
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Start the proxy (`command`: node and its entry file, or that behind setpriv). */
async function start(
  command: readonly string[],
  listen: string,
  env: Record<string, string>,
  logDir: string,
  backsidePort: number,
): Promise<Started> {
  const [program = 'node', ...before] = command;
  const child = execa(
    program,
    [...before, '-p', listen, '-o', logDir, ...testbedArgs(bed, backsidePort, { logLevel: 1 })],
    {
      reject: false,
      all: true,
      buffer: true,
      extendEnv: false,
      // JSON records: the tests look for their fields.
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', LogFormat: 'json', ...env },
    },
  );
  let out = '';
  child.all.on('data', (d: Buffer) => (out += d.toString()));
  cleanups.push(async () => {
    child.kill('SIGTERM');
    await child;
  });
  await waitUntil('the proxy listening', () => Promise.resolve(out.includes('listening on')), {
    timeoutMs: 20_000,
    abort: () => (child.exitCode !== null ? `exited ${child.exitCode}: ${out}` : undefined),
  });
  return { child, pid: child.pid ?? 0, logDir, output: () => out };
}

async function imapLogin(host: string, port: number, uid: string): Promise<string> {
  const c = await RawClient.open(port, host);
  await c.line(10_000);
  const u = bed.user(uid);
  c.send(`a LOGIN ${u.uid} ${u.password}\r\nb LOGOUT\r\n`);
  const lines = await c.until('a', 10_000);
  c.close();
  return lines.at(-1) ?? '';
}

async function popLogin(host: string, port: number, uid: string): Promise<string> {
  const c = await RawClient.open(port, host);
  await c.line(10_000);
  const u = bed.user(uid);
  c.send(`USER ${u.uid}\r\n`);
  await c.line(10_000);
  c.send(`PASS ${u.password}\r\n`);
  const answer = (await c.line(10_000)) ?? '';
  c.send('QUIT\r\n');
  c.close();
  return answer;
}

/** Whether anything accepts connections on 127.0.0.1:9229 (Node's inspector port). */
function inspectorOpen(): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port: 9229 });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

/** Listening TCP sockets of these processes (ss -p). */
async function listeningOf(pids: readonly number[]): Promise<string[]> {
  const r = await execa('ss', ['-Hltnp'], { reject: false });
  return r.stdout.split('\n').filter((l) => pids.some((p) => l.includes(`pid=${p},`)));
}

const logFiles = async (dir: string): Promise<string[]> =>
  (await readdir(dir)).filter((f) => /^MMP_\d{8}\.log$/.test(f));

describe('started as root', () => {
  it('serves on port 143 as RunAsUser (NumThreads 0: a root primary and one worker): uid, gid and groups are the user’s, logins work, the log file is the user’s', async () => {
    if (NOBODY === undefined) throw new Error('no user nobody on this machine');
    const dir = await logDirFor(NOBODY.uid, NOBODY.gid);
    const p = await start(
      ['node', IMAP_PROXY],
      '127.0.5.10:143',
      { RunAsUser: 'nobody' },
      dir,
      bed.backsidePorts.imap,
    );
    // The primary keeps root to re-read root-only files on SIGHUP (reload.e2e.test.ts); the one
    // process that talks to clients is nobody's.
    expect(credentialsOf(p.pid).uids).toEqual([0, 0, 0, 0]);
    const [worker, ...more] = childrenOf(p.pid);
    expect(more).toEqual([]);
    const { uids, gids, groups } = credentialsOf(worker ?? 0);
    expect(uids).toEqual([NOBODY.uid, NOBODY.uid, NOBODY.uid, NOBODY.uid]);
    expect(gids).toEqual([NOBODY.gid, NOBODY.gid, NOBODY.gid, NOBODY.gid]);
    expect(groups).not.toContain(0);
    expect(await imapLogin('127.0.5.10', 143, 'alice')).toMatch(/^a OK/);
    const [file] = await logFiles(dir);
    expect(file).toBeDefined();
    const st = await stat(join(dir, file ?? ''));
    expect([st.uid, st.gid, st.mode & 0o777]).toEqual([NOBODY.uid, NOBODY.gid, 0o600]);
    await waitUntil('the login in the log', async () =>
      (await readFile(join(dir, file ?? ''), 'utf8')).includes('serving clients as RunAsUser'),
    );
  });

  it('the one worker accepts and counts its clients itself: with the root primary stopped, a client on port 143 logs in and MaxConnectionsPerAddress still refuses a second', async () => {
    if (NOBODY === undefined) throw new Error('no user nobody on this machine');
    const dir = await logDirFor(NOBODY.uid, NOBODY.gid);
    const p = await start(
      ['node', IMAP_PROXY],
      '127.0.5.14:143',
      { RunAsUser: 'nobody', MaxConnectionsPerAddress: '1' },
      dir,
      bed.backsidePorts.imap,
    );
    // A primary that accepted each connection and sent it on stalled every new client while it
    // could not run; one that kept the counts let a second connection in after its question timed
    // out (a limit fails open). The worker does both itself now (listeners.ts, workers.ts).
    process.kill(p.pid, 'SIGSTOP');
    try {
      const held = await RawClient.open(143, '127.0.5.14', '127.0.5.15');
      expect(await held.line(10_000)).toMatch(/^\* OK /);
      const second = await RawClient.open(143, '127.0.5.14', '127.0.5.15');
      expect(await second.rest()).toEqual([
        '* BYE [UNAVAILABLE] Too many connections from your address, try again later',
      ]);
      const u = bed.user('alice');
      held.send(`a LOGIN ${u.uid} ${u.password}\r\nb LOGOUT\r\n`);
      expect((await held.until('a', 10_000)).at(-1)).toMatch(/^a OK/);
      held.close();
    } finally {
      process.kill(p.pid, 'SIGCONT');
    }
  });

  it('with NumThreads 2 the primary stays root and every worker serves POP3 on port 110 as RunAsUser', async () => {
    if (NOBODY === undefined) throw new Error('no user nobody on this machine');
    const dir = await logDirFor(NOBODY.uid, NOBODY.gid);
    const p = await start(
      ['node', POP_PROXY],
      '127.0.5.11:110',
      { RunAsUser: 'nobody', NumThreads: '2' },
      dir,
      bed.backsidePorts.pop3,
    );
    expect(credentialsOf(p.pid).uids).toEqual([0, 0, 0, 0]);
    const workers = childrenOf(p.pid);
    expect(workers).toHaveLength(2);
    for (const w of workers) {
      const { uids, gids } = credentialsOf(w);
      expect(uids).toEqual([NOBODY.uid, NOBODY.uid, NOBODY.uid, NOBODY.uid]);
      expect(gids).toEqual([NOBODY.gid, NOBODY.gid, NOBODY.gid, NOBODY.gid]);
    }
    for (let i = 0; i < 4; i++) expect(await popLogin('127.0.5.11', 110, 'bob')).toMatch(/^\+OK/);

    // SIGUSR1 to the primary (logrotate signals the pid file's process): every process reopens
    // its log, none opens the inspector.
    const [file = ''] = await logFiles(dir);
    await rename(join(dir, file), join(dir, `${file}.1`));
    process.kill(p.pid, 'SIGUSR1');
    await waitUntil('a new log file', async () => (await logFiles(dir)).length === 1);
    expect(await listeningOf([p.pid, ...workers])).toEqual([
      expect.stringContaining('127.0.5.11:110'),
    ]);
    expect(await inspectorOpen()).toBe(false);
    const before = await readFile(join(dir, `${file}.1`), 'utf8');
    expect(await popLogin('127.0.5.11', 110, 'bob')).toMatch(/^\+OK/);
    expect(await popLogin('127.0.5.11', 110, 'bob')).toMatch(/^\+OK/);
    await waitUntil('the logins in the new file', async () =>
      (await readFile(join(dir, file), 'utf8')).includes('"client connected"'),
    );
    expect(await readFile(join(dir, `${file}.1`), 'utf8')).toBe(before);
    expect((await stat(join(dir, file))).uid).toBe(NOBODY.uid);
  });

  it('started by an unprivileged user, works as that user on a high port (RunAsUser unset)', async () => {
    if (NOBODY === undefined) throw new Error('no user nobody on this machine');
    const dir = await logDirFor(NOBODY.uid, NOBODY.gid);
    const setpriv = ['setpriv', `--reuid=${NOBODY.uid}`, `--regid=${NOBODY.gid}`, '--clear-groups'];
    const p = await start(
      [...setpriv, 'node', IMAP_PROXY],
      '127.0.5.13:1143',
      {},
      dir,
      bed.backsidePorts.imap,
    );
    expect(credentialsOf(p.pid).uids).toEqual([NOBODY.uid, NOBODY.uid, NOBODY.uid, NOBODY.uid]);
    expect(await imapLogin('127.0.5.13', 1143, 'alice')).toMatch(/^a OK/);
    expect(p.output()).not.toContain('RunAsUser');
  });

  it('refuses to start without RunAsUser, or with an unknown one: one line, exit 2', async () => {
    for (const [env, message] of [
      [
        {},
        'ImapProxy: started as root but RunAsUser is not set: set RunAsUser to the user that serves clients (mmp-setup writes it; RunAsUser=root serves them as root)',
      ],
      [
        { RunAsUser: 'no-such-user-mmp' },
        "ImapProxy: RunAsUser 'no-such-user-mmp' is not a user on this system",
      ],
    ] as const) {
      const r = await execa('node', [IMAP_PROXY, '-p', '127.0.5.12:143'], {
        reject: false,
        extendEnv: false,
        env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env },
        timeout: 20_000,
      });
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toBe(message);
    }
  });
});

describe('SIGUSR1', () => {
  it('reopens the log file after it was moved, and never opens the inspector', async () => {
    if (NOBODY === undefined) throw new Error('no user nobody on this machine');
    const dir = await logDirFor(NOBODY.uid, NOBODY.gid);
    const p = await start(
      ['node', IMAP_PROXY],
      '127.0.5.12:143',
      { RunAsUser: 'nobody' },
      dir,
      bed.backsidePorts.imap,
    );
    const [file = ''] = await logFiles(dir);
    await rename(join(dir, file), join(dir, `${file}.1`));
    const moved = await readFile(join(dir, `${file}.1`), 'utf8');
    process.kill(p.pid, 'SIGUSR1');
    await waitUntil('a new log file', async () => (await logFiles(dir)).length === 1);
    expect(await inspectorOpen()).toBe(false);
    expect(await listeningOf([p.pid])).toEqual([expect.stringContaining('127.0.5.12:143')]);
    expect(await imapLogin('127.0.5.12', 143, 'alice')).toMatch(/^a OK/);
    await waitUntil('the login in the new file', async () =>
      (await readFile(join(dir, file), 'utf8')).includes('"client connected"'),
    );
    // Records made before the signal may still reach the moved file (they are written per
    // window, log.ts); the login's, made after it, only the new one.
    const old = await readFile(join(dir, `${file}.1`), 'utf8');
    expect(old.startsWith(moved)).toBe(true);
    expect(old).not.toContain('"client connected"');
    // Still alive and serving after the signal (its default action would not kill, but the
    // inspector would be open).
    expect(p.child.exitCode).toBeNull();
  });
});
