/**
 * End to end: mmp-setup (the built executable) writes an instance pointing at the test bed's real
 * slapd and Dovecot stores, the instance's own `ImapMMP start` runs the real ImapProxy, imapflow
 * logs in through it and lands on the right store, and `ImapMMP stop` leaves nothing running;
 * an instance for both services does the same with PopMMP and a real POP3 client (curl).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { ImapFlow } from 'imapflow';
import {
  type Testbed,
  canConnect,
  findProcesses,
  freePort,
  markerSubject,
  startTestbed,
  waitUntil,
} from '@mmp/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findProxyBins } from './proxyBin.js';
import { type TempDir, tempDir } from './test-support/fixtures.js';

const here = dirname(fileURLToPath(import.meta.url));
const BIN = join(here, '..', 'dist', 'bin', 'mmp-setup.js');

let bed: Testbed;
let tmp: TempDir;
let script: string;
let port: number;
let proxyPath: string;
/** Start scripts of the both-services instance, stopped in afterAll whatever failed. */
const bothScripts: string[] = [];

/** Root drops to nobody (what an operator does); anyone else runs the proxy as themselves. */
const RUN_AS =
  process.getuid?.() === 0 ? 'nobody' : execFileSync('id', ['-un'], { encoding: 'utf8' }).trim();

beforeAll(async () => {
  // The executable under test, up to date (tsc -b is incremental).
  execFileSync('pnpm', ['run', 'build'], { cwd: join(here, '..') });
  const bins = findProxyBins();
  if (!bins.ok) throw new Error(bins.error);
  proxyPath = bins.value.bins.imap;
  if (!existsSync(proxyPath)) {
    execFileSync('pnpm', ['--filter', '@mmp/proxy', 'run', 'build'], { cwd: join(here, '..') });
  }
  bed = await startTestbed({ tls: false, stores: 2, bulkUsers: 4 });
  tmp = tempDir('mmp-setup-e2e-');
  execFileSync('chmod', ['755', tmp.path]);
  port = await freePort();
}, 180_000);

afterAll(async () => {
  // Whatever failed, stop what we started.
  for (const s of [script, ...bothScripts]) {
    if (s !== undefined && existsSync(s)) await execa(s, ['stop'], { reject: false });
  }
  await bed?.stop();
  tmp?.cleanup();
});

function cwdOf(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return undefined;
  }
}

/** Gone or a zombie (PID 1 may reap the detached proxy a moment later). */
function running(pid: number): boolean {
  try {
    return !/^State:\s*Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

async function loginMarker(uid: string, password: string): Promise<string | undefined> {
  const c = new ImapFlow({
    host: '127.0.0.1',
    port,
    secure: false,
    auth: { user: uid, pass: password },
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

describe('an instance made by mmp-setup, against the test bed', () => {
  it('setup, ImapMMP start, log in to the right store, ImapMMP stop', async () => {
    const root = join(tmp.path, 'mmp');
    const answers = join(tmp.path, 'answers.yaml');
    const logDir = join(tmp.path, 'log');
    execFileSync('install', ['-d', '-o', RUN_AS, logDir]);
    writeFileSync(
      answers,
      [
        `user: ${RUN_AS}`,
        `root: ${root}`,
        'instance: e2e',
        'services: imap',
        `LDAPHost: ${bed.ldap.host}:${bed.ldap.port}`,
        `BaseDN: ${bed.ldap.baseDn}`,
        `BindDN: ${JSON.stringify(bed.ldap.bindDn)}`,
        `BindPass: ${JSON.stringify(bed.ldap.bindPassword)}`,
        `ListenPort: 127.0.0.1:${port}`,
        `BacksidePort: ${bed.backsidePorts.imap}`,
        'LogLevel: 5',
        // What the operator does: a log directory the proxy's user can write.
        `LogDir: ${logDir}`,
        '',
      ].join('\n'),
    );
    const setup = await execa(process.execPath, [BIN, '--answers', answers, '--yes'], {
      env: { MMP_CONF_FILE: join(tmp.path, 'netscape.mmp.conf') },
      reject: false,
    });
    expect(setup.stderr).toBe('');
    expect(setup.exitCode).toBe(0);
    script = join(root, 'MMP_e2e', 'ImapMMP');
    expect(setup.stdout).toContain(`start:   ${script} start`);
    // The script runs the proxy the setup found, with the node that ran the setup.
    const text = readFileSync(script, 'utf8');
    expect(text).toContain(`MMP_PROXY='${proxyPath}'`);
    expect(text).toContain(`MMP_NODE='${process.execPath}'`);

    expect((await execa(script, ['status'], { reject: false })).exitCode).toBe(3);
    const start = await execa(script, ['start'], { reject: false });
    expect(start.stderr).toBe('');
    expect(start.exitCode).toBe(0);
    expect(start.stdout).toMatch(/^ImapMMP \(e2e\): started \(pid \d+\)$/);
    const pid = Number(readFileSync(join(root, 'MMP_e2e', 'ImapMMP.pid'), 'utf8'));
    await waitUntil('the proxy listening', () => canConnect('127.0.0.1', port));

    const alice = bed.userOn('A');
    const bob = bed.userOn('B');
    expect(await loginMarker(alice.uid, alice.password)).toBe(markerSubject('A', alice.uid));
    expect(await loginMarker(bob.uid, bob.password)).toBe(markerSubject('B', bob.uid));

    // It runs as the chosen user.
    const uid = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^Uid:\s+(\d+)/m)?.[1];
    const expected = execFileSync('id', ['-u', RUN_AS], { encoding: 'utf8' }).trim();
    expect(uid).toBe(expected);
    expect((await execa(script, ['status'], { reject: false })).exitCode).toBe(0);

    // The proxy logged the logins in its LogDir.
    const logs = readdirSync(logDir).filter((f) => /^MMP_\d{8}\.log$/.test(f));
    expect(logs.length).toBe(1);

    const stop = await execa(script, ['stop'], { reject: false });
    expect(stop.exitCode).toBe(0);
    expect(stop.stdout).toBe('ImapMMP (e2e): stopped');
    // No proxy left running in this instance (other tests may run their own ImapProxy).
    expect(findProcesses(proxyPath).filter((p) => cwdOf(p.pid) === dirname(script))).toEqual([]);
    expect(running(pid)).toBe(false);
    expect(await canConnect('127.0.0.1', port)).toBe(false);
    expect((await execa(script, ['status'], { reject: false })).exitCode).toBe(3);
  });
  it('both services: ImapMMP and PopMMP start, IMAP and POP3 logins reach the right stores, both stop', async () => {
    const root = join(tmp.path, 'mmp-both');
    const answers = join(tmp.path, 'answers-both.yaml');
    const logDir = join(tmp.path, 'log-both');
    execFileSync('install', ['-d', '-o', RUN_AS, logDir]);
    const imapPort = await freePort();
    const pop3Port = await freePort();
    writeFileSync(
      answers,
      [
        `user: ${RUN_AS}`,
        `root: ${root}`,
        'instance: both',
        'services: both',
        `LDAPHost: ${bed.ldap.host}:${bed.ldap.port}`,
        `BaseDN: ${bed.ldap.baseDn}`,
        `BindDN: ${JSON.stringify(bed.ldap.bindDn)}`,
        `BindPass: ${JSON.stringify(bed.ldap.bindPassword)}`,
        `LogDir: ${logDir}`,
        'imap:',
        `  ListenPort: 127.0.0.1:${imapPort}`,
        `  BacksidePort: ${bed.backsidePorts.imap}`,
        'pop3:',
        `  ListenPort: 127.0.0.1:${pop3Port}`,
        `  BacksidePort: ${bed.backsidePorts.pop3}`,
        '',
      ].join('\n'),
    );
    const setup = await execa(process.execPath, [BIN, '--answers', answers, '--yes'], {
      env: { MMP_CONF_FILE: join(tmp.path, 'netscape-both.mmp.conf') },
      reject: false,
    });
    expect(setup.stderr).toBe('');
    expect(setup.exitCode).toBe(0);
    const imapScript = join(root, 'MMP_both', 'ImapMMP');
    const popScript = join(root, 'MMP_both', 'PopMMP');
    bothScripts.push(imapScript, popScript);
    for (const s of [imapScript, popScript]) {
      const start = await execa(s, ['start'], { reject: false });
      expect(start.stderr).toBe('');
      expect(start.exitCode).toBe(0);
    }
    await waitUntil('ImapProxy listening', () => canConnect('127.0.0.1', imapPort));
    await waitUntil('PopProxy listening', () => canConnect('127.0.0.1', pop3Port));

    const alice = bed.userOn('A');
    const bob = bed.userOn('B');
    // A POP3 client we did not write: curl RETR of message 1, the store's marker message.
    const retr = await execa('curl', [
      '-s',
      '--user',
      `${bob.uid}:${bob.password}`,
      `pop3://127.0.0.1:${pop3Port}/1`,
    ]);
    expect(retr.stdout).toContain(`Subject: ${markerSubject('B', bob.uid)}`);
    const imapLogin = new ImapFlow({
      host: '127.0.0.1',
      port: imapPort,
      secure: false,
      auth: { user: alice.uid, pass: alice.password },
      logger: false,
      disableAutoIdle: true,
    });
    await imapLogin.connect();
    try {
      await imapLogin.mailboxOpen('INBOX');
      const msg = await imapLogin.fetchOne('1', { envelope: true });
      expect(msg ? msg.envelope?.subject : undefined).toBe(markerSubject('A', alice.uid));
    } finally {
      await imapLogin.logout();
    }

    for (const [s, name] of [
      [imapScript, 'ImapMMP'],
      [popScript, 'PopMMP'],
    ] as const) {
      const stop = await execa(s, ['stop'], { reject: false });
      expect(stop.exitCode).toBe(0);
      expect(stop.stdout).toBe(`${name} (both): stopped`);
      expect((await execa(s, ['status'], { reject: false })).exitCode).toBe(3);
    }
    expect(await canConnect('127.0.0.1', imapPort)).toBe(false);
    expect(await canConnect('127.0.0.1', pop3Port)).toBe(false);
  });
});
