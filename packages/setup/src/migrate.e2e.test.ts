/**
 * End to end, as root (CI runs as root), as an operator leaving an iPlanet-era multiplexor would
 * (issue 17): its ImapProxyAService.cfg, PopProxyAService.cfg and AService.cfg, pointing at the
 * test bed's slapd behind a dead first directory (LdapUrl with two URLs), with SearchFormat and a
 * ServiceList of plain and TLS ports, are imported by the built mmp-setup with
 * `--import DIR --instance NAME --yes`; the instance's own ImapMMP and PopMMP start scripts run
 * the proxies as root, which serve as the run-as user and route users to stores A and B over
 * IMAP, IMAPS and POP3 (curl).
 *
 * Fixed ports on 127.0.10.1 (this task's loopback range); 127.0.10.9 is the dead directory.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import {
  type Testbed,
  canConnect,
  credentialsOf,
  markerSubject,
  startTestbed,
  workersOf,
} from '@mmp/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { account } from './checks.js';
import { FALLBACK_USER, PACKAGE_USER } from './dialogue.js';
import { type TempDir, tempDir } from './test-support/fixtures.js';

if (process.getuid?.() !== 0) throw new Error('migrate.e2e.test.ts must run as root (CI does)');

const here = dirname(fileURLToPath(import.meta.url));
const BIN = join(here, '..', 'dist', 'bin', 'mmp-setup.js');
const HOST = '127.0.10.1';
const DEAD_DIRECTORY = '127.0.10.9:389';
// mmp-setup's default run-as user: the package's, else nobody.
const RUN_AS = account(PACKAGE_USER) ?? account(FALLBACK_USER);

let bed: Testbed;
let tmp: TempDir;
const scripts: string[] = [];

beforeAll(async () => {
  // The executables under test, up to date (tsc -b is incremental).
  execFileSync('pnpm', ['run', 'build'], { cwd: join(here, '..') });
  execFileSync('pnpm', ['--filter', '@mmp/proxy', 'run', 'build'], { cwd: join(here, '..') });
  bed = await startTestbed({ stores: 2, bulkUsers: 4 });
  tmp = tempDir('mmp-migrate-e2e-');
  execFileSync('chmod', ['755', tmp.path]);
}, 240_000);

afterAll(async () => {
  for (const s of scripts) if (existsSync(s)) await execa(s, ['stop'], { reject: false });
  await bed?.stop();
  tmp?.cleanup();
});

/** The old host's files, as its guides print them. */
async function oldHost(dir: string): Promise<void> {
  const tls = bed.tls;
  if (tls === undefined) throw new Error('the test bed has no TLS');
  const directory = `ldap://${bed.ldap.host}:${bed.ldap.port}/${bed.ldap.baseDn}`;
  await mkdir(dir);
  await writeFile(
    join(dir, 'AService.cfg'),
    [
      '# AService.cfg (iPlanet Messaging Server 5.2 MMP): services and shared options',
      `default:ServiceList "/usr/iplanet/server5/lib/ImapProxyAService@${HOST}:143|${HOST}:993 /usr/iplanet/server5/lib/PopProxyAService@${HOST}:110|${HOST}:995"`,
      'default:LogDir /usr/iplanet/server5/msg-mmp/log',
      'default:LogLevel 5',
      `default:LdapUrl "ldap://${DEAD_DIRECTORY}/${bed.ldap.baseDn} ${directory}"`,
      `default:BindDN "${bed.ldap.bindDn}"`,
      `default:BindPass "${bed.ldap.bindPassword}"`,
      'default:NumThreads 4',
      '',
    ].join('\n'),
  );
  await writeFile(
    join(dir, 'ImapProxyAService.cfg'),
    [
      '# ImapProxyAService.cfg',
      'default:SearchFormat uid=%s',
      `default:BacksidePort ${bed.backsidePorts.imap}`,
      'default:SSLEnable yes',
      `default:SSLCertFile ${tls.certFile}`,
      `default:SSLKeyFile ${tls.keyFile}`,
      'default:SSLCertNicknames Server-Cert',
      'default:Timeout 1800',
      'default:BGMax 10000',
      '',
    ].join('\n'),
  );
  await writeFile(
    join(dir, 'PopProxyAService.cfg'),
    [
      '# PopProxyAService.cfg',
      'default:SearchFormat (uid=%U)',
      `default:BacksidePort ${bed.backsidePorts.pop3}`,
      'default:SSLEnable no',
      '',
    ].join('\n'),
  );
}

describe('an iPlanet MMP configuration imported by mmp-setup --import', () => {
  it('becomes an instance whose own start scripts serve IMAP, IMAPS and POP3 users on stores A and B', async () => {
    if (RUN_AS === undefined) throw new Error('no run-as user');
    const old = join(tmp.path, 'iplanet-config');
    await oldHost(old);
    const env = {
      MMP_CONF_FILE: join(tmp.path, 'netscape.mmp.conf'),
      MMP_LOG_ROOT: join(tmp.path, 'log'),
    };
    const root = join(tmp.path, 'mmp');
    const imported = await execa(
      process.execPath,
      [BIN, '--import', old, '--instance', 'migrated', '--root', root, '--yes'],
      { env, reject: false },
    );
    expect(imported.stderr).toBe('');
    expect(imported.exitCode).toBe(0);
    // The plan names where each value came from, and what was not carried over.
    const out = imported.stdout;
    expect(out).toMatch(/UidSearch="\(uid=%s\)"\s+ImapProxyAService\.cfg:2 \(SearchFormat\)/);
    expect(out).toMatch(
      new RegExp(
        `ListenPort="${HOST.replaceAll('.', '\\.')}:143"\\s+AService\\.cfg:2 \\(ServiceList\\)`,
      ),
    );
    expect(out).toContain('ImapProxyAService.cfg:8 Timeout (IMAP4) [changed]');
    expect(out).toContain('ImapProxyAService.cfg:9 BGMax (IMAP4) [no equivalent]');
    expect(out).toContain('AService.cfg:8 NumThreads [changed]');
    expect(out).toContain(`SSLListenPort ${HOST}:995 is recorded but not served`);
    expect(out).not.toContain(bed.ldap.bindPassword);
    const dir = join(root, 'MMP_migrated');
    expect(out).toContain(`Created instance migrated in ${dir}:`);
    const config = readFileSync(join(dir, 'ImapMMP.config'), 'utf8');
    expect(config).toContain(
      `LdapUrl='ldap://${DEAD_DIRECTORY}/${bed.ldap.baseDn} ldap://${bed.ldap.host}:${bed.ldap.port}/${bed.ldap.baseDn}'`,
    );
    const user = account(PACKAGE_USER) !== undefined ? PACKAGE_USER : FALLBACK_USER;
    expect(config).toContain(`RunAsUser='${user}'`);
    expect(config).toContain(`LogDir='${join(tmp.path, 'log', 'migrated')}'`);

    const imap = join(dir, 'ImapMMP');
    const pop = join(dir, 'PopMMP');
    scripts.push(imap, pop);
    for (const s of [imap, pop]) {
      const start = await execa(s, ['start'], { reject: false });
      expect(start.stderr).toBe('');
      expect(start.exitCode).toBe(0);
    }
    // Started as root: each primary holds its listeners as root, its workers serve as the
    // run-as user.
    for (const name of ['ImapMMP.pid', 'PopMMP.pid']) {
      const pid = Number(readFileSync(join(dir, name), 'utf8'));
      expect(credentialsOf(pid).uids).toEqual([0, 0, 0, 0]);
      for (const w of await workersOf(pid))
        expect(credentialsOf(w).uids).toEqual(Array(4).fill(RUN_AS.uid));
    }

    const alice = bed.userOn('A');
    const bob = bed.userOn('B');
    const curl = (args: readonly string[]) =>
      execa('curl', ['-sS', '--max-time', '60', ...args], { reject: false });
    // IMAP on the ServiceList's plain port; the first directory is dead, the second answers.
    const a = await curl([
      '--user',
      `${alice.uid}:${alice.password}`,
      `imap://${HOST}:143/INBOX;UID=1`,
    ]);
    expect(a.stderr).toBe('');
    expect(a.stdout).toContain(`Subject: ${markerSubject('A', alice.uid)}`);
    // IMAPS on its TLS port, with the PEM certificate the import carried over.
    const b = await curl([
      '--cacert',
      bed.tls?.caFile ?? '',
      '--resolve',
      `localhost:993:${HOST}`,
      '--user',
      `${bob.uid}:${bob.password}`,
      'imaps://localhost:993/INBOX;UID=1',
    ]);
    expect(b.stderr).toBe('');
    expect(b.stdout).toContain(`Subject: ${markerSubject('B', bob.uid)}`);
    // POP3 with its own SearchFormat.
    const p = await curl(['--user', `${bob.uid}:${bob.password}`, `pop3://${HOST}:110/1`]);
    expect(p.stderr).toBe('');
    expect(p.stdout).toContain(`Subject: ${markerSubject('B', bob.uid)}`);
    const p2 = await curl(['--user', `${alice.uid}:${alice.password}`, `pop3://${HOST}:110/1`]);
    expect(p2.stdout).toContain(`Subject: ${markerSubject('A', alice.uid)}`);

    for (const s of [imap, pop])
      expect((await execa(s, ['stop'], { reject: false })).exitCode).toBe(0);
    expect(await canConnect(HOST, 143)).toBe(false);
    expect(await canConnect(HOST, 110)).toBe(false);
  });
});
