// Proxy CPU per MiB forwarded during the benchmark's 1 MiB fetch scenario (issue 18), against
// ImapProxy/PopProxy builds and socat side by side, pinned as `scripts/bench --pin` pins: this
// process (the client) on CPU 0, proxies, slapd and Dovecot on CPU 1. Not part of the tests.
//   pnpm build && taskset -c 0 node packages/proxy/scripts/fetch-cpu.mjs [options]
// --mmp NAME=DIR   a proxy build (DIR holds ImapProxy.js and PopProxy.js; repeatable; default
//                  this package's dist/bin as "mmp")
// --socat          socat -b 65536 alongside (as the bench runs it)
// --direct         Dovecot itself, for the rate ratio
// --protocols imap,pop3   --clients fast,slow   --reps 3   --seconds 5
// --slow-us 900    the slow client spends this many µs per 64 KiB received (about 60 MiB/s)
// --warmup S      first S seconds of unmeasured fetches per proxy build, protocol and client
// --logins S      before each measured fetch run, S seconds of login+logout cycles (4 clients)
//                  through the same target, as the bench's login runs precede its fetch runs
// --run-warmup S  each measured run first fetches S seconds unmeasured in its session (the bench's
//                  FETCH_WARMUP_MS)
// --big N         fetch a message of N MiB appended for the purpose (larger than socket buffers)
// --perf           per run, `perf stat` of the relay's processes over the measured window: system
//                  calls, context switches and page faults, per MiB
// --record DIR    per run, `perf record -g` of the relay's processes into DIR/TARGET-PROTO-CLIENT-REP
//                  (MMP_NODE_FLAGS="--perf-basic-prof" names JavaScript frames)
// --events LIST   with --record: record these events instead of call graphs (e.g.
//                  syscalls:sys_exit_read,syscalls:sys_exit_write for bytes per call)
// --listen ADDR    the relays' listening address (default 127.0.41.1)
// Each repetition runs every target in turn (alternated), so the VM's drift hits them alike. Proxy
// CPU comes from /proc/PID/task/*/schedstat (ns on CPU, every thread), read when the measured
// window begins and ends; for socat the listener and its per-connection child.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startTestbed } from '../../testbed/dist/index.js';
import { dovecotOverrides } from '../../bench/dist/peers/dovecotTuning.js';
import { socatArgs } from '../../bench/dist/peers/targets.js';
import { dovecotGroup, slapdGroup } from '../../bench/dist/bedProcs.js';
import { pinGroups, pinProcesses } from '../../bench/dist/pin.js';
import { childrenOf } from '../../bench/dist/procs.js';
import { groupMembers, readAllStats } from '../../bench/dist/cpu.js';
import { runFetch, runLogins } from '../../bench/dist/load/scenarios.js';
import { Conn } from '../../bench/dist/load/conn.js';
import { cpuNs, sleep, startProxy, waitForPort } from './harness.mjs';

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const flag = (name) => args.includes(`--${name}`);
const builds = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] !== '--mmp') continue;
  const [name, dir] = args[i + 1].split('=');
  builds.push({ name, dir: resolve(dir) });
}
if (builds.length === 0) {
  builds.push({ name: 'mmp', dir: fileURLToPath(new URL('../dist/bin', import.meta.url)) });
}
const protocols = opt('protocols', 'imap,pop3').split(',');
const clients = opt('clients', 'fast,slow').split(',');
const reps = Number(opt('reps', '3'));
const seconds = Number(opt('seconds', '5'));
const slowUs = Number(opt('slow-us', '900'));
const LISTEN = opt('listen', '127.0.41.1');

/** ns on CPU of the main thread of each of `pids` */
function mainNs(pids) {
  let total = 0;
  for (const pid of pids) {
    try {
      total += Number(readFileSync(`/proc/${pid}/schedstat`, 'latin1').split(' ')[0]);
    } catch {
      // exited
    }
  }
  return total;
}

const bed = await startTestbed({
  stores: 1,
  bulkUsers: 4,
  tls: false,
  extraDovecotConfig: dovecotOverrides(),
});
const children = [];
const logDir = mkdtempSync(join(tmpdir(), 'mmp-fetch-cpu-'));
try {
  const store = bed.stores[0];
  const u = bed.usersOfKind('bulk')[0];
  const account = { user: u.uid, pass: u.password, host: store.host };
  // --big N: a message of N MiB appended (message 4), fetched instead of the 1 MiB one: larger than
  // the socket buffers hold, so that a slow client makes the relay's writes wait.
  const bigMiB = Number(opt('big', '0'));
  let message = { number: bed.bigMessage.number, size: bed.bigMessage.size };
  if (bigMiB > 0) {
    const line = 'x'.repeat(78) + '\r\n';
    const text = Buffer.from(
      'Subject: big\r\n\r\n' + line.repeat(Math.floor((bigMiB * 1048576) / line.length)),
    );
    await new Promise((res, rej) => {
      const s = connect({ host: store.host, port: bed.backsidePorts.imap });
      let got = '';
      let step = 0;
      s.on('error', rej);
      s.on('data', (d) => {
        got += d;
        if (step === 0 && got.includes('\r\n')) {
          step = 1;
          s.write(`a LOGIN ${u.uid} ${u.password}\r\nb APPEND INBOX {${text.length}}\r\n`);
        } else if (step === 1 && got.includes('\r\n+ ')) {
          step = 2;
          s.write(text);
          s.write('\r\n');
        } else if (step === 2 && /\r\nb (OK|NO|BAD)/.test(got)) {
          s.destroy();
          if (/\r\nb OK/.test(got)) res();
          else rej(new Error(got.slice(-200)));
        }
      });
    });
    message = { number: 4, size: text.length };
  }
  const targets = [];
  for (const b of builds) {
    const t = { name: b.name, endpoints: {}, pids: {} };
    for (const protocol of protocols) {
      const { child, endpoint } = await startProxy({
        dist: b.dir,
        protocol,
        listen: LISTEN,
        bed,
        logDir,
        env: { NumThreads: '0', ...(process.getuid() === 0 ? { RunAsUser: 'root' } : {}) },
      });
      children.push(child);
      t.endpoints[protocol] = endpoint;
      t.pids[protocol] = () => [child.pid];
      pinProcesses([child.pid], '1');
    }
    targets.push(t);
  }
  if (flag('socat')) {
    const t = { name: 'socat', endpoints: {}, pids: {} };
    for (const protocol of protocols) {
      const port = await freePort(LISTEN);
      const storePort = protocol === 'imap' ? bed.backsidePorts.imap : bed.backsidePorts.pop3;
      const argv = socatArgs(port, store.host, storePort).map((a) =>
        a.replace(/bind=[^,]+/, `bind=${LISTEN}`),
      );
      const child = spawn('socat', argv, { stdio: ['ignore', 'inherit', 'inherit'] });
      children.push(child);
      await waitForPort(LISTEN, port, child);
      t.endpoints[protocol] = { protocol, host: LISTEN, port };
      t.pids[protocol] = () => [child.pid, ...childrenOf(child.pid)];
      pinProcesses([child.pid], '1');
    }
    targets.push(t);
  }
  if (flag('direct')) {
    const t = { name: 'direct', endpoints: {}, pids: {} };
    for (const protocol of protocols) {
      t.endpoints[protocol] = {
        protocol,
        host: store.host,
        port: protocol === 'imap' ? bed.backsidePorts.imap : bed.backsidePorts.pop3,
      };
      t.pids[protocol] = () => [];
    }
    targets.push(t);
  }
  const dovecotPg = dovecotGroup(store.configFile);
  // every process of Dovecot's group (its master forks the per-connection ones)
  const storePids = () => groupMembers(readAllStats(), [dovecotPg]).map((p) => p.pid);
  pinGroups([dovecotPg], '1');
  const ldapPg = slapdGroup(bed.ldap.configFile);
  if (ldapPg !== undefined) pinGroups([ldapPg], '1');

  // The slow client: a load generator that spends `slowUs` per 64 KiB it receives.
  let spinPer64k = 0;
  const connect0 = Conn.connect.bind(Conn);
  Conn.connect = async (...a) => {
    const conn = await connect0(...a);
    conn.socket.prependListener('data', (chunk) => {
      if (spinPer64k === 0) return;
      const until = performance.now() + (spinPer64k * chunk.length) / 65536 / 1000;
      while (performance.now() < until);
    });
    return conn;
  };

  const PERF_EVENTS = [
    'task-clock',
    'context-switches',
    'page-faults',
    'syscalls:sys_enter_read',
    'syscalls:sys_enter_write',
    'syscalls:sys_enter_writev',
    'syscalls:sys_enter_epoll_ctl',
    'syscalls:sys_enter_epoll_wait',
    'syscalls:sys_enter_epoll_pwait',
    'syscalls:sys_enter_pselect6',
    'syscalls:sys_enter_select',
    'syscalls:sys_enter_mmap',
    'syscalls:sys_enter_munmap',
    'syscalls:sys_enter_madvise',
    'syscalls:sys_enter_brk',
    'syscalls:sys_enter_futex',
  ];

  // Unmeasured fetches first, fast and slow on every proxy build: V8 optimises (and, when the
  // slow client brings new shapes, deoptimises and optimises again) the pipe's code in the first
  // seconds; that compile work runs on V8's threads and would be counted per MiB otherwise.
  const warmup = Number(opt('warmup', '0'));
  for (const t of targets) {
    if (warmup === 0 || t.name === 'socat' || t.name === 'direct') continue;
    for (const client of clients) {
      for (const protocol of protocols) {
        spinPer64k = client === 'slow' ? slowUs : 0;
        await runFetch({
          kind: 'fetch',
          endpoint: t.endpoints[protocol],
          account,
          message: message.number,
          messageSize: message.size,
          durationMs: warmup * 1000,
          timeoutMs: 30_000,
        });
      }
    }
  }
  console.error(`targets ${targets.map((t) => t.name).join(', ')}; ${reps} reps of ${seconds} s`);
  for (let rep = 0; rep < reps; rep++) {
    for (const client of clients) {
      for (const protocol of protocols) {
        // rotate the order per repetition
        const order = targets.map((_, i) => targets[(i + rep) % targets.length]);
        for (const t of order) {
          if (Number(opt('logins', '0')) > 0 && t.name !== 'socat' && t.name !== 'direct') {
            spinPer64k = 0;
            await runLogins({
              kind: 'logins',
              endpoint: t.endpoints[protocol],
              accounts: [account],
              concurrency: 4,
              warmupMs: 0,
              durationMs: Number(opt('logins', '0')) * 1000,
              localAddresses: [],
              timeoutMs: 10_000,
            });
          }
          spinPer64k = client === 'slow' ? slowUs : 0;
          let pids = [];
          let proxy0 = 0;
          let main0 = 0;
          let store0 = 0;
          let perf;
          let perfOut = '';
          const mark = async (what) => {
            if (what === 'start') {
              pids = t.pids[protocol]();
              proxy0 = cpuNs(pids);
              main0 = mainNs(pids);
              store0 = cpuNs(storePids());
              if (flag('perf') && pids.length > 0) {
                perf = spawn(
                  'perf',
                  ['stat', '-x', ',', '-e', PERF_EVENTS.join(','), '-p', pids.join(',')],
                  { stdio: ['ignore', 'ignore', 'pipe'] },
                );
                perf.stderr.on('data', (d) => (perfOut += d));
                await sleep(200);
              }
              if (opt('record') !== undefined && pids.length > 0) {
                perf = spawn(
                  'perf',
                  [
                    'record',
                    ...(opt('events') !== undefined ? ['-e', opt('events')] : ['-g']),
                    '-o',
                    join(opt('record'), `${t.name}-${protocol}-${client}-${rep}.data`),
                    '-p',
                    pids.join(','),
                  ],
                  { stdio: ['ignore', 'ignore', 'ignore'] },
                );
                await sleep(300);
              }
            } else {
              proxy0 = cpuNs(pids) - proxy0;
              main0 = mainNs(pids) - main0;
              store0 = cpuNs(storePids()) - store0;
              if (perf !== undefined) {
                const exited = new Promise((r) => perf.on('exit', r));
                perf.kill('SIGINT');
                await exited;
              }
            }
          };
          const r = await runFetch(
            {
              kind: 'fetch',
              endpoint: t.endpoints[protocol],
              account,
              message: message.number,
              messageSize: message.size,
              warmupMs: Number(opt('run-warmup', '0')) * 1000,
              durationMs: seconds * 1000,
              timeoutMs: 30_000,
            },
            mark,
          );
          const mib = r.bytes / 1048576;
          const row = {
            target: t.name,
            protocol,
            client,
            rep,
            mibPerSecond: Math.round(r.mibPerSecond),
            proxyUsPerMiB: Math.round(proxy0 / 1000 / mib),
            // the proxy's other threads: V8's compiler and collector helpers, libuv's pool
            otherThreadsUsPerMiB: Math.round((proxy0 - main0) / 1000 / mib),
            storeUsPerMiB: Math.round(store0 / 1000 / mib),
          };
          if (perf !== undefined && flag('perf')) {
            const per = {};
            for (const line of perfOut.split('\n')) {
              const f = line.split(',');
              if (f.length < 3 || f[0] === '' || f[0].startsWith('<')) continue;
              const name = f[2].replace('syscalls:sys_enter_', '');
              per[name] = +(Number(f[0]) / mib).toFixed(1);
            }
            // perf ran ~200 ms before the window started: small bias, same for every target
            row.perMiB = per;
          }
          console.log(JSON.stringify(row));
          await sleep(500);
        }
      }
    }
  }
} finally {
  for (const c of children) c.kill('SIGTERM');
  await sleep(300);
  await bed.stop();
  rmSync(logDir, { recursive: true, force: true });
}
