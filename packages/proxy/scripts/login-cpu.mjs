// Proxy CPU per login (issue 18), split between the primary and its workers, for process layouts
// side by side: one process (NumThreads 0, not root or RunAsUser root), a primary with workers
// (NumThreads N, or root with a RunAsUser to become: the installed default). Pinned as
// `scripts/bench --pin` pins: this process (the clients) on CPU 0, proxies, slapd, Dovecot on CPU 1.
// Not part of the tests.
//   pnpm build && taskset -c 0 node packages/proxy/scripts/login-cpu.mjs [options]
// --layout NAME=THREADS[:RUNASUSER]  a layout (repeatable; default one=0:root and primary=1:root)
// --protocols imap,pop3   --reps 3   --seconds 8   --clients 4   --warmup 4
// --listen ADDR    the proxies' listening address (default 127.0.42.1)
// Each repetition runs every layout in turn (alternated), so the VM's drift hits them alike. CPU
// comes from /proc/PID/task/*/schedstat (ns on CPU, every thread) of the started process and of
// its children, read when the measured window begins and ends.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestbed } from '../../testbed/dist/index.js';
import { dovecotOverrides } from '../../bench/dist/peers/dovecotTuning.js';
import { dovecotGroup, slapdGroup } from '../../bench/dist/bedProcs.js';
import { pinGroups, pinProcesses } from '../../bench/dist/pin.js';
import { childrenOf } from '../../bench/dist/procs.js';
import { runLogins } from '../../bench/dist/load/scenarios.js';
import { cpuNs, sleep, startProxy } from './harness.mjs';

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const layouts = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] !== '--layout') continue;
  const [name, spec] = args[i + 1].split('=');
  const [threads, user] = spec.split(':');
  layouts.push({ name, threads, user });
}
if (layouts.length === 0) {
  layouts.push({ name: 'one', threads: '0', user: 'root' });
  layouts.push({ name: 'primary', threads: '1', user: 'root' });
}
const dist = resolve(opt('dist', fileURLToPath(new URL('../dist/bin', import.meta.url))));
const protocols = opt('protocols', 'imap,pop3').split(',');
const reps = Number(opt('reps', '3'));
const seconds = Number(opt('seconds', '8'));
const clients = Number(opt('clients', '4'));
const warmup = Number(opt('warmup', '4'));
const LISTEN = opt('listen', '127.0.42.1');

const bed = await startTestbed({
  stores: 1,
  bulkUsers: 8,
  tls: false,
  extraDovecotConfig: dovecotOverrides(),
});
const children = [];
const logDir = mkdtempSync(join(tmpdir(), 'mmp-login-cpu-'));
try {
  const store = bed.stores[0];
  const accounts = bed
    .usersOfKind('bulk')
    .map((u) => ({ user: u.uid, pass: u.password, host: store.host }));
  const targets = [];
  for (const l of layouts) {
    const t = { name: l.name, endpoints: {}, pid: {} };
    for (const protocol of protocols) {
      const { child, endpoint } = await startProxy({
        dist,
        protocol,
        listen: LISTEN,
        bed,
        logDir,
        env: {
          NumThreads: l.threads,
          ...(process.getuid() === 0 && l.user !== undefined ? { RunAsUser: l.user } : {}),
        },
      });
      children.push(child);
      await sleep(500);
      t.endpoints[protocol] = endpoint;
      t.pid[protocol] = child.pid;
      pinProcesses([child.pid, ...childrenOf(child.pid)], '1');
    }
    targets.push(t);
  }
  pinGroups([dovecotGroup(store.configFile)], '1');
  const ldapPg = slapdGroup(bed.ldap.configFile);
  if (ldapPg !== undefined) pinGroups([ldapPg], '1');
  const job = (endpoint, ms, once) => ({
    kind: 'logins',
    endpoint,
    accounts,
    concurrency: clients,
    warmupMs: 0,
    durationMs: ms,
    localAddresses: [],
    timeoutMs: 10_000,
    ...(once ? { eachAccountOnce: true } : {}),
  });
  for (const t of targets) {
    for (const protocol of protocols) {
      await runLogins(job(t.endpoints[protocol], 0, true));
      await runLogins(job(t.endpoints[protocol], warmup * 1000, false));
    }
  }
  console.error(`layouts ${targets.map((t) => t.name).join(', ')}; ${reps} reps of ${seconds} s`);
  for (let rep = 0; rep < reps; rep++) {
    for (const protocol of protocols) {
      const order = targets.map((_, i) => targets[(i + rep) % targets.length]);
      for (const t of order) {
        const primary = t.pid[protocol];
        let workers = [];
        let p0 = 0;
        let w0 = 0;
        const mark = (what) => {
          if (what === 'start') {
            workers = childrenOf(primary);
            p0 = cpuNs([primary]);
            w0 = cpuNs(workers);
          } else {
            p0 = cpuNs([primary]) - p0;
            w0 = cpuNs(workers) - w0;
          }
        };
        const r = await runLogins(job(t.endpoints[protocol], seconds * 1000, false), mark);
        const n = Math.max(1, r.windowCycles);
        console.log(
          JSON.stringify({
            layout: t.name,
            protocol,
            rep,
            loginsPerSecond: Math.round(r.perSecond),
            errors: r.errors,
            startedUsPerLogin: Math.round(p0 / 1000 / n),
            workersUsPerLogin: Math.round(w0 / 1000 / n),
            totalUsPerLogin: Math.round((p0 + w0) / 1000 / n),
          }),
        );
        await sleep(500);
      }
    }
  }
} finally {
  for (const c of children) c.kill('SIGTERM');
  await sleep(500);
  await bed.stop();
  rmSync(logDir, { recursive: true, force: true });
}
