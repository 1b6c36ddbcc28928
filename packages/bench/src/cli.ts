#!/usr/bin/env node
// mmp-bench: `node dist/cli.js [--quick] [--out FILE] [--sessions N] …` (see --help).
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { type BenchOptions, runBench } from './bench.js';
import { killAllServers } from './procs.js';
import { TARGET_IDS, type TargetId, formatReport } from './table.js';

const HELP = `mmp-bench: mmp against direct Dovecot, perdition and the nginx mail proxy, on loopback.

Usage: mmp-bench [options]   (as root: the test bed starts slapd and Dovecot)
  --quick               fewer, shorter runs and 5,000 idle sessions (a smoke run)
  --out FILE            also write the report (Markdown) to FILE
  --reps N              repetitions of each measurement (default 3; the median is shown)
  --login-seconds S     length of each login run (default 10, quick 3)
  --fetch-seconds S     length of each fetch run (default 5, quick 2)
  --noops N             NOOPs per latency run (default 5000, quick 1000)
  --concurrency N       concurrent clients in the login runs (default 50)
  --sessions N          idle sessions to aim for (default 50000, quick 5000)
  --idle-seconds S      time allowed to ramp up idle sessions, per target (default 600, quick 40)
  --no-idle             skip the idle-session ramp
  --idle-only           only the idle-session ramp (no login, fetch or NOOP runs)
  --max-memory-gib G    stop a ramp once the machine has G GiB less available (default 8)
  --targets LIST        comma-separated subset of ${TARGET_IDS.join(',')}
  --nginx-proxy-buffer SIZE   nginx proxy_buffer (default: nginx's own, one page)
  -h, --help
`;

function number(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0)
    throw new Error(`--${name} needs a positive number, not ${value}`);
  return n;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      out: { type: 'string' },
      reps: { type: 'string' },
      'login-seconds': { type: 'string' },
      'fetch-seconds': { type: 'string' },
      noops: { type: 'string' },
      concurrency: { type: 'string' },
      sessions: { type: 'string' },
      'idle-seconds': { type: 'string' },
      'no-idle': { type: 'boolean', default: false },
      'idle-only': { type: 'boolean', default: false },
      'max-memory-gib': { type: 'string' },
      targets: { type: 'string' },
      'nginx-proxy-buffer': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    process.stderr.write('mmp-bench: run as root (Dovecot and perdition switch users)\n');
    return 2;
  }
  const quick = values.quick;
  const targets = (values.targets?.split(',').map((t) => t.trim()) ?? [
    ...TARGET_IDS,
  ]) as TargetId[];
  for (const t of targets) {
    if (!TARGET_IDS.includes(t))
      throw new Error(`unknown target ${t} (known: ${TARGET_IDS.join(', ')})`);
  }
  const options: BenchOptions = {
    quick,
    reps: Math.round(number(values.reps, 3, 'reps')),
    loginSeconds: number(values['login-seconds'], quick ? 3 : 10, 'login-seconds'),
    fetchSeconds: number(values['fetch-seconds'], quick ? 2 : 5, 'fetch-seconds'),
    noopCount: Math.round(number(values.noops, quick ? 1000 : 5000, 'noops')),
    concurrency: Math.round(number(values.concurrency, 50, 'concurrency')),
    sessions: Math.round(number(values.sessions, quick ? 5000 : 50_000, 'sessions')),
    idleSeconds: number(values['idle-seconds'], quick ? 40 : 600, 'idle-seconds'),
    idle: !values['no-idle'],
    throughput: !values['idle-only'],
    maxMemoryDrop: number(values['max-memory-gib'], 8, 'max-memory-gib') * 1024 ** 3,
    targets,
    nginxProxyBuffer: values['nginx-proxy-buffer'],
    log: (line) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`),
  };
  const results = await runBench(options);
  const report = formatReport(results);
  process.stdout.write(`\n${report}`);
  if (values.out !== undefined) {
    await writeFile(values.out, report);
    process.stderr.write(`report written to ${values.out}\n`);
  }
  return 0;
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    killAllServers();
    process.exit(130);
  });
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(
      `mmp-bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    killAllServers();
    process.exitCode = 1;
  },
);
