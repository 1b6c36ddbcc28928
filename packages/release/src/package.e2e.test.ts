/**
 * Issue 12, "How it is shown", as a new operator on this machine (as root; CI runs as root):
 * build the package, `dpkg -i` it, `mmp-setup --answers FILE --yes` with its defaults except the
 * directory and the stores, start the instance with its own scripts on ports 143 and 110 of a
 * loopback address, every proxy process serving as the package's user, curl imap:// and pop3://
 * reaching stores A and B, the logins in the default log directory, logrotate's postrotate
 * making the proxies write a new file, stop, `dpkg --purge`, and nothing of the package left.
 * Then the same package, extracted with `dpkg-deb -x` elsewhere, serves a login while the
 * checkout is hidden from it (a tmpfs mounted over it in a private mount namespace): it is
 * self-contained.
 *
 * Safe beside other mmp tests: a unique instance name, fixed ports only on 127.0.5.20–21 (this
 * task's range), and an afterAll that stops, removes and purges whatever a failure left.
 */
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import {
  type Testbed,
  credentialsOf,
  curl,
  markerSubject,
  startTestbed,
  waitUntil,
  workersOf,
} from '@mmp/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPackage } from './build.js';

if (process.getuid?.() !== 0) throw new Error('package.e2e.test.ts must run as root (CI does)');

const checkout = fileURLToPath(new URL('../../..', import.meta.url));
const INSTANCE = `pkg${process.pid}`;
const HOST = '127.0.5.20';
const CONF = '/etc/netscape.mmp.conf';

let bed: Testbed;
let work: string;
let deb: string;
/** What must be undone whatever failed, latest first. */
const undo: (() => Promise<unknown>)[] = [];

/** An operator's root shell: the standard PATH (not the test runner's node_modules/.bin). */
const OPERATOR_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const sh = (cmd: string, args: readonly string[], env: Record<string, string> = {}) =>
  execa(cmd, args, { reject: false, extendEnv: false, env: { PATH: OPERATOR_PATH, ...env } });

const installed = async (): Promise<boolean> =>
  (await sh('dpkg-query', ['-W', '-f=${Status}', 'mmp'])).stdout === 'install ok installed';

/** Pids of processes whose command line mentions `part`. */
function processesRunning(part: string): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(part);
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** Pids of processes running one of the package's bundles. */
const packageProcesses = (): number[] => processesRunning('/usr/lib/mmp/');

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'mmp-package-test-'));
  undo.push(() => Promise.resolve(rmSync(work, { recursive: true, force: true })));
  const built = await buildPackage({ checkout, outDir: join(work, 'out') });
  if (!built.ok) throw new Error(built.error);
  // The operator's copy, away from the checkout.
  deb = join(work, 'mmp.deb');
  copyFileSync(built.value, deb);
  bed = await startTestbed({ tls: false, stores: 2, bulkUsers: 0 });
  undo.push(() => bed.stop());
}, 600_000);

afterAll(async () => {
  // Whatever failed: the instance's proxies, its files, the package.
  const root = mmpRoot();
  for (const s of ['ImapMMP', 'PopMMP']) {
    const script = join(root, `MMP_${INSTANCE}`, s);
    if (existsSync(script)) await sh(script, ['stop']);
  }
  for (const pid of packageProcesses()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  rmSync(join(root, `MMP_${INSTANCE}`), { recursive: true, force: true });
  if (await installed()) await sh('dpkg', ['--purge', 'mmp']);
  for (const u of undo.reverse()) await u().catch(() => undefined);
}, 120_000);

/** MMPRoot as recorded (the default /opt/mmp when nothing is). */
function mmpRoot(): string {
  try {
    return /^MMPRoot='([^']*)'/m.exec(readFileSync(CONF, 'utf8'))?.[1] ?? '/opt/mmp';
  } catch {
    return '/opt/mmp';
  }
}

describe('the Debian package, as a new operator', () => {
  it('installs, sets up an instance with defaults, serves 143 and 110 as its user, logs, rotates, stops and purges without a trace', async () => {
    const hadConf = existsSync(CONF);
    const confBefore = hadConf ? readFileSync(CONF) : undefined;
    undo.push(async () => {
      if (confBefore !== undefined) writeFileSync(CONF, confBefore);
      else rmSync(CONF, { force: true });
    });
    const rootBefore = mmpRoot();
    if (!existsSync(rootBefore))
      // MMPRoot made by this test (the launchers of Table 13.6 with it): the operator's to
      // remove, and this test is the operator.
      undo.push(() => Promise.resolve(rmSync(rootBefore, { recursive: true, force: true })));
    if (await installed()) await sh('dpkg', ['--purge', 'mmp']);

    const install = await sh('dpkg', ['-i', deb]);
    expect(install.stderr).toBe('');
    expect(install.exitCode).toBe(0);
    const files = (await sh('dpkg', ['-L', 'mmp'])).stdout.split('\n').filter((f) => f !== '');
    for (const program of ['ImapProxy', 'PopProxy', 'mmp-setup'])
      expect((await sh('sh', ['-c', `command -v ${program}`])).stdout).toBe(`/usr/bin/${program}`);
    const user = (await sh('getent', ['passwd', 'mmp'])).stdout.split(':');
    expect(user[0]).toBe('mmp');
    const uid = Number(user[2]);
    const log = statSync('/var/log/mmp');
    expect([log.uid, log.mode & 0o777]).toEqual([uid, 0o750]);
    expect(readFileSync('/usr/share/doc/mmp/ImapProxy-h.txt', 'utf8')).toContain(
      'Usage: ImapProxy [install] [options]',
    );

    // The template units, as systemd reads them.
    for (const p of ['imap', 'pop3']) {
      const unit = join(work, `mmp-${p}@${INSTANCE}.service`);
      copyFileSync(`/lib/systemd/system/mmp-${p}@.service`, unit);
      const v = await sh('systemd-analyze', ['verify', unit]);
      expect(v.stderr).toBe('');
      expect(v.exitCode).toBe(0);
    }

    // mmp-setup with its defaults, but the directory and the stores.
    const answers = join(work, 'answers.yaml');
    writeFileSync(
      answers,
      [
        `instance: ${INSTANCE}`,
        'services: both',
        `LDAPHost: ${bed.ldap.host}:${bed.ldap.port}`,
        `BaseDN: ${bed.ldap.baseDn}`,
        `BindDN: ${JSON.stringify(bed.ldap.bindDn)}`,
        `BindPass: ${JSON.stringify(bed.ldap.bindPassword)}`,
        'imap:',
        `  ListenPort: ${HOST}:143`,
        `  BacksidePort: ${bed.backsidePorts.imap}`,
        'pop3:',
        `  ListenPort: ${HOST}:110`,
        `  BacksidePort: ${bed.backsidePorts.pop3}`,
        '',
      ].join('\n'),
    );
    const setup = await sh('mmp-setup', ['--answers', answers, '--yes']);
    expect(setup.stderr).toBe('');
    expect(setup.exitCode).toBe(0);
    const root = mmpRoot();
    const dir = join(root, `MMP_${INSTANCE}`);
    expect(setup.stdout).toContain(`Created instance ${INSTANCE} in ${dir}:`);
    const config = readFileSync(join(dir, 'ImapMMP.config'), 'utf8');
    expect(config).toContain("RunAsUser='mmp'");
    const logDir = `/var/log/mmp/${INSTANCE}`;
    expect(config).toContain(`LogDir='${logDir}'`);
    expect(statSync(logDir).uid).toBe(uid);
    // Table 13.6, pointing to the package's files.
    expect(readFileSync(join(root, 'bin', 'ImapProxy'), 'utf8')).toContain(
      "'/usr/lib/mmp/ImapProxy.mjs'",
    );
    expect(readFileSync(join(root, 'mmp-setup'), 'utf8')).toContain("'/usr/lib/mmp/mmp-setup.mjs'");

    const pids: number[] = [];
    for (const s of ['ImapMMP', 'PopMMP']) {
      const start = await sh(join(dir, s), ['start']);
      expect(start.stderr).toBe('');
      expect(start.exitCode).toBe(0);
      pids.push(Number(readFileSync(join(dir, `${s}.pid`), 'utf8')));
    }
    // Each primary holds its listeners as root; every process that serves clients (its
    // workers) runs as the package's user, and nothing else of the package runs.
    const workers: number[] = [];
    for (const pid of pids) {
      expect(credentialsOf(pid).uids).toEqual([0, 0, 0, 0]);
      workers.push(...(await workersOf(pid)));
    }
    for (const w of workers) expect(credentialsOf(w).uids).toEqual(Array(4).fill(uid));
    expect(packageProcesses().sort()).toEqual([...pids, ...workers].sort());
    // Each start script left its supervisor running (issue 14): the instance's own script.
    for (const s of ['ImapMMP', 'PopMMP']) {
      const sup = Number(readFileSync(join(dir, `${s}.supervisor.pid`), 'utf8'));
      expect(readFileSync(`/proc/${sup}/cmdline`, 'utf8').split('\0')).toEqual(
        expect.arrayContaining([join(dir, s), 'supervise']),
      );
    }

    const alice = bed.userOn('A');
    const bob = bed.userOn('B');
    const subject = async (url: string, u: { uid: string; password: string }): Promise<string> => {
      const r = await curl(['--user', `${u.uid}:${u.password}`, url]);
      expect(r.stderr).toBe('');
      return r.stdout.toString('utf8');
    };
    expect(await subject(`imap://${HOST}:143/INBOX;UID=1`, alice)).toContain(
      `Subject: ${markerSubject('A', alice.uid)}`,
    );
    expect(await subject(`imap://${HOST}:143/INBOX;UID=1`, bob)).toContain(
      `Subject: ${markerSubject('B', bob.uid)}`,
    );
    expect(await subject(`pop3://${HOST}:110/1`, alice)).toContain(
      `Subject: ${markerSubject('A', alice.uid)}`,
    );
    expect(await subject(`pop3://${HOST}:110/1`, bob)).toContain(
      `Subject: ${markerSubject('B', bob.uid)}`,
    );

    // The login lines, in the default log directory.
    const day = (): string[] => readdirSync(logDir).filter((f) => /^MMP_\d{8}\.log$/.test(f));
    const [file = ''] = day();
    await waitUntil('the logins in the log', () => {
      const text = readFileSync(join(logDir, file), 'utf8');
      return Promise.resolve(text.includes(alice.uid) && text.includes(bob.uid));
    });
    expect(statSync(join(logDir, file)).uid).toBe(uid);

    // logrotate moves the day's file; its postrotate makes both proxies write a new one.
    const rotate = await sh('logrotate', [
      '--force',
      '--state',
      join(work, 'logrotate.state'),
      '/etc/logrotate.d/mmp',
    ]);
    expect(rotate.stderr).toBe('');
    expect(rotate.exitCode).toBe(0);
    expect(existsSync(join(logDir, `${file}.1`))).toBe(true);
    expect(await subject(`pop3://${HOST}:110/1`, bob)).toContain(markerSubject('B', bob.uid));
    expect(await subject(`imap://${HOST}:143/INBOX;UID=1`, alice)).toContain(
      markerSubject('A', alice.uid),
    );
    await waitUntil('both proxies writing the new file', () => {
      const text = existsSync(join(logDir, file)) ? readFileSync(join(logDir, file), 'utf8') : '';
      return Promise.resolve(text.includes(alice.uid) && text.includes(bob.uid));
    });

    // A crash of the root primary, as the kernel does it: its supervisor starts it again.
    process.kill(pids[0] as number, 'SIGKILL');
    await waitUntil(
      'a new IMAP proxy serving',
      async () => {
        const now = Number(readFileSync(join(dir, 'ImapMMP.pid'), 'utf8'));
        if (now === pids[0] || !existsSync(`/proc/${now}`)) return false;
        const r = await curl([
          '--user',
          `${alice.uid}:${alice.password}`,
          `imap://${HOST}:143/INBOX;UID=1`,
        ]);
        return r.stdout.toString('utf8').includes(markerSubject('A', alice.uid));
      },
      { timeoutMs: 60_000 },
    );

    for (const s of ['ImapMMP', 'PopMMP']) {
      const stop = await sh(join(dir, s), ['stop']);
      expect(stop.exitCode).toBe(0);
    }
    expect(packageProcesses()).toEqual([]);
    // Nor a supervisor: nothing runs the instance's scripts.
    expect(processesRunning(`${dir}/`)).toEqual([]);

    // dpkg --remove would leave the operator's instance; here the operator deletes it, then
    // purges the package: nothing of it is left.
    rmSync(dir, { recursive: true });
    const purge = await sh('dpkg', ['--purge', 'mmp']);
    expect(purge.exitCode).toBe(0);
    expect(await installed()).toBe(false);
    expect(files.filter((f) => existsSync(f) && !statSync(f).isDirectory())).toEqual([]);
    expect(files.filter((f) => f.includes('mmp') && existsSync(f))).toEqual([]);
    expect((await sh('getent', ['passwd', 'mmp'])).exitCode).toBe(2);
    expect((await sh('getent', ['group', 'mmp'])).exitCode).toBe(2);
    expect(existsSync('/var/log/mmp')).toBe(false);
    expect(existsSync('/etc/logrotate.d/mmp')).toBe(false);
  });

  it('dpkg --remove leaves the operator’s instances alone', async () => {
    expect((await sh('dpkg', ['-i', deb])).exitCode).toBe(0);
    const root = join(work, 'keep');
    const env = {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      MMP_CONF_FILE: join(work, 'keep.conf'),
    };
    const answers = join(work, 'keep.yaml');
    writeFileSync(answers, `root: ${root}\ninstance: ${INSTANCE}\nLogDir: ${work}\n`);
    const setup = await sh('mmp-setup', ['--answers', answers, '--yes'], env);
    expect(setup.exitCode).toBe(0);
    const remove = await sh('dpkg', ['--remove', 'mmp']);
    expect(remove.exitCode).toBe(0);
    expect(existsSync('/usr/bin/ImapProxy')).toBe(false);
    expect(readdirSync(join(root, `MMP_${INSTANCE}`)).sort()).toEqual([
      'ImapMMP',
      'ImapMMP.config',
      `mmp-${INSTANCE}-imap.service`,
    ]);
    expect(existsSync(join(root, 'bin', 'ImapProxy'))).toBe(true);
    expect((await sh('dpkg', ['--purge', 'mmp'])).exitCode).toBe(0);
    expect(existsSync(join(root, `MMP_${INSTANCE}`, 'ImapMMP.config'))).toBe(true);
  });

  it('extracted with dpkg-deb -x, it serves a login with the checkout hidden from it', async () => {
    const x = join(work, 'extracted');
    expect((await sh('dpkg-deb', ['-x', deb, x])).exitCode).toBe(0);
    const logDir = join(work, 'xlog');
    rmSync(logDir, { recursive: true, force: true });
    // A private mount namespace in which the whole checkout is an empty tmpfs.
    const script = [
      'set -e',
      `mount -t tmpfs tmpfs '${checkout}'`,
      `test -z "$(ls -A '${checkout}')"`,
      `mkdir -p '${logDir}'`,
      `exec node --max-semi-space-size=2 '${x}/usr/lib/mmp/ImapProxy.mjs' -p ${HOST.replace('.20', '.21')}:1143 -o '${logDir}' -h ${bed.ldap.host}:${bed.ldap.port} -b '${bed.ldap.baseDn}' -c ${bed.backsidePorts.imap}`,
    ].join('\n');
    const child = execa('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], {
      reject: false,
      all: true,
      extendEnv: false,
      env: {
        PATH: process.env['PATH'] ?? '/usr/bin:/bin',
        RunAsUser: 'nobody',
        BindDN: bed.ldap.bindDn,
        BindPass: bed.ldap.bindPassword,
      },
    });
    undo.push(async () => {
      child.kill('SIGKILL');
      await child;
    });
    let out = '';
    child.all?.on('data', (d: Buffer) => (out += d.toString()));
    await waitUntil(
      'the extracted ImapProxy listening',
      () => Promise.resolve(out.includes('listening on')),
      {
        timeoutMs: 30_000,
        abort: () => (child.exitCode !== null ? `exited ${child.exitCode}: ${out}` : undefined),
      },
    );
    const alice = bed.userOn('A');
    const r = await curl([
      '--user',
      `${alice.uid}:${alice.password}`,
      `imap://${HOST.replace('.20', '.21')}:1143/INBOX;UID=1`,
    ]);
    expect(r.stdout.toString('utf8')).toContain(`Subject: ${markerSubject('A', alice.uid)}`);
    child.kill('SIGTERM');
    expect((await child).exitCode).toBe(0);
    // The checkout was there all along, outside that namespace.
    expect(existsSync(join(checkout, 'packages', 'proxy', 'dist', 'bin', 'ImapProxy.js'))).toBe(
      true,
    );
  });
});
