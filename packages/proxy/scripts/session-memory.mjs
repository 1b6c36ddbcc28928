// Resident memory per idle logged-in IMAP session through the built ImapProxy (NumThreads 0):
// starts the test bed (Dovecot tuned as the benchmark does), opens N sessions that log in and stay
// idle, and prints the proxy's RSS growth divided by N. Not part of the tests (issue 8's figure).
//   pnpm --filter @mmp/proxy build && node packages/proxy/scripts/session-memory.mjs [N=2000]
// MMP_NODE_FLAGS="--max-semi-space-size=1" replaces the start scripts' flags (to compare). Also
// prints the proxy's CPU per login over the ramp (utime + stime from /proc), since a smaller young
// generation saves memory at the price of more scavenges.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startTestbed } from '../../testbed/dist/index.js';
import { dovecotOverrides } from '../../bench/dist/peers/dovecotTuning.js';
import { NODE_FLAGS } from '../dist/runtime.js';

const N = Number(process.argv[2] ?? 2000);
const BATCH = 50;
const proxyBin = fileURLToPath(new URL('../dist/bin/ImapProxy.js', import.meta.url));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const bed = await startTestbed({
  tls: false,
  bulkUsers: 200,
  extraDovecotConfig: dovecotOverrides(),
});
const port = await freePort();
const logDir = mkdtempSync(join(tmpdir(), 'mmp-session-memory-'));
const proxy = spawn(
  process.execPath,
  [
    // as mmp-setup's start scripts run it, unless MMP_NODE_FLAGS says otherwise
    ...(process.env.MMP_NODE_FLAGS === undefined
      ? NODE_FLAGS
      : process.env.MMP_NODE_FLAGS.split(' ').filter(Boolean)),
    proxyBin,
    ...['-p', `127.0.0.1:${port}`, '-o', logDir, '-v', '0'],
    ...['-h', `${bed.ldap.host}:${bed.ldap.port}`, '-b', bed.ldap.baseDn],
    ...['-D', bed.ldap.bindDn, '-w', bed.ldap.bindPassword, '-c', String(bed.backsidePorts.imap)],
  ],
  // A cap above the batch size: this measures memory, not the attempt limiter.
  {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: {
      PATH: process.env.PATH,
      MaxConcurrentConnectionAttempts: '1000',
      // One address opens every session: capacity is measured, not the per-address limits.
      ConnectionLimitExempt: '127.0.0.0/8',
      // A root proxy must be told whom to serve as (privileges.ts); this measurement runs as is.
      ...(process.getuid() === 0 ? { RunAsUser: 'root' } : {}),
    },
  },
);
// The proxy logs to its file, not to stderr: ready once it accepts a connection.
for (;;) {
  const up = await new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' });
    s.on('connect', () => resolve(true)).on('error', () => resolve(false));
    s.on('data', () => s.destroy());
  });
  if (up) break;
  if (proxy.exitCode !== null) throw new Error(`proxy exited (${proxy.exitCode})`);
  await sleep(100);
}
const rss = () =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${proxy.pid}/status`, 'utf8'))[1]) * 1024;
const cpuTicks = () => {
  const f = readFileSync(`/proc/${proxy.pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(f[11]) + Number(f[12]);
};
const users = bed.usersOfKind('bulk');

function session(i) {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1' });
    let text = '';
    let sent = false;
    s.on('data', (d) => {
      text += d;
      if (!sent && text.includes('\r\n')) {
        sent = true;
        const u = users[i % users.length];
        s.write(`a LOGIN ${u.uid} ${u.password}\r\n`);
      }
      if (/\r\na (OK|NO|BAD)[^\r]*\r\n/.test(text)) {
        s.removeAllListeners('data');
        if (/\r\na OK/.test(text)) resolve(s);
        else reject(new Error(text));
      }
    });
    s.on('error', reject);
    // a connection the proxy closed without an answer must not hang the measurement
    s.on('close', () => reject(new Error(`session ${i} closed: ${text.slice(0, 200)}`)));
  });
}

try {
  // Warm up (code compiled, directory and store connections open), then let it settle.
  const warm = [];
  for (let i = 0; i < BATCH; i++) warm.push(await session(i));
  for (const s of warm) s.destroy();
  await sleep(5_000);
  const before = rss();
  const ticks = cpuTicks();
  const sockets = [];
  for (let i = 0; i < N; i += BATCH) {
    const batch = Array.from({ length: Math.min(BATCH, N - i) }, (_, j) => session(i + j));
    sockets.push(...(await Promise.all(batch)));
  }
  const spent = cpuTicks() - ticks;
  await sleep(3_000);
  const after = rss();
  console.log(
    JSON.stringify({
      sessions: sockets.length,
      rssBeforeMiB: +(before / 2 ** 20).toFixed(1),
      rssAfterMiB: +(after / 2 ** 20).toFixed(1),
      bytesPerSession: Math.round((after - before) / sockets.length),
      // ticks of 1/100 s (USER_HZ)
      cpuMicrosPerLogin: Math.round((spent * 10_000) / sockets.length),
    }),
  );
  for (const s of sockets) s.destroy();
} finally {
  proxy.kill('SIGTERM');
  await new Promise((r) => proxy.on('exit', r));
  await bed.stop();
}
