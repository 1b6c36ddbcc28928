// The quick start's runtime: the sample test bed, the two proxies, and the curl commands.
// Run through scripts/quickstart, which installs and builds first.
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from 'node:net';
import { freePort, markerSubject, startTestbed } from '../packages/testbed/dist/index.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const check = process.argv.includes('--check');
const unknown = process.argv.slice(2).filter((a) => a !== '--check');
if (unknown.length > 0) {
  console.error(`usage: scripts/quickstart [--check]   (unknown argument ${unknown[0]})`);
  process.exit(2);
}

/** The standard ports shifted by 1000 when free, so nothing needs root or clashes. */
async function portNear(preferred) {
  const ok = await new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port: preferred });
    s.on('connect', () => (s.destroy(), resolve(false)));
    s.on('error', () => resolve(true));
  });
  return ok ? preferred : freePort('127.0.0.1');
}

function startProxy(program, port, testbed, logDir) {
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    ListenPort: `127.0.0.1:${port}`,
    LDAPHost: `${testbed.ldap.host}:${testbed.ldap.port}`,
    BaseDN: testbed.ldap.baseDn,
    BindDN: testbed.ldap.bindDn,
    BindPass: testbed.ldap.bindPassword,
    BacksidePort: String(
      program === 'ImapProxy' ? testbed.backsidePorts.imap : testbed.backsidePorts.pop3,
    ),
    LogDir: logDir,
    LogLevel: '1',
    // Started as root, a proxy serves clients as RunAsUser once it listens (README, "Install on
    // a server"); the sample needs no dedicated user.
    ...(process.getuid() === 0 ? { RunAsUser: 'nobody' } : {}),
  };
  const child = spawn(process.execPath, [join(root, 'packages/proxy/dist/bin', `${program}.js`)], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  return new Promise((resolve, reject) => {
    const deadline = setTimeout(
      () => reject(new Error(`${program} did not start:\n${output}`)),
      15_000,
    );
    const poll = setInterval(() => {
      if (output.includes('listening on')) {
        clearInterval(poll);
        clearTimeout(deadline);
        resolve(child);
      }
    }, 50);
    child.on('exit', (code) => {
      clearInterval(poll);
      clearTimeout(deadline);
      reject(new Error(`${program} exited with ${code}:\n${output}`));
    });
  });
}

const testbed = await startTestbed({ bulkUsers: 0, tls: false });
const children = [];
const stopAll = async () => {
  for (const c of children) c.kill('SIGTERM');
  await testbed.stop();
};
try {
  const logDir = join(testbed.dir, 'mmp-logs');
  mkdirSync(logDir, { recursive: true });
  const imapPort = await portNear(1143);
  const pop3Port = await portNear(1110);
  children.push(await startProxy('ImapProxy', imapPort, testbed, logDir));
  children.push(await startProxy('PopProxy', pop3Port, testbed, logDir));

  const users = [testbed.userOn('A'), testbed.userOn('B')];
  const commands = users.flatMap((u) => [
    {
      user: u,
      expect: markerSubject(u.store, u.uid),
      argv: [
        '-s',
        '--user',
        `${u.uid}:${u.password}`,
        `imap://127.0.0.1:${imapPort}/INBOX;MAILINDEX=1;SECTION=HEADER.FIELDS%20(SUBJECT)`,
      ],
    },
    {
      user: u,
      expect: markerSubject(u.store, u.uid),
      argv: ['-s', '--user', `${u.uid}:${u.password}`, `pop3://127.0.0.1:${pop3Port}/1`],
    },
  ]);
  const shell = (argv) =>
    ['curl', ...argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a}'`))].join(' ');

  if (!check) {
    console.log(`ImapProxy listens on 127.0.0.1:${imapPort}, PopProxy on 127.0.0.1:${pop3Port}`);
    console.log(
      `directory ${testbed.ldap.url}, stores ${testbed.stores.map((s) => `${s.name}=${s.host}`).join(' ')}`,
    );
    console.log(
      `logs in ${logDir}\n\nTry (each prints the Subject of a message only that user's store holds):`,
    );
    for (const c of commands) console.log(`  ${shell(c.argv)}`);
    console.log('\nCtrl-C stops everything.');
    await new Promise((resolve) => {
      process.on('SIGINT', resolve);
      process.on('SIGTERM', resolve);
    });
  } else {
    let failed = 0;
    for (const c of commands) {
      let out = '';
      try {
        out = execFileSync('curl', c.argv, { encoding: 'utf8', timeout: 20_000 });
      } catch (e) {
        out = String(e.stdout ?? e.message);
      }
      const good = out.includes(c.expect);
      if (!good) failed++;
      console.log(
        `${good ? 'ok  ' : 'FAIL'} ${shell(c.argv)}\n     ${good ? c.expect : out.trim() || '(no output)'}`,
      );
    }
    console.log(failed === 0 ? 'every user reached its own store' : `${failed} check(s) failed`);
    process.exitCode = failed === 0 ? 0 : 1;
  }
} finally {
  await stopAll();
}
