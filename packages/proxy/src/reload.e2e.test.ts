/**
 * Issue 15 points 4 and 5 on the built ImapProxy, started as root with RunAsUser=nobody (the root
 * primary and its unprivileged worker), its config file and key root-only (0600): SIGHUP re-reads
 * everything (certificates checked with `openssl s_client`, UidSearch, LDAPHost) while a session
 * piped before keeps working byte for byte; a broken configuration changes nothing and says why
 * in one record; SIGQUIT drains; SIGUSR2 hands the listeners to a new process under a steady
 * login load without losing a session or refusing a login.
 *
 * Fixed ports on 127.0.6.0/24 (this task's loopback range).
 */

import { chmod, chown, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type ResultPromise, execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from './test-support/tempDirs.js';
import { type Testbed, childrenOf, credentialsOf, startTestbed, waitUntil } from '@mmp/testbed';
import { lookupAccount } from './privileges.js';
import { IMAP_PROXY } from './test-support/proxyProcess.js';
import { RawClient } from './test-support/rawClient.js';
import { selfSignedCertificate } from './test-support/selfSigned.js';

if (process.getuid?.() !== 0) throw new Error('reload.e2e.test.ts must run as root (CI does)');
const NOBODY = lookupAccount('nobody');
if (NOBODY === undefined) throw new Error('no user nobody on this machine');

let bed: Testbed;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  bed = await startTestbed({ tls: false, bulkUsers: 0 });
}, 180_000);

afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  await bed?.stop();
});

interface Proxy {
  child: ResultPromise<{ reject: false; all: true; buffer: true }>;
  pid: number;
  dir: string;
  config: string;
  host: string;
  output(): string;
  logs(): Promise<string>;
  /** Write the config file again with these parameters over the first ones (0600, root). */
  rewrite(changes: Record<string, string>): Promise<void>;
}

function configText(values: Record<string, string>): string {
  return Object.entries(values)
    .map(([k, v]) => `${k}='${v}'\nexport ${k}\n`)
    .join('');
}

/** Root-only files in a directory of their own: the config file, and a certificate and key. */
async function startProxy(host: string, extra: Record<string, string> = {}): Promise<Proxy> {
  const dir = await tempDir('mmp-reload-');
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const logDir = join(dir, 'log');
  await execa('mkdir', ['-m', '0700', logDir]);
  await chown(logDir, NOBODY?.uid ?? 0, NOBODY?.gid ?? 0);
  await certificate(dir, 'old');
  const config = join(dir, 'ImapMMP.config');
  const base: Record<string, string> = {
    ListenPort: `${host}:143`,
    LogDir: logDir,
    LogFormat: 'json',
    RunAsUser: 'nobody',
    LDAPHost: bed.ldapHost,
    BaseDN: bed.ldap.baseDn,
    BindDN: bed.ldap.bindDn,
    BindPass: bed.ldap.bindPassword,
    BacksidePort: String(bed.backsidePorts.imap),
    SSLEnable: 'yes',
    SSLListenPort: `${host}:993`,
    SSLCertFile: join(dir, 'cert.pem'),
    SSLKeyFile: join(dir, 'key.pem'),
    ...extra,
  };
  const rewrite = async (changes: Record<string, string>): Promise<void> => {
    await writeFile(config, configText({ ...base, ...changes }), { mode: 0o600 });
    await chmod(config, 0o600);
  };
  await rewrite({});
  const child = execa('node', [IMAP_PROXY, '-f', config], {
    reject: false,
    all: true,
    buffer: true,
    extendEnv: false,
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' },
  });
  let out = '';
  child.all.on('data', (d: Buffer) => (out += d.toString()));
  cleanups.push(async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  await waitUntil('the proxy listening', () => Promise.resolve(out.includes('listening on')), {
    timeoutMs: 20_000,
  }).catch(() => {
    throw new Error(`ImapProxy did not start: ${out}`);
  });
  return {
    child,
    pid: child.pid ?? 0,
    dir,
    config,
    host,
    output: () => out,
    async logs() {
      const files = (await readdir(logDir)).filter((f) => f.endsWith('.log'));
      return (await Promise.all(files.map((f) => readFile(join(logDir, f), 'utf8')))).join('');
    },
    rewrite,
  };
}

/** A new key and certificate (CN=NAME.mmp.test) in place of the old files, root-only. */
async function certificate(dir: string, name: string): Promise<void> {
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  await selfSignedCertificate({ keyFile, certFile, subject: `/CN=${name}.mmp.test` });
  await chmod(keyFile, 0o600);
  await chmod(certFile, 0o600);
}

/** The subject of the certificate a new TLS handshake on host:993 presents. */
async function presented(host: string): Promise<string> {
  const r = await execa('openssl', ['s_client', '-connect', `${host}:993`, '-brief'], {
    input: '',
    reject: false,
    all: true,
  });
  return /CN ?= ?([\w.-]+)/.exec(r.all)?.[1] ?? r.all;
}

/** Log in and stay: the session is a pipe to the store from then on. */
async function piped(host: string, uid = 'alice'): Promise<RawClient> {
  const c = await RawClient.open(143, host);
  await c.line();
  const u = bed.user(uid);
  c.send(`a LOGIN ${u.uid} ${u.password}\r\n`);
  expect((await c.until('a')).at(-1)).toMatch(/^a OK/);
  c.send('s SELECT INBOX\r\n');
  expect((await c.until('s')).at(-1)).toMatch(/^s OK/);
  return c;
}

/** The first message, whole, as the store sends it. */
async function fetchFirst(c: RawClient, tag: string): Promise<string> {
  c.send(`${tag} FETCH 1 BODY.PEEK[]\r\n`);
  const lines = await c.until(tag);
  expect(lines.at(-1)).toMatch(new RegExp(`^${tag} OK`));
  return lines.slice(0, -1).join('\r\n');
}

/** One login from a new connection: the tagged answer, or why there was none. */
async function loginOnce(host: string, user: string, password: string): Promise<string> {
  let c: RawClient;
  try {
    c = await RawClient.open(143, host);
  } catch (e) {
    return `refused: ${(e as Error).message}`;
  }
  try {
    const greeting = await c.line();
    if (greeting === undefined) return 'closed before the greeting';
    c.send(`a LOGIN ${user} ${password}\r\na2 LOGOUT\r\n`);
    return (await c.until('a')).at(-1) ?? 'closed';
  } finally {
    c.close();
  }
}

const records = (logs: string, msg: string): Record<string, unknown>[] =>
  logs
    .split('\n')
    .filter((l) => l.includes(`"${msg}"`))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

async function stopped(p: Proxy): Promise<number | undefined> {
  p.child.kill('SIGTERM');
  return (await p.child).exitCode;
}

describe('SIGHUP re-reads everything', () => {
  it('a replaced certificate is presented to new handshakes; a session piped before goes on byte for byte; the root primary read the 0600 files', async () => {
    const p = await startProxy('127.0.6.10');
    // Every process serving clients is nobody's; the primary, which re-reads, is root.
    expect(credentialsOf(p.pid).uids).toEqual([0, 0, 0, 0]);
    const workers = childrenOf(p.pid);
    expect(workers).toHaveLength(1);
    for (const w of workers) expect(credentialsOf(w).uids).toEqual(Array(4).fill(NOBODY.uid));

    expect(await presented(p.host)).toBe('old.mmp.test');
    const c = await piped(p.host);
    const before = await fetchFirst(c, 'f1');
    expect(before).toContain('Welcome to store A, alice');

    await certificate(p.dir, 'new');
    process.kill(p.pid, 'SIGHUP');
    await waitUntil('the reload', () =>
      Promise.resolve(p.output().includes('SIGHUP: configuration reloaded')),
    );
    expect(await presented(p.host)).toBe('new.mmp.test');
    expect(await fetchFirst(c, 'f2')).toBe(before);
    c.send('z LOGOUT\r\n');
    await c.closed;
    expect(await stopped(p)).toBe(0);
  });

  it('a changed UidSearch and a changed LDAPHost serve new logins; the piped session is untouched', async () => {
    // UidAttr: the store knows alice by her uid, however she typed her name.
    const p = await startProxy('127.0.6.11', { UidSearch: '(uid=%s)', UidAttr: 'uid' });
    const alice = bed.user('alice');
    const first = await loginOnce(p.host, 'alice', alice.password);
    if (!first.startsWith('a OK')) console.log(await p.logs());
    expect(first).toMatch(/^a OK/);
    const c = await piped(p.host);
    const before = await fetchFirst(c, 'f1');

    // UidSearch: now the whole address is the login name.
    await p.rewrite({ UidSearch: '(mail=%o)', UidAttr: 'uid' });
    process.kill(p.pid, 'SIGHUP');
    await waitUntil('the first reload', async () =>
      (await p.logs()).includes('"configuration reloaded"'),
    );
    expect(await loginOnce(p.host, alice.mail, alice.password)).toMatch(/^a OK/);
    expect(await loginOnce(p.host, 'alice', alice.password)).toMatch(/^a NO/);
    expect(await fetchFirst(c, 'f2')).toBe(before);

    // LDAPHost: a host where no directory listens; new logins cannot find anyone.
    await p.rewrite({
      UidSearch: '(mail=%o)',
      UidAttr: 'uid',
      LDAPHost: `${bed.deadHosts[0] ?? '127.0.0.9'}:389`,
    });
    process.kill(p.pid, 'SIGHUP');
    await waitUntil(
      'the second reload',
      async () => (await p.logs()).split('"configuration reloaded"').length === 3,
    );
    expect(await loginOnce(p.host, alice.mail, alice.password)).toMatch(/^a NO/);
    expect(await fetchFirst(c, 'f3')).toBe(before);
    c.send('z LOGOUT\r\n');
    await c.closed;
    expect(await stopped(p)).toBe(0);
  });

  it('a broken configuration changes nothing and says why in one record; a new ListenPort needs a restart', async () => {
    const p = await startProxy('127.0.6.12', { UidAttr: 'uid' });
    const alice = bed.user('alice');
    await p.rewrite({ SSLCertFile: join(p.dir, 'missing.pem'), UidSearch: '(nope=%s)' });
    process.kill(p.pid, 'SIGHUP');
    await waitUntil('the refusal', () =>
      Promise.resolve(p.output().includes('configuration refused')),
    );
    await waitUntil('the refusal in the log', async () =>
      (await p.logs()).includes('configuration refused, keeping the running one'),
    );
    const refused = records(await p.logs(), 'configuration refused, keeping the running one');
    expect(refused).toHaveLength(1);
    expect(String(refused[0]?.['problems'])).toContain('missing.pem');
    expect(await presented(p.host)).toBe('old.mmp.test');
    expect(await loginOnce(p.host, 'alice', alice.password)).toMatch(/^a OK/);

    await p.rewrite({ ListenPort: `${p.host}:1143`, UidSearch: '(mail=%o)', UidAttr: 'uid' });
    process.kill(p.pid, 'SIGHUP');
    await waitUntil('the reload', () =>
      Promise.resolve(p.output().includes('ListenPort changed and need a restart')),
    );
    expect(await loginOnce(p.host, alice.mail, alice.password)).toMatch(/^a OK/);
    expect(await stopped(p)).toBe(0);
  });
});

describe('drain and hand-over', () => {
  it('a vdmap address added by SIGHUP is served on port 143 through the worker (the root primary binds it and accepts nothing); removed, nothing listens there', async () => {
    const dir = await tempDir('mmp-reload-vd-');
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const vdmap = join(dir, 'vdmap.conf');
    await writeFile(vdmap, '# no virtual domain yet\n', { mode: 0o600 });
    const p = await startProxy('127.0.6.20', { VirtualDomainFile: vdmap });
    const virt = bed.user('alice+virt.example');
    const reloads = (): number => p.output().split('SIGHUP: configuration reloaded').length - 1;
    expect(await loginOnce('127.0.6.21', 'alice', virt.password)).toMatch(/^refused/);

    await writeFile(vdmap, 'vdmap virt 127.0.6.21\nvirt:VDomain virt.example\n', { mode: 0o600 });
    process.kill(p.pid, 'SIGHUP');
    await waitUntil('the reload', () => Promise.resolve(reloads() === 1));
    expect(await loginOnce('127.0.6.21', 'alice', virt.password)).toMatch(/^a OK/);
    // Served by the worker, as nobody: the primary has no session to log.
    const workers = childrenOf(p.pid);
    let servedBy: number[] = [];
    await waitUntil('the login in the log', async () => {
      servedBy = (await p.logs())
        .split('\n')
        .filter((l) => l.includes('"login succeeded"'))
        .map((l) => (JSON.parse(l) as { pid: number }).pid);
      return servedBy.length > 0;
    });
    expect(servedBy.every((pid) => workers.includes(pid))).toBe(true);
    expect(workers.map((w) => credentialsOf(w).uids[0])).toEqual([NOBODY.uid]);

    await writeFile(vdmap, '# none again\n', { mode: 0o600 });
    process.kill(p.pid, 'SIGHUP');
    await waitUntil('the second reload', () => Promise.resolve(reloads() === 2));
    expect(await loginOnce('127.0.6.21', 'alice', virt.password)).toMatch(/^refused/);
    expect(await loginOnce('127.0.6.20', 'bob', bed.user('bob').password)).toMatch(/^a OK/);
  });

  it('SIGQUIT: new connections are refused, a piped session goes on to its end, then the proxy exits', async () => {
    const p = await startProxy('127.0.6.13');
    const c = await piped(p.host);
    const before = await fetchFirst(c, 'f1');
    process.kill(p.pid, 'SIGQUIT');
    await waitUntil('the drain', () => Promise.resolve(p.output().includes('SIGQUIT: draining')));
    await waitUntil('the listener closed', async () =>
      (await loginOnce(p.host, 'alice', 'x')).startsWith('refused: connect ECONNREFUSED'),
    );
    expect(await fetchFirst(c, 'f2')).toBe(before);
    expect(p.child.exitCode).toBeNull();
    c.send('z LOGOUT\r\n');
    await c.closed;
    expect((await p.child).exitCode).toBe(0);
  });

  it('SIGUSR2 under a steady login load: the new process takes the sockets, no login is refused, no piped session is lost', async () => {
    const p = await startProxy('127.0.6.14');
    const sessions = await Promise.all(['alice', 'bob', 'alice'].map((u) => piped(p.host, u)));
    const firsts = await Promise.all(sessions.map((c, i) => fetchFirst(c, `f${i}`)));

    // Four clients logging in and out back to back until told to stop.
    const failures: string[] = [];
    let logins = 0;
    let longestMs = 0;
    let running = true;
    const users = ['alice', 'bob'].map((u) => bed.user(u));
    const loaders = Array.from({ length: 4 }, async (_, i) => {
      const u = users[i % 2];
      if (u === undefined) return;
      while (running) {
        const t0 = performance.now();
        const answer = await loginOnce(p.host, u.uid, u.password);
        longestMs = Math.max(longestMs, performance.now() - t0);
        if (/^a OK/.test(answer)) logins++;
        else failures.push(answer);
      }
    });
    await waitUntil('logins under way', () => Promise.resolve(logins >= 20));

    process.kill(p.pid, 'SIGUSR2');
    await waitUntil(
      'the hand-over',
      () => Promise.resolve(/handed over to pid \d+/.test(p.output())),
      {
        timeoutMs: 30_000,
      },
    );
    const successor = Number(/handed over to pid (\d+)/.exec(p.output())?.[1]);
    cleanups.push(async () => process.kill(successor, 'SIGKILL'));
    const atHandOver = logins;
    await waitUntil('logins served by the new process', () =>
      Promise.resolve(logins >= atHandOver + 40),
    );
    running = false;
    await Promise.all(loaders);

    if (failures.length > 0) console.log(p.output(), await p.logs());
    expect(failures).toEqual([]);
    // The piped sessions stayed with the old process, whole.
    for (const [i, c] of sessions.entries()) expect(await fetchFirst(c, `g${i}`)).toBe(firsts[i]);
    expect(p.child.exitCode).toBeNull();
    for (const c of sessions) c.send('z LOGOUT\r\n');
    await Promise.all(sessions.map((c) => c.closed));
    await waitUntil('the old process gone', () => Promise.resolve(p.child.exitCode !== null));
    expect(p.child.exitCode).toBe(0);

    // The new process serves, as root primary and nobody's worker, on the same sockets.
    expect(credentialsOf(successor).uids).toEqual([0, 0, 0, 0]);
    for (const w of childrenOf(successor))
      expect(credentialsOf(w).uids).toEqual(Array(4).fill(NOBODY.uid));
    expect(await loginOnce(p.host, 'bob', bed.user('bob').password)).toMatch(/^a OK/);
    process.kill(successor, 'SIGTERM');
    await waitUntil('the new process gone', async () => {
      try {
        process.kill(successor, 0);
        return false;
      } catch {
        return true;
      }
    });
    console.log(
      `hand-over under load: ${logins} logins, ${failures.length} refused or failed, longest login ${longestMs.toFixed(0)} ms`,
    );
  });
});
