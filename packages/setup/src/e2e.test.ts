/**
 * End to end, as root (CI runs as root): mmp-setup (the built executable) writes an instance
 * pointing at the test bed's real slapd and Dovecot stores, with its defaults for the user and
 * the log directory; the instance's own `ImapMMP start` runs the real ImapProxy through
 * `MMPRoot/bin/ImapProxy` on ports below 1024, which serves as the run-as user with no secret in
 * its environment or command line; a misspelt name, a bad value and a csh line behave as with
 * `-f`; `reload` reaches the proxy; `ImapProxy install -n` applies options to an instance.
 *
 * Fixed ports on 127.0.5.30–33 and 127.0.20.1–2 (loopback ranges of the tasks that wrote them).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { ImapFlow } from 'imapflow';
import {
  type Testbed,
  canConnect,
  childrenOf,
  credentialsOf,
  markerSubject,
  startTestbed,
  waitUntil,
  workersOf,
} from '@mmp/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { account } from './checks.js';
import { type TempDir, tempDir } from './test-support/fixtures.js';

if (process.getuid?.() !== 0) throw new Error('e2e.test.ts must run as root (CI does)');

const here = dirname(fileURLToPath(import.meta.url));
const BIN = join(here, '..', 'dist', 'bin', 'mmp-setup.js');
const NOBODY = account('nobody');

let bed: Testbed;
let tmp: TempDir;
/** Start scripts to stop in afterAll whatever failed. */
const scripts: string[] = [];

beforeAll(async () => {
  // The executables under test, up to date (tsc -b is incremental).
  execFileSync('pnpm', ['run', 'build'], { cwd: join(here, '..') });
  execFileSync('pnpm', ['--filter', '@mmp/proxy', 'run', 'build'], { cwd: join(here, '..') });
  bed = await startTestbed({ tls: false, stores: 2, bulkUsers: 4 });
  tmp = tempDir('mmp-setup-e2e-');
  execFileSync('chmod', ['755', tmp.path]);
}, 240_000);

afterAll(async () => {
  for (const s of scripts) if (existsSync(s)) await execa(s, ['stop'], { reject: false });
  await bed?.stop();
  tmp?.cleanup();
});

/** mmp-setup's environment: its conf file and log root inside the temporary directory. */
const setupEnv = (): Record<string, string> => ({
  MMP_CONF_FILE: join(tmp.path, 'netscape.mmp.conf'),
  MMP_LOG_ROOT: join(tmp.path, 'log'),
});

async function setup(name: string, lines: readonly string[]): Promise<string> {
  const answers = join(tmp.path, `${name}.yaml`);
  await writeFile(
    answers,
    [
      `root: ${join(tmp.path, 'mmp')}`,
      `instance: ${name}`,
      `LDAPHost: ${bed.ldap.host}:${bed.ldap.port}`,
      `BaseDN: ${bed.ldap.baseDn}`,
      `BindDN: ${JSON.stringify(bed.ldap.bindDn)}`,
      `BindPass: ${JSON.stringify(bed.ldap.bindPassword)}`,
      ...lines,
      '',
    ].join('\n'),
  );
  const r = await execa(process.execPath, [BIN, '--answers', answers, '--yes'], {
    env: setupEnv(),
    reject: false,
  });
  expect(r.stderr).toBe('');
  expect(r.exitCode).toBe(0);
  return join(tmp.path, 'mmp', `MMP_${name}`);
}

async function imapMarker(host: string, port: number, uid: string): Promise<string | undefined> {
  const u = bed.user(uid);
  const c = new ImapFlow({
    host,
    port,
    secure: false,
    auth: { user: u.uid, pass: u.password },
    logger: false,
    disableAutoIdle: true,
  });
  await c.connect();
  try {
    await c.mailboxOpen('INBOX');
    const msg = await c.fetchOne('1', { envelope: true });
    return msg ? msg.envelope?.subject : undefined;
  } finally {
    await c.logout();
  }
}

/** Whether `pid` has exited: gone, or a zombie (its cmdline is empty); read once, so a process
 * that exits between two looks is not an error. */
function ended(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`).length === 0;
  } catch {
    return true;
  }
}

describe('an instance made by mmp-setup, against the test bed', () => {
  it('defaults to a log directory of its own and a user; ImapMMP start serves port 143 as that user, with no secret in environ or cmdline; reload; stop', async () => {
    if (NOBODY === undefined) throw new Error('no user nobody');
    const dir = await setup('e2e', [
      'user: nobody',
      'services: imap',
      'ListenPort: 127.0.5.30:143',
      `BacksidePort: ${bed.backsidePorts.imap}`,
      'LogLevel: 1',
    ]);
    const script = join(dir, 'ImapMMP');
    scripts.push(script);
    // The default LogDir, made for the run-as user.
    const logDir = join(tmp.path, 'log', 'e2e');
    const st = statSync(logDir);
    expect([st.uid, st.gid, st.mode & 0o777]).toEqual([NOBODY.uid, NOBODY.gid, 0o750]);
    const config = readFileSync(join(dir, 'ImapMMP.config'), 'utf8');
    expect(config).toContain(`LogDir='${logDir}'`);
    expect(config).toContain("RunAsUser='nobody'");
    // Table 13.6: the script runs MMPRoot/bin/ImapProxy, never the build tree nor a node path.
    const text = readFileSync(script, 'utf8');
    expect(text).toContain(`MMP_PROXY='${join(tmp.path, 'mmp', 'bin', 'ImapProxy')}'`);
    expect(text).not.toContain(process.execPath);
    expect(text).not.toContain('dist/bin');

    expect((await execa(script, ['status'], { reject: false })).exitCode).toBe(3);
    const start = await execa(script, ['start'], { reject: false });
    expect(start.stderr).toBe('');
    expect(start.exitCode).toBe(0);
    expect(start.stdout).toMatch(/^ImapMMP \(e2e\): started \(pid \d+\)$/);
    const pid = Number(readFileSync(join(dir, 'ImapMMP.pid'), 'utf8'));

    // Started as root: a root primary that holds the listeners, workers that serve as the user.
    expect(credentialsOf(pid).uids).toEqual([0, 0, 0, 0]);
    const workers = await workersOf(pid);
    for (const w of workers) expect(credentialsOf(w).uids).toEqual(Array(4).fill(NOBODY.uid));
    const alice = bed.userOn('A');
    const bob = bed.userOn('B');
    expect(await imapMarker('127.0.5.30', 143, alice.uid)).toBe(markerSubject('A', alice.uid));
    expect(await imapMarker('127.0.5.30', 143, bob.uid)).toBe(markerSubject('B', bob.uid));

    // No secret where other users can read it (ps, /proc), in any of its processes.
    for (const p of [pid, ...workers]) {
      const environ = readFileSync(`/proc/${p}/environ`);
      const cmdline = readFileSync(`/proc/${p}/cmdline`);
      for (const secret of [bed.ldap.bindPassword, 'BindPass']) {
        expect(environ.includes(secret)).toBe(false);
        expect(cmdline.includes(secret)).toBe(false);
      }
    }
    const cmdline = readFileSync(`/proc/${pid}/cmdline`);
    expect(cmdline.toString().split('\0')).toContain(join(dir, 'ImapMMP.config'));

    // The login lines in the default log directory.
    const [log] = readdirSync(logDir).filter((f) => /^MMP_\d{8}\.log$/.test(f));
    expect(log).toBeDefined();
    await waitUntil('the logins in the log', () =>
      Promise.resolve(readFileSync(join(logDir, log ?? ''), 'utf8').includes(bob.uid)),
    );

    const reload = await execa(script, ['reload'], { reject: false });
    expect(reload.exitCode).toBe(0);
    expect(reload.stdout).toBe(`ImapMMP (e2e): reload requested (SIGHUP sent to pid ${pid})`);
    await waitUntil('the reload in the log', () =>
      Promise.resolve(
        readFileSync(join(logDir, log ?? ''), 'utf8').includes('configuration reloaded'),
      ),
    );

    const stop = await execa(script, ['stop'], { reject: false });
    expect(stop.exitCode).toBe(0);
    expect(stop.stdout).toBe('ImapMMP (e2e): stopped');
    expect(await canConnect('127.0.5.30', 143)).toBe(false);
    expect((await execa(script, ['status'], { reject: false })).exitCode).toBe(3);
  });

  it('ImapMMP start supervises: a proxy killed with SIGKILL (or its successor after a restart) is started again and serves logins; stop leaves nothing running', async () => {
    const dir = await setup('sup', [
      'user: nobody',
      'services: imap',
      'ListenPort: 127.0.20.1:143',
      `BacksidePort: ${bed.backsidePorts.imap}`,
    ]);
    const script = join(dir, 'ImapMMP');
    scripts.push(script);
    const config = join(dir, 'ImapMMP.config');
    const pidFile = join(dir, 'ImapMMP.pid');
    const out = join(dir, 'ImapMMP.out');
    const alice = bed.userOn('A');
    const serves = async (): Promise<void> =>
      expect(await imapMarker('127.0.20.1', 143, alice.uid)).toBe(markerSubject('A', alice.uid));
    /** The pid file's proxy once it is another one than `old` and serves as a root primary. */
    const successorOf = async (old: number): Promise<number> => {
      let pid = 0;
      await waitUntil(
        'a new proxy listening',
        async () => {
          pid = Number(readFileSync(pidFile, 'utf8'));
          return pid !== old && existsSync(`/proc/${pid}`) && (await canConnect('127.0.20.1', 143));
        },
        { timeoutMs: 30_000 },
      );
      return pid;
    };
    /** Every process that runs this instance's file: the supervisor, the proxies, their workers. */
    const running = async (): Promise<string> =>
      (await execa('pgrep', ['-f', '-x', `.* ${config}`], { reject: false })).stdout;

    const start = await execa(script, ['start'], { reject: false });
    expect(start.stderr).toBe('');
    expect(start.exitCode).toBe(0);
    const first = Number(readFileSync(pidFile, 'utf8'));
    const supervisor = Number(readFileSync(join(dir, 'ImapMMP.supervisor.pid'), 'utf8'));
    const oldWorkers = await workersOf(first);
    await serves();

    // A crash no guard caught, as the kernel does it: the root primary, at once.
    process.kill(first, 'SIGKILL');
    const second = await successorOf(first);
    expect(credentialsOf(second).uids).toEqual([0, 0, 0, 0]);
    expect(childrenOf(supervisor)).toContain(second);
    for (const w of await workersOf(second))
      expect(credentialsOf(w).uids).toEqual(Array(4).fill(NOBODY?.uid));
    await serves();
    expect(readFileSync(out, 'utf8')).toContain(
      `the proxy (pid ${first}) was killed by SIGKILL; starting it again in 1s`,
    );
    // The killed primary's workers did not outlive it.
    await waitUntil('the old workers gone', () => Promise.resolve(oldWorkers.every(ended)));

    // After a hand-over the new proxy is not the supervisor's child; it is followed all the same.
    const restart = await execa(script, ['restart'], { reject: false });
    expect(restart.exitCode).toBe(0);
    const third = Number(readFileSync(pidFile, 'utf8'));
    expect(third).not.toBe(second);
    await serves();
    process.kill(third, 'SIGKILL');
    const fourth = await successorOf(third);
    await serves();
    expect(readFileSync(out, 'utf8')).toContain(
      `the proxy (pid ${third}) ended; starting it again in`,
    );
    // The old process of the hand-over ended (exit 0) without a third proxy being started.
    expect(readFileSync(out, 'utf8').match(/starting it again/g)).toHaveLength(2);

    const stop = await execa(script, ['stop'], { reject: false });
    expect(stop.exitCode).toBe(0);
    expect(stop.stdout).toBe('ImapMMP (sup): stopped');
    await waitUntil('nothing of the instance running', async () => (await running()) === '');
    expect(ended(fourth)).toBe(true);
    expect(await canConnect('127.0.20.1', 143)).toBe(false);
    expect((await execa(script, ['status'], { reject: false })).exitCode).toBe(3);
  });

  it('a hand-over successor stopped by hand (SIGTERM) says so and is not started again', async () => {
    const dir = await setup('handstop', [
      'user: nobody',
      'services: imap',
      'ListenPort: 127.0.20.2:143',
      `BacksidePort: ${bed.backsidePorts.imap}`,
    ]);
    const script = join(dir, 'ImapMMP');
    scripts.push(script);
    const pidFile = join(dir, 'ImapMMP.pid');
    expect((await execa(script, ['start'], { reject: false })).exitCode).toBe(0);
    const supervisor = Number(readFileSync(join(dir, 'ImapMMP.supervisor.pid'), 'utf8'));
    expect((await execa(script, ['restart'], { reject: false })).exitCode).toBe(0);
    const successor = Number(readFileSync(pidFile, 'utf8'));
    process.kill(successor, 'SIGTERM');
    await waitUntil('the supervisor gone', () => Promise.resolve(ended(supervisor)), {
      timeoutMs: 30_000,
    });
    const text = readFileSync(join(dir, 'ImapMMP.out'), 'utf8');
    expect(text).toContain(`ImapProxy: stopped (pid ${successor})`);
    expect(text).not.toContain('starting it again');
    expect(await canConnect('127.0.20.2', 143)).toBe(false);
    expect((await execa(script, ['status'], { reject: false })).exitCode).toBe(3);
  });

  it('the proxy reads the file itself: a misspelt name and a bad value stop the start with its message, a csh setenv line is read', async () => {
    const dir = await setup('checks', [
      'user: nobody',
      'services: imap',
      'ListenPort: 127.0.5.31:143',
      `BacksidePort: ${bed.backsidePorts.imap}`,
    ]);
    const script = join(dir, 'ImapMMP');
    scripts.push(script);
    const file = join(dir, 'ImapMMP.config');
    const good = readFileSync(file, 'utf8');

    for (const [line, message] of [
      ["ListenPrt='127.0.5.31:1143'\n", 'did you mean ListenPort?'],
      ["LogLevel='eleven'\n", 'LogLevel'],
    ] as const) {
      await writeFile(file, good + line, { mode: 0o600 });
      const r = await execa(script, ['start'], { reject: false });
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toContain('ImapMMP (checks): failed to start');
      expect(r.stderr).toContain(message);
      expect(existsSync(join(dir, 'ImapMMP.pid'))).toBe(false);
    }

    // csh syntax, which /bin/sh would have dropped when it sourced the file.
    await writeFile(file, good + 'setenv ListenPort 127.0.5.31:110\n', { mode: 0o600 });
    const r = await execa(script, ['start'], { reject: false });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(await canConnect('127.0.5.31', 110)).toBe(true);
    expect(await canConnect('127.0.5.31', 143)).toBe(false);
    expect((await execa(script, ['stop'], { reject: false })).exitCode).toBe(0);
  });

  it('both services: ImapMMP and PopMMP on 143 and 110, IMAP and POP3 logins reach the right stores', async () => {
    const dir = await setup('both', [
      'user: nobody',
      'services: both',
      'imap:',
      '  ListenPort: 127.0.5.32:143',
      `  BacksidePort: ${bed.backsidePorts.imap}`,
      'pop3:',
      '  ListenPort: 127.0.5.32:110',
      `  BacksidePort: ${bed.backsidePorts.pop3}`,
    ]);
    const imap = join(dir, 'ImapMMP');
    const pop = join(dir, 'PopMMP');
    scripts.push(imap, pop);
    for (const s of [imap, pop]) {
      const start = await execa(s, ['start'], { reject: false });
      expect(start.stderr).toBe('');
      expect(start.exitCode).toBe(0);
    }
    const alice = bed.userOn('A');
    const bob = bed.userOn('B');
    const retr = await execa('curl', [
      '-s',
      '--user',
      `${bob.uid}:${bob.password}`,
      'pop3://127.0.5.32:110/1',
    ]);
    expect(retr.stdout).toContain(`Subject: ${markerSubject('B', bob.uid)}`);
    expect(await imapMarker('127.0.5.32', 143, alice.uid)).toBe(markerSubject('A', alice.uid));
    for (const [s, name] of [
      [imap, 'ImapMMP'],
      [pop, 'PopMMP'],
    ] as const) {
      const stop = await execa(s, ['stop'], { reject: false });
      expect(stop.exitCode).toBe(0);
      expect(stop.stdout).toBe(`${name} (both): stopped`);
    }
  });

  it('ImapProxy install -n NAME applies options to an instance, creating it; a bad value changes nothing', async () => {
    const launcher = join(tmp.path, 'mmp', 'bin', 'ImapProxy');
    const pop = join(tmp.path, 'mmp', 'bin', 'PopProxy');
    const run = (program: string, args: readonly string[]): ReturnType<typeof execa> =>
      execa(program, args, { reject: false, env: setupEnv() });

    // A new instance, with mmp-setup's defaults and the given options.
    const made = await run(launcher, [
      'install',
      '-n',
      'byflag',
      '-p',
      '127.0.5.33:143',
      '-v',
      '3',
    ]);
    expect(made.stderr).toBe('');
    expect(made.exitCode).toBe(0);
    const dir = join(tmp.path, 'mmp', 'MMP_byflag');
    expect(made.stdout).toContain(`Created instance byflag in ${dir}:`);
    const config = readFileSync(join(dir, 'ImapMMP.config'), 'utf8');
    expect(config).toContain("ListenPort='127.0.5.33:143'");
    expect(config).toContain("LogLevel='3'");
    expect(config).toContain(`LogDir='${join(tmp.path, 'log', 'byflag')}'`);
    expect(existsSync(join(dir, 'PopMMP.config'))).toBe(false);

    // Applied to the existing instance: what is not given stays; PopProxy adds its service.
    const changed = await run(launcher, ['install', '-n', 'byflag', '-b', 'o=changed']);
    expect(changed.exitCode).toBe(0);
    const after = readFileSync(join(dir, 'ImapMMP.config'), 'utf8');
    expect(after).toContain("BaseDN='o=changed'");
    expect(after).toContain("LogLevel='3'");
    const added = await run(pop, ['install', '-n', 'byflag', '-p', '127.0.5.33:110']);
    expect(added.exitCode).toBe(0);
    expect(readFileSync(join(dir, 'PopMMP.config'), 'utf8')).toContain(
      "ListenPort='127.0.5.33:110'",
    );
    expect(readFileSync(join(dir, 'ImapMMP.config'), 'utf8')).toBe(after);

    // Bad input: one clear line, exit 2, nothing written.
    const bad = await run(launcher, ['install', '-n', 'byflag', '-v', 'eleven']);
    expect(bad.exitCode).toBe(2);
    expect(String(bad.stderr).trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toContain('LogLevel');
    expect(readFileSync(join(dir, 'ImapMMP.config'), 'utf8')).toBe(after);
    const none = await run(launcher, ['install', '-n', 'ghost', '-v', 'eleven']);
    expect(none.exitCode).toBe(2);
    expect(existsSync(join(tmp.path, 'mmp', 'MMP_ghost'))).toBe(false);

    // Without install, -n runs the instance's file as before (here: -h lists it).
    const list = await run(launcher, ['-n', 'byflag', '-h']);
    expect(list.exitCode).toBe(0);
    expect(list.stdout).toMatch(/BaseDN\s+"o=changed"\s+\[ImapMMP\.config:\d+\]/);
  });
});
