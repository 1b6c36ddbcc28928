#!/usr/bin/env node
// mmp-bench: `node dist/cli.js [--quick] [--out FILE] [--sessions N] …` (see --help).
import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { cpus } from 'node:os';
import { ATTACK_TARGETS, type AttackTarget, runAttackBench } from './attack.js';
import { ATTACK_KINDS, type AttackKind } from './attackParams.js';
import { formatAttackReport } from './attackTable.js';
import { type BenchOptions, IDLE_SETTLE_SECONDS, runBench } from './bench.js';
import { runChaosBench } from './chaos.js';
import { FAULT_KINDS, type FaultKind, formatChaosReport } from './chaosTable.js';
import { chartSvg } from './chart.js';
import { parsePinning } from './pin.js';
import { killAllServers } from './procs.js';
import { type Results, TARGET_IDS, type TargetId, formatReport } from './table.js';

const HELP = `mmp-bench: mmp against direct Dovecot, perdition, the nginx mail proxy and socat, on loopback.

Usage: mmp-bench [options]            the side-by-side benchmark (rates, CPU per operation)
       mmp-bench --attack [options]   hostile clients against one proxy (issue 13)
       mmp-bench --chaos [options]    faults of slapd, a store, a worker under load (issue 14)
(as root: the test bed starts slapd and Dovecot)
  --quick               fewer, shorter runs and 5,000 idle sessions (a smoke run)
  --out FILE            also write the report (Markdown) to FILE
  --reps N              repetitions of each measurement (default 3; the median is shown)
  --login-seconds S     length of each login run (default 10, quick 3)
  --fetch-seconds S     length of each fetch run (default 5, quick 2)
  --noops N             NOOPs per latency run (default 5000, quick 1000)
  --concurrency N       concurrent clients in the login runs (default 50)
  --sessions N          idle sessions to aim for (default 50000, quick 5000)
  --idle-seconds S      time allowed to ramp up idle sessions, per target (default 600, quick 40)
  --idle-settle S       then hold the sessions S s without traffic and read memory again
                        (default ${IDLE_SETTLE_SECONDS.full}, quick ${IDLE_SETTLE_SECONDS.quick}; 0: not)
  --idle-threads N      mmp N=2's NumThreads for the idle ramp (default: ⌈sessions ÷ 9,000⌉, at
                        least 2: one process holds at most 20,000 descriptors, 2 per session)
  --no-idle             skip the idle-session ramp
  --idle-only           only the idle-session ramp (no login, fetch or NOOP runs)
  --max-memory-gib G    stop a ramp once the machine has G GiB less available (default 8)
  --targets LIST        comma-separated subset of ${TARGET_IDS.join(',')}
  --nginx-proxy-buffer SIZE   nginx proxy_buffer (default: nginx's own, one page)
  --pin                 pin with taskset: load generator, proxy, slapd/auth_http, Dovecot (default
                        on 2 cores: load on CPU 0, everything else on CPU 1)
  --pin-cores SPEC      where, e.g. load=0,proxy=1,aux=1,stores=1 (implies --pin)
  --chart FILE          also draw the table as an SVG chart (rates ÷ direct, CPU per operation)
  --json FILE           also write the results as JSON
  --render FILE         run nothing: print the report (and --chart) of a --json file again

  --attack              legitimate clients with each attacker kind, alone and all together
                        (with --pin the attackers run on the load generator's CPU)
  --attack-target T     the proxy attacked: ${ATTACK_TARGETS.join(', ')} (default mmp0)
  --attack-kinds LIST   subset of ${ATTACK_KINDS.join(',')}
  --attack-seconds S    legitimate clients measured per phase (default 20, quick 8)
  --attack-lead S       attackers ramp up before (default 8, quick 6)

  --chaos               a steady load while slapd, store A and a proxy worker fail in turn
  --chaos-faults LIST   subset of ${FAULT_KINDS.join(',')}
  --chaos-threads N     the proxy's NumThreads (default 2; the worker fault needs ≥ 1)
  --chaos-pre S         load before each fault (default 5)
  --chaos-post S        load after each fault ends (default 15, quick 10)
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
      'idle-threads': { type: 'string' },
      'idle-settle': { type: 'string' },
      'no-idle': { type: 'boolean', default: false },
      'idle-only': { type: 'boolean', default: false },
      'max-memory-gib': { type: 'string' },
      targets: { type: 'string' },
      'nginx-proxy-buffer': { type: 'string' },
      pin: { type: 'boolean', default: false },
      'pin-cores': { type: 'string' },
      chart: { type: 'string' },
      json: { type: 'string' },
      render: { type: 'string' },
      attack: { type: 'boolean', default: false },
      'attack-target': { type: 'string' },
      'attack-kinds': { type: 'string' },
      'attack-seconds': { type: 'string' },
      'attack-lead': { type: 'string' },
      chaos: { type: 'boolean', default: false },
      'chaos-faults': { type: 'string' },
      'chaos-threads': { type: 'string' },
      'chaos-pre': { type: 'string' },
      'chaos-post': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (values.render !== undefined) {
    const results = JSON.parse(await readFile(values.render, 'utf8')) as Results;
    process.stdout.write(formatReport(results));
    if (values.chart !== undefined) await writeFile(values.chart, chartSvg(results));
    return 0;
  }
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    process.stderr.write('mmp-bench: run as root (Dovecot and perdition switch users)\n');
    return 2;
  }
  const quick = values.quick;
  const log = (line: string): void => {
    process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
  };
  const emit = async (report: string): Promise<void> => {
    process.stdout.write(`\n${report}`);
    if (values.out !== undefined) {
      await writeFile(values.out, report);
      process.stderr.write(`report written to ${values.out}\n`);
    }
  };
  const pinning = (): BenchOptions['pin'] => {
    if (!values.pin && values['pin-cores'] === undefined) return undefined;
    const parsed = parsePinning(values['pin-cores'] ?? '', cpus().length);
    if (typeof parsed === 'string') throw new Error(parsed);
    return parsed;
  };
  const list = <T extends string>(
    value: string | undefined,
    known: readonly T[],
    what: string,
  ): T[] => {
    if (value === undefined) return [...known];
    const items = value.split(',').map((t) => t.trim()) as T[];
    for (const t of items) {
      if (!known.includes(t)) throw new Error(`unknown ${what} ${t} (known: ${known.join(', ')})`);
    }
    return items;
  };
  if (values.attack && values.chaos) throw new Error('--attack and --chaos are separate runs');
  if (values.attack) {
    const target = (values['attack-target'] ?? 'mmp0') as AttackTarget;
    if (!ATTACK_TARGETS.includes(target))
      throw new Error(`--attack-target: one of ${ATTACK_TARGETS.join(', ')}`);
    const report = await runAttackBench({
      target,
      kinds: list<AttackKind>(values['attack-kinds'], ATTACK_KINDS, 'attacker kind'),
      phaseSeconds: number(values['attack-seconds'], quick ? 8 : 20, 'attack-seconds'),
      leadSeconds: number(values['attack-lead'], quick ? 6 : 8, 'attack-lead'),
      pin: pinning(),
      log,
    });
    await emit(formatAttackReport(report));
    return 0;
  }
  if (values.chaos) {
    const report = await runChaosBench({
      faults: list<FaultKind>(values['chaos-faults'], FAULT_KINDS, 'fault'),
      threads: Math.round(number(values['chaos-threads'], 2, 'chaos-threads')),
      preSeconds: number(values['chaos-pre'], 5, 'chaos-pre'),
      postSeconds: number(values['chaos-post'], quick ? 10 : 15, 'chaos-post'),
      slapdDownSeconds: 5,
      storeStopSeconds: 20,
      concurrency: 8,
      longSessions: 20,
      log,
    });
    await emit(formatChaosReport(report));
    return 0;
  }
  const pin = pinning();
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
    idleSettleSeconds:
      values['idle-settle'] === '0'
        ? 0
        : number(
            values['idle-settle'],
            quick ? IDLE_SETTLE_SECONDS.quick : IDLE_SETTLE_SECONDS.full,
            'idle-settle',
          ),
    ...(values['idle-threads'] === undefined
      ? {}
      : { idleThreads: Math.round(number(values['idle-threads'], 0, 'idle-threads')) }),
    idle: !values['no-idle'],
    throughput: !values['idle-only'],
    maxMemoryDrop: number(values['max-memory-gib'], 8, 'max-memory-gib') * 1024 ** 3,
    targets,
    nginxProxyBuffer: values['nginx-proxy-buffer'],
    pin,
    log,
  };
  const results = await runBench(options);
  await emit(formatReport(results));
  if (values.json !== undefined)
    await writeFile(values.json, `${JSON.stringify(results, null, 1)}\n`);
  if (values.chart !== undefined) {
    await writeFile(values.chart, chartSvg(results));
    process.stderr.write(`chart written to ${values.chart}\n`);
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
