/**
 * The real, built `mmp-setup` executable in a pseudo-terminal (Python's pty module), answered
 * prompt by prompt as they appear on the screen; and the executable's signal handling.
 */
import { execFileSync, spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  openSync,
  readFileSync,
  readdirSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { parseConfigFile } from '@mmp/config';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FALLBACK_USER, PACKAGE_USER } from './dialogue.js';
import { userExists } from './instances.js';
import { type TempDir, tempDir } from './test-support/fixtures.js';

// The package's user when it is installed on this machine, else nobody (dialogue.ts).
const MACHINE_DEFAULT_USER = userExists(PACKAGE_USER) ? PACKAGE_USER : FALLBACK_USER;
const here = dirname(fileURLToPath(import.meta.url));
const BIN = join(here, '..', 'dist', 'bin', 'mmp-setup.js');
const DRIVER = join(here, 'test-support', 'pty-driver.py');

let tmp: TempDir;
beforeAll(() => {
  // The test runs what an operator runs: the build output, brought up to date here (tsc -b is
  // incremental) so that running vitest alone never tests a stale build.
  execFileSync('pnpm', ['run', 'build'], { cwd: join(here, '..') });
});
beforeEach(() => {
  tmp = tempDir();
});
afterEach(() => tmp.cleanup());

interface Step {
  expect: string;
  send: string;
}
const ENTER = '\r';
const BACKSPACE = '\x7f';
/** A question answered with Enter (its default). */
const enter = (text: string): Step => ({ expect: q(text), send: ENTER });
/** A literal question text as a regular expression. */
const q = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

async function drive(
  steps: Step[],
  args: string[] = [],
): Promise<{ code: number; screen: string; stderr: string }> {
  const script = join(tmp.path, 'steps.json');
  writeFileSync(script, JSON.stringify(steps));
  const r = await execa('python3', [DRIVER, script, '--', process.execPath, BIN, ...args], {
    cwd: tmp.path,
    env: {
      MMP_CONF_FILE: join(tmp.path, 'netscape.mmp.conf'),
      MMP_LOG_ROOT: join(tmp.path, 'log'),
      TERM: 'xterm',
    },
    reject: false,
    timeout: 120_000,
  });
  return { code: r.exitCode ?? -1, screen: r.stdout, stderr: r.stderr };
}

describe('mmp-setup in a terminal', () => {
  it('creates an IMAP and POP3 instance answering each prompt as it appears', async () => {
    const root = join(tmp.path, 'mmp');
    // Every question of the dialogue, in order: inquirer waits at each one.
    const steps: Step[] = [
      {
        expect: q(`What user should the MMP run as: (${MACHINE_DEFAULT_USER})`),
        send: `nsmmp${ENTER}`,
      },
      { expect: q('Installation directory (MMPRoot): (/opt/mmp)'), send: `${root}${ENTER}` },
      { expect: q('Name of the new instance:'), send: `tty1${ENTER}` },
      { expect: q('Enter 1, 2 or 3: (1)'), send: `3${ENTER}` },
      { expect: q('LDAP Host: (localhost:389)'), send: `ldap.example.com${ENTER}` },
      { expect: q('Base DN: (o=mcom.com)'), send: `o=example.com${ENTER}` },
      enter(`IMAP4 MMP LogDir: (${tmp.path}/log/tty1)`),
      enter(`POP3 MMP LogDir: (${tmp.path}/log/tty1)`),
      enter('Log Level: (1)'),
      {
        expect: q('Should the MMP bind to LDAP as someone in particular (y/n): (n)'),
        send: `y${ENTER}`,
      },
      {
        expect: q('What user should the MMP authenticate as:'),
        send: `cn=Directory Manager${ENTER}`,
      },
      { expect: q('What\'s the password for "BindDN":'), send: `tty secret${ENTER}` },
      enter('Number of Threads: (0)'),
      {
        expect: q('(IMAP4) Should the MMP listen on a non-default port (y/n): (n)'),
        send: `y${ENTER}`,
      },
      { expect: q('(IMAP4) Which port: (143)'), send: `14x${ENTER}` },
      // Refused on screen; erase and type again, as a person would.
      {
        expect: q("ListenPort: expected [IP:]port with port 1–65535, got '14x'"),
        send: `${BACKSPACE.repeat(3)}1143${ENTER}`,
      },
      {
        expect: q('(POP3) Should the MMP listen on a non-default port (y/n): (n)'),
        send: `y${ENTER}`,
      },
      { expect: q('(POP3) Which port: (110)'), send: `1110${ENTER}` },
      enter('Do your main IMAP4 servers listen on non-default ports (y/n): (n)'),
      enter('Do your main POP3 servers listen on non-default ports (y/n): (n)'),
      enter('Should the MMP connect to your main IMAP4 servers with SSL (y/n): (n)'),
      enter('Should the MMP connect to your main POP3 servers with SSL (y/n): (n)'),
      enter("Would you like to override the IMAP4 MMP's CAPABILITY response (y/n): (n)"),
      enter("Would you like to override the MMP's banner (y/n): (n)"),
      enter("Would you like to override the MMP's LDAP search string (y/n): (n)"),
      enter('Would you like MMP to use a particular attribute for auth replay (y/n): (n)'),
      enter('Would you like the MMP to use a non-default attribute for the mailhost? (y/n): (n)'),
      enter('Should the MMP pre-authenticate users by binding to LDAP as them (y/n): (n)'),
      enter('Do your stores accept OAuth2 bearer tokens (Dovecot: an oauth2 passdb) (y/n): (n)'),
      enter('Should this MMP do virtual domain mapping(y/n): (n)'),
      enter('Do you want to specify a list of virtual domain delimiters? (y/n) (n)'),
      enter('Do you want to specify a canonical virtual domain delimiter? (y/n) (n)'),
      enter('Would you like to provide a "spoof" message for POP3 (y/n): (n)'),
      enter('(IMAP4) Would you like to override the Server Down Alert for the MMP? (y/n) (n)'),
      enter('(POP3) Would you like to override the Server Down Alert for the MMP? (y/n) (n)'),
      enter('Should the IMAP4 MMP do SSL (y/n): (n)'),
      enter('Should the POP3 MMP do SSL (y/n): (n)'),
      enter('Is this information correct (y/n): (y)'),
    ];
    const r = await drive(steps);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.screen).toContain('BindPass=******');
    expect(r.screen).not.toContain('tty secret');
    expect(r.screen).toContain(`Created instance tty1 in ${root}/MMP_tty1:`);
    expect(r.screen).toContain(`start:   ${root}/MMP_tty1/ImapMMP start`);

    const dir = join(root, 'MMP_tty1');
    expect(readdirSync(dir).sort()).toEqual([
      'ImapMMP',
      'ImapMMP.config',
      'PopMMP',
      'PopMMP.config',
      'mmp-tty1-imap.service',
      'mmp-tty1-pop3.service',
    ]);
    const imap = parseConfigFile(
      readFileSync(join(dir, 'ImapMMP.config'), 'utf8'),
      'ImapMMP.config',
    );
    expect(imap.ok).toBe(true);
    if (!imap.ok) return;
    expect(Object.fromEntries([...imap.value].map(([k, v]) => [k, v.raw]))).toEqual({
      LDAPHost: 'ldap.example.com',
      BaseDN: 'o=example.com',
      LogDir: `${tmp.path}/log/tty1`,
      LogLevel: '1',
      BindDN: 'cn=Directory Manager',
      BindPass: 'tty secret',
      NumThreads: '0',
      ListenPort: '1143',
      PreAuth: 'no',
      SSLEnable: 'no',
      RunAsUser: 'nsmmp',
    });
    expect(readFileSync(join(dir, 'PopMMP.config'), 'utf8')).toContain("ListenPort='1110'");
    expect(readFileSync(join(tmp.path, 'netscape.mmp.conf'), 'utf8')).toContain(
      `MMPRoot='${root}'`,
    );
    // The start script runs MMPRoot's launcher on the file, which names the user.
    expect(readFileSync(join(dir, 'ImapMMP'), 'utf8')).toContain(
      `MMP_PROXY='${root}/bin/ImapProxy'`,
    );
  });

  it('Ctrl-C at a prompt stops with 130 and writes nothing', async () => {
    const r = await drive([
      { expect: q('What user should the MMP run as:'), send: ENTER },
      { expect: q('Installation directory (MMPRoot):'), send: `${join(tmp.path, 'mmp')}${ENTER}` },
      { expect: q('Name of the new instance:'), send: '\x03' },
    ]);
    expect(r.code).toBe(130);
    expect(r.screen).toContain('mmp-setup: interrupted; nothing was written');
    expect(existsSync(join(tmp.path, 'mmp'))).toBe(false);
    expect(existsSync(join(tmp.path, 'netscape.mmp.conf'))).toBe(false);
  });

  it('--modify in a terminal shows the current values and changes only what is typed', async () => {
    const root = join(tmp.path, 'mmp');
    writeFileSync(
      join(tmp.path, 'a.yaml'),
      `root: ${root}\ninstance: m\nservices: imap\nuser: nobody\nBaseDN: o=before\nListenPort: 2143\n`,
    );
    const created = await execa(process.execPath, [BIN, '--answers', 'a.yaml', '--yes'], {
      cwd: tmp.path,
      env: {
        MMP_CONF_FILE: join(tmp.path, 'netscape.mmp.conf'),
        MMP_LOG_ROOT: join(tmp.path, 'log'),
      },
      reject: false,
    });
    expect(created.exitCode).toBe(0);
    const before = readFileSync(join(root, 'MMP_m', 'ImapMMP.config'), 'utf8');
    const r = await drive(
      [
        enter('What user should the MMP run as: (nobody)'),
        enter('Enter 1, 2 or 3: (1)'),
        enter('LDAP Host: (localhost:389)'),
        { expect: q('Base DN: (o=before)'), send: `o=after${ENTER}` },
        enter(`IMAP4 MMP LogDir: (${tmp.path}/log/m)`),
        enter('Log Level: (1)'),
        enter('Should the MMP bind to LDAP as someone in particular (y/n): (n)'),
        enter('Number of Threads: (0)'),
        enter('Should the MMP listen on a non-default port (y/n): (y)'),
        enter('Which port: (2143)'),
        enter('Do your main IMAP4 servers listen on non-default ports (y/n): (n)'),
        enter('Should the MMP connect to your main IMAP4 servers with SSL (y/n): (n)'),
        enter("Would you like to override the IMAP4 MMP's CAPABILITY response (y/n): (n)"),
        enter("Would you like to override the MMP's banner (y/n): (n)"),
        enter("Would you like to override the MMP's LDAP search string (y/n): (n)"),
        enter('Would you like MMP to use a particular attribute for auth replay (y/n): (n)'),
        enter('Would you like the MMP to use a non-default attribute for the mailhost? (y/n): (n)'),
        enter('Should the MMP pre-authenticate users by binding to LDAP as them (y/n): (n)'),
        enter('Do your stores accept OAuth2 bearer tokens (Dovecot: an oauth2 passdb) (y/n): (n)'),
        enter('Do your stores accept OAuth2 bearer tokens (Dovecot: an oauth2 passdb) (y/n): (n)'),
        enter('Should this MMP do virtual domain mapping(y/n): (n)'),
        enter('Do you want to specify a list of virtual domain delimiters? (y/n) (n)'),
        enter('Do you want to specify a canonical virtual domain delimiter? (y/n) (n)'),
        enter('Would you like to override the Server Down Alert for the MMP? (y/n) (n)'),
        enter('Should the IMAP4 MMP do SSL (y/n): (n)'),
        enter('Is this information correct (y/n): (y)'),
      ],
      ['--modify', 'm'],
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const after = readFileSync(join(root, 'MMP_m', 'ImapMMP.config'), 'utf8');
    expect(after).toBe(before.replace("BaseDN='o=before'", "BaseDN='o=after'"));
  });
});

describe('the questions of issue 17 in a terminal', () => {
  it('SSLBacksidePort, PreAuth and certificate login after SSL, the StoreAdmin password unseen; n to the bind writes LDAPAuth=no', async () => {
    const root = join(tmp.path, 'mmp');
    const pki = (f: string): string => join(tmp.path, f);
    for (const f of ['server.pem', 'server.key', 'certmap.conf', 'client-ca.pem'])
      writeFileSync(pki(f), 'x');
    const r = await drive([
      enter(`What user should the MMP run as: (${MACHINE_DEFAULT_USER})`),
      { expect: q('Installation directory (MMPRoot): (/opt/mmp)'), send: `${root}${ENTER}` },
      { expect: q('Name of the new instance:'), send: `certs${ENTER}` },
      enter('Enter 1, 2 or 3: (1)'),
      enter('LDAP Host: (localhost:389)'),
      enter('Base DN: (o=mcom.com)'),
      enter(`IMAP4 MMP LogDir: (${tmp.path}/log/certs)`),
      enter('Log Level: (1)'),
      enter('Should the MMP bind to LDAP as someone in particular (y/n): (n)'),
      enter('Number of Threads: (0)'),
      enter('Should the MMP listen on a non-default port (y/n): (n)'),
      enter('Do your main IMAP4 servers listen on non-default ports (y/n): (n)'),
      {
        expect: q('Should the MMP connect to your main IMAP4 servers with SSL (y/n): (n)'),
        send: `y${ENTER}`,
      },
      { expect: q('Which SSL port:'), send: `993${ENTER}` },
      enter("Would you like to override the IMAP4 MMP's CAPABILITY response (y/n): (n)"),
      enter("Would you like to override the MMP's banner (y/n): (n)"),
      enter("Would you like to override the MMP's LDAP search string (y/n): (n)"),
      enter('Would you like MMP to use a particular attribute for auth replay (y/n): (n)'),
      enter('Would you like the MMP to use a non-default attribute for the mailhost? (y/n): (n)'),
      {
        expect: q('Should the MMP pre-authenticate users by binding to LDAP as them (y/n): (n)'),
        send: `y${ENTER}`,
      },
      enter('Do your stores accept OAuth2 bearer tokens (Dovecot: an oauth2 passdb) (y/n): (n)'),
      enter('Should this MMP do virtual domain mapping(y/n): (n)'),
      enter('Do you want to specify a list of virtual domain delimiters? (y/n) (n)'),
      enter('Do you want to specify a canonical virtual domain delimiter? (y/n) (n)'),
      enter('Would you like to override the Server Down Alert for the MMP? (y/n) (n)'),
      { expect: q('Should the IMAP4 MMP do SSL (y/n): (n)'), send: `y${ENTER}` },
      enter('Should the MMP listen for SSL on a non-default port (y/n) (n)'),
      { expect: q('server certificate file (PEM)'), send: `${pki('server.pem')}${ENTER}` },
      { expect: q('private key file (PEM)'), send: `${pki('server.key')}${ENTER}` },
      enter("Please type in the private key's password (empty if none), and hit return:"),
      enter('Please type in the list of ciphers (colon-separated, or all), and hit return: (all)'),
      enter('Should the MMP offer STARTTLS (STLS for POP3) on its plain port (y/n): (y)'),
      {
        expect: q('Should the MMP accept certificate-based client authentication (y/n): (n)'),
        send: `y${ENTER}`,
      },
      // The default certmap.conf is in the directory mmp-setup runs in: here it exists.
      enter('Please type in the location of the certmap.conf file, and hit return: (certmap.conf)'),
      {
        expect: q('that issues client certificates, and hit return:'),
        send: `${pki('client-ca.pem')}${ENTER}`,
      },
      {
        expect: q('What store administrator should the MMP log in to the stores as:'),
        send: `mmpstore${ENTER}`,
      },
      { expect: q('What\'s the password for "StoreAdmin":'), send: `tty master${ENTER}` },
      enter('Should the MMP require a client certificate'),
      enter('Is this information correct (y/n): (y)'),
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.screen).not.toContain('tty master');
    expect(r.screen).toContain('StoreAdminPass=******');
    const imap = parseConfigFile(
      readFileSync(join(root, 'MMP_certs', 'ImapMMP.config'), 'utf8'),
      'ImapMMP.config',
    );
    if (!imap.ok) throw new Error(JSON.stringify(imap.error));
    expect(Object.fromEntries([...imap.value].map(([k, v]) => [k, v.raw]))).toMatchObject({
      LDAPAuth: 'no',
      SSLBacksidePort: '993',
      PreAuth: 'yes',
      SSLEnable: 'yes',
      CertMapFile: pki('certmap.conf'),
      SSLClientCAFile: pki('client-ca.pem'),
      StoreAdmin: 'mmpstore',
      StoreAdminPass: 'tty master',
    });
  });
});

describe('mmp-setup and signals', () => {
  it('SIGINT while it is working rolls back and exits 130', async () => {
    const root = join(tmp.path, 'mmp');
    // The answers file is a FIFO: mmp-setup blocks reading it, the SIGINT arrives, then the
    // answers do. The abort is seen at the first step of writing.
    const fifo = join(tmp.path, 'answers.yaml');
    execFileSync('mkfifo', [fifo]);
    const child = spawn(process.execPath, [BIN, '--answers', fifo, '--yes'], {
      cwd: tmp.path,
      env: {
        ...process.env,
        MMP_CONF_FILE: join(tmp.path, 'netscape.mmp.conf'),
        MMP_LOG_ROOT: join(tmp.path, 'log'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
    // Wait until mmp-setup is blocked opening the FIFO (it installs its signal handlers before it
    // reads the answers), rather than guessing how long node takes to start on a loaded machine.
    const waitsForFifo = (): boolean => {
      try {
        return readFileSync(`/proc/${child.pid}/wchan`, 'utf8') === 'wait_for_partner';
      } catch {
        return false;
      }
    };
    // Past the deadline, fail rather than go on: a SIGINT before the open, then the answers
    // written before mmp-setup opens the FIFO, would leave it blocked there for good.
    const deadline = Date.now() + 90_000;
    while (!waitsForFifo()) {
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`mmp-setup never blocked on the answers FIFO: ${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill('SIGINT');
    // Opened read-write, which never blocks on Linux: if the child were gone, a write-only open
    // of the FIFO would hang the whole test worker instead of failing this test.
    const fd = openSync(fifo, 'r+');
    writeSync(fd, `root: ${root}\ninstance: sig\nLogDir: /tmp\n`);
    closeSync(fd);
    expect(await exited).toBe(130);
    expect(stderr).toBe('mmp-setup: interrupted; nothing was changed\n');
    expect(existsSync(root)).toBe(false);
    expect(readdirSync(tmp.path)).toEqual(['answers.yaml']);
  }, 120_000);
});
