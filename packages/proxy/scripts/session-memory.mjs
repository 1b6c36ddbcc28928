// Resident memory per idle logged-in IMAP session through the built ImapProxy (NumThreads 0):
// starts the test bed (Dovecot tuned as the benchmark does), opens N sessions that log in and stay
// idle, and prints the proxy's RSS growth divided by N. Not part of the tests (issue 8's figure).
//   pnpm --filter @mmp/proxy build && node packages/proxy/scripts/session-memory.mjs [N=2000]
// MMP_NODE_FLAGS="--max-semi-space-size=1" replaces the start scripts' flags (to compare). Also
// prints the proxy's CPU per login over the ramp (utime + stime from /proc), since a smaller young
// generation saves memory at the price of more scavenges.
//   --probe: also asks the proxy (memory-probe.mjs, preloaded) for its heap and external memory
//   before and after forced collections, at the start and at N sessions, and prints them per session.
//   --snapshots: as --probe, with heap snapshots at N and at 2N sessions (the ramp goes on to 2N);
//   `heap-diff.mjs` compares them. MMP_MEMORY_HOST: the proxy's address (default 127.0.0.1);
//   MMP_PROXY_BIN: another build's ImapProxy.js (to alternate two builds in one tree).
//   --idle S: also the figure after S more seconds without traffic.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startTestbed } from '../../testbed/dist/index.js';
import { dovecotOverrides } from '../../bench/dist/peers/dovecotTuning.js';
import { NODE_FLAGS } from '../dist/runtime.js';

const N = Number(process.argv[2] ?? 2000);
const snapshots = process.argv.includes('--snapshots');
const probe = snapshots || process.argv.includes('--probe');
const host = process.env.MMP_MEMORY_HOST ?? '127.0.0.1';
const idleAt = process.argv.indexOf('--idle');
const idleSeconds = idleAt > 0 ? Number(process.argv[idleAt + 1]) : 0;
const probeDir = probe ? mkdtempSync(join(tmpdir(), 'mmp-memory-probe-')) : undefined;
const BATCH = 50;
const proxyBin =
  process.env.MMP_PROXY_BIN ?? fileURLToPath(new URL('../dist/bin/ImapProxy.js', import.meta.url));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const bed = await startTestbed({
  tls: false,
  bulkUsers: 200,
  extraDovecotConfig: dovecotOverrides(),
});
const port = await freePort(host);
const logDir = mkdtempSync(join(tmpdir(), 'mmp-session-memory-'));
const proxy = spawn(
  process.execPath,
  [
    // as mmp-setup's start scripts run it, unless MMP_NODE_FLAGS says otherwise
    ...(process.env.MMP_NODE_FLAGS === undefined
      ? NODE_FLAGS
      : process.env.MMP_NODE_FLAGS.split(' ').filter(Boolean)),
    ...(probe ? ['--import', fileURLToPath(new URL('./memory-probe.mjs', import.meta.url))] : []),
    proxyBin,
    ...['-p', `${host}:${port}`, '-o', logDir, '-v', '0'],
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
      ...(probe ? { MMP_PROBE_DIR: probeDir, MMP_PROBE_SNAPSHOT: snapshots ? '1' : '0' } : {}),
    },
  },
);
// The proxy logs to its file, not to stderr: ready once it accepts a connection.
for (;;) {
  const up = await new Promise((resolve) => {
    const s = connect({ port, host });
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
let probes = 0;
/** The probe's figures (memory-probe.mjs), once it wrote them. */
async function probed() {
  const k = ++probes;
  process.kill(proxy.pid, 'SIGWINCH');
  while (!existsSync(join(probeDir, `done-${k}`))) await sleep(100);
  return JSON.parse(readFileSync(join(probeDir, `usage-${k}.json`), 'utf8'));
}
async function ramp(from, to) {
  const opened = [];
  for (let i = from; i < to; i += BATCH) {
    const batch = Array.from({ length: Math.min(BATCH, to - i) }, (_, j) => session(i + j));
    opened.push(...(await Promise.all(batch)));
  }
  return opened;
}

function session(i) {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host });
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
  const first = probe ? await probed() : undefined;
  if (probe) await sleep(2_000);
  const before = rss();
  const ticks = cpuTicks();
  const sockets = await ramp(0, N);
  const sessions = sockets.length;
  const spent = cpuTicks() - ticks;
  await sleep(3_000);
  const after = rss();
  // Idle longer: what V8's memory reducer gives back of the logins' garbage, uncollected at 3 s.
  let idle;
  if (idleSeconds > 0) {
    await sleep(idleSeconds * 1000);
    idle = Math.round((rss() - before) / sessions);
  }
  if (probe) {
    const second = await probed();
    const per = (f) => Math.round(f / sessions);
    const delta = (k, when) => per(second[when][k] - first[when][k]);
    console.log(
      JSON.stringify({
        probeDir,
        perSession: {
          rssAfterGc: delta('rss', 'after'),
          heapUsedBeforeGc: delta('heapUsed', 'before'),
          heapUsedAfterGc: delta('heapUsed', 'after'),
          heapTotalAfterGc: delta('heapTotal', 'after'),
          externalAfterGc: delta('external', 'after'),
          arrayBuffersAfterGc: delta('arrayBuffers', 'after'),
        },
      }),
    );
    if (snapshots) {
      sockets.push(...(await ramp(N, 2 * N)));
      await sleep(3_000);
      await probed();
      console.log(
        `node ${fileURLToPath(new URL('./heap-diff.mjs', import.meta.url))} ${join(probeDir, 'heap-2.heapsnapshot')} ${join(probeDir, 'heap-3.heapsnapshot')} ${N}`,
      );
    }
  }
  console.log(
    JSON.stringify({
      sessions,
      rssBeforeMiB: +(before / 2 ** 20).toFixed(1),
      rssAfterMiB: +(after / 2 ** 20).toFixed(1),
      bytesPerSession: Math.round((after - before) / sessions),
      ...(idle === undefined ? {} : { [`bytesPerSessionAfter${idleSeconds}sIdle`]: idle }),
      // ticks of 1/100 s (USER_HZ)
      cpuMicrosPerLogin: Math.round((spent * 10_000) / sessions),
    }),
  );
  for (const s of sockets) s.destroy();
} finally {
  proxy.kill('SIGTERM');
  await new Promise((r) => proxy.on('exit', r));
  await bed.stop();
}
