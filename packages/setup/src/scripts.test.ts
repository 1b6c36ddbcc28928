/**
 * The generated start scripts, run for real with /bin/sh against stand-in proxies: a small Node
 * program that reports its environment and listens like the proxy would, and one that dies.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { waitUntil } from '@mmp/testbed';
import { applyPlan } from './apply.js';
import type { Answers } from './dialogue.js';
import { planInstance } from './plan.js';
import { systemdUnit } from './scripts.js';
import { type TempDir, tempDir } from './test-support/fixtures.js';

let tmp: TempDir;
beforeEach(() => {
  tmp = tempDir();
});
afterEach(async () => {
  // Never leave a stand-in running, whatever failed.
  for (const f of ['ImapMMP', 'PopMMP']) {
    const script = join(tmp.path, 'mmp', 'MMP_t', f);
    if (existsSync(script)) await execa(script, ['stop'], { reject: false });
  }
  tmp.cleanup();
});

/** A free TCP port on loopback. */
async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const addr = srv.address();
  await new Promise((r) => srv.close(r));
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  return addr.port;
}

// Stand-ins for ImapProxy: they read the -f file they are given (as the proxy does), report how
// they were started, and listen or die like it.
const FAKE_PROXY = `
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { spawn } from 'node:child_process';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
const file = process.argv[process.argv.indexOf('-f') + 1];
const text = readFileSync(file, 'utf8');
const port = Number(/^ListenPort='(?:.*:)?(\\d+)'$/m.exec(text)[1]);
process.on('SIGHUP', () => console.log('fake proxy got SIGHUP'));
process.on('SIGUSR1', () => console.log('fake proxy got SIGUSR1'));
process.on('SIGTERM', () => {
  console.log('fake proxy stopping');
  console.error('ImapProxy: stopped (pid ' + process.pid + ')');
  srv.close();
  process.exit(0);
});
// A bug that escapes every guard (crash.ts: exit 70), once it served: the file 'crash' says when.
setInterval(() => { try { readFileSync('crash'); process.exit(70); } catch {} }, 50);
// A hand-over as the real proxy does it, minus the shared sockets: a new process, then drain.
process.on('SIGUSR2', () => srv.close(() => {
  const child = spawn(process.execPath, process.argv.slice(1), { stdio: 'inherit', detached: true });
  child.unref();
  setTimeout(() => { console.error('ImapProxy: handed over to pid ' + child.pid + '; draining'); process.exit(0); }, 300);
}));
writeFileSync('proxy-report.tmp', JSON.stringify({
  uid: process.getuid(), cwd: process.cwd(), argv: process.argv.slice(1), execArgv: process.execArgv,
  env: Object.keys(process.env).sort(), sid: process.pid,
}));
renameSync('proxy-report.tmp', 'proxy-report.json');
const srv = createServer((s) => s.end('* OK fake\\r\\n')).listen(port, '127.0.0.1', () =>
  console.error('ImapProxy: listening on 127.0.0.1:' + port));
`;

const DYING_PROXY = `console.error('ImapProxy: ImapMMP.config:3: unknown parameter ListenPrt (did you mean ListenPort?)'); process.exit(2);`;

async function install(
  proxySource: string,
  values: Answers['values'] = { imap: {}, pop3: {} },
): Promise<string> {
  const bin = join(tmp.path, 'proxy.mjs');
  writeFileSync(bin, proxySource);
  const answers: Answers = {
    user: 'root',
    root: join(tmp.path, 'mmp'),
    instance: 't',
    services: ['imap'],
    values,
  };
  const plan = planInstance(answers, {
    runtime: { proxies: { imap: bin, pop3: bin }, setup: bin, kind: 'checkout', missing: [] },
    confPath: join(tmp.path, 'conf'),
  });
  const r = await applyPlan(plan);
  if (!r.ok) throw new Error(r.error);
  return join(plan.instanceDir, 'ImapMMP');
}

/**
 * A process is running unless it is gone or a zombie. (Detached proxies are re-parented to PID 1,
 * which in some containers reaps late, so /proc/PID can outlive the process for a moment.)
 */
function running(pid: string): boolean {
  try {
    return !/^State:\s*Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

const pidIn = (dir: string, file: string): string => readFileSync(join(dir, file), 'utf8').trim();

function parentOf(pid: string): string {
  return /^PPid:\s*(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '';
}

/** The pid the pid file names once it names a running process other than `old`. */
async function nextProxy(dir: string, old: string): Promise<string> {
  let pid = '';
  await waitUntil('a new proxy', () => {
    pid = readFileSync(join(dir, 'ImapMMP.pid'), 'utf8').trim();
    return Promise.resolve(
      pid !== old &&
        running(pid) &&
        existsSync(join(dir, 'proxy-report.json')) &&
        String(report(dir).sid) === pid,
    );
  });
  return pid;
}

/** What the listener on `port` says first, once it listens (a restarted stand-in writes its
 * report before it binds). */
async function greeting(port: number): Promise<string> {
  let text = '';
  await waitUntil(`a greeting on ${port}`, async () => {
    const s = connect(port, '127.0.0.1');
    s.setEncoding('utf8');
    try {
      [text] = (await once(s, 'data')) as [string];
      return true;
    } catch {
      return false; // ECONNREFUSED: not listening yet
    } finally {
      s.destroy();
    }
  });
  return text;
}

const run = (script: string, verb: string): ReturnType<typeof execa> =>
  execa(script, [verb], { reject: false });

const report = (dir: string): Record<string, unknown> =>
  JSON.parse(readFileSync(join(dir, 'proxy-report.json'), 'utf8')) as Record<string, unknown>;

/** An instance of the stand-in proxy on a free loopback port: its start script and directory. */
async function listeningInstance(): Promise<{ port: number; script: string; dir: string }> {
  const port = await freePort();
  const script = await install(FAKE_PROXY, {
    imap: { ListenPort: `127.0.0.1:${port}` },
    pop3: {},
  });
  return { port, script, dir: join(tmp.path, 'mmp', 'MMP_t') };
}

describe('the ImapMMP start script', () => {
  it('status reports "not running" with exit 3 before any start', async () => {
    const script = await install(FAKE_PROXY);
    const r = await run(script, 'status');
    expect(r.exitCode).toBe(3);
    expect(r.stdout).toBe('ImapMMP (t): not running');
  });

  it('status is 1 with a stale pid file, and stop cleans it', async () => {
    const script = await install(FAKE_PROXY);
    writeFileSync(join(tmp.path, 'mmp', 'MMP_t', 'ImapMMP.pid'), '999999\n');
    const st = await run(script, 'status');
    expect(st.exitCode).toBe(1);
    expect(st.stdout).toContain('stale pid file');
    const stop = await run(script, 'stop');
    expect(stop.exitCode).toBe(0);
    expect(stop.stdout).toBe('ImapMMP (t): not running');
    expect(existsSync(join(tmp.path, 'mmp', 'MMP_t', 'ImapMMP.pid'))).toBe(false);
  });

  it('start runs MMPRoot/bin/ImapProxy on its file, detached, with a clean environment; stop ends it', async () => {
    const port = await freePort();
    const script = await install(FAKE_PROXY, {
      imap: { ListenPort: `127.0.0.1:${port}`, BindPass: "pa$$ 'word'", BaseDN: 'o=x' },
      pop3: {},
    });
    const dir = join(tmp.path, 'mmp', 'MMP_t');
    // What an operator's shell may hold: none of it may reach the proxy.
    const start = await execa(script, ['start'], {
      reject: false,
      env: { ListenPort: '1', NODE_OPTIONS: '--inspect', BindPass: 'from-env', TZ: 'UTC' },
    });
    expect(start.stderr).toBe('');
    expect(start.exitCode).toBe(0);
    const pid = readFileSync(join(dir, 'ImapMMP.pid'), 'utf8').trim();
    expect(start.stdout).toBe(`ImapMMP (t): started (pid ${pid})`);

    const r = report(dir);
    // The pid file names the proxy itself (exec all the way), in the instance directory.
    expect(String(r.sid)).toBe(pid);
    expect(r.cwd).toBe(dir);
    expect(r.argv).toEqual([join(tmp.path, 'proxy.mjs'), '-f', join(dir, 'ImapMMP.config')]);
    // (PWD: the launcher's /bin/sh sets it.)
    expect(r.env).toEqual(['LANG', 'PATH', 'PWD', 'TZ']);
    // Node runs it with the proxy's own flags (a bounded young generation), from the launcher.
    expect(r.execArgv).toEqual(['--max-semi-space-size=2']);
    // Detached: its own session.
    const sid = (await execa('ps', ['-o', 'sid=', '-p', pid])).stdout.trim();
    expect(sid).toBe(pid);

    expect((await run(script, 'status')).exitCode).toBe(0);
    const again = await run(script, 'start');
    expect(again.stdout).toBe(`ImapMMP (t): already running (pid ${pid})`);

    const stop = await run(script, 'stop');
    expect(stop.exitCode).toBe(0);
    expect(stop.stdout).toBe('ImapMMP (t): stopped');
    expect(running(pid)).toBe(false);
    expect(existsSync(join(dir, 'ImapMMP.pid'))).toBe(false);
    expect((await run(script, 'status')).exitCode).toBe(3);
    expect(readFileSync(join(dir, 'ImapMMP.out'), 'utf8')).toBe(
      `ImapProxy: listening on 127.0.0.1:${port}\nfake proxy stopping\nImapProxy: stopped (pid ${pid})\n`,
    );
  });

  it('reload sends SIGHUP and reopen SIGUSR1 to the running proxy; neither runs a stopped one', async () => {
    const { script, dir } = await listeningInstance();
    expect((await run(script, 'start')).exitCode).toBe(0);
    const pid = readFileSync(join(dir, 'ImapMMP.pid'), 'utf8').trim();
    const reload = await run(script, 'reload');
    expect(reload.exitCode).toBe(0);
    expect(reload.stdout).toBe(`ImapMMP (t): reload requested (SIGHUP sent to pid ${pid})`);
    const reopen = await run(script, 'reopen');
    expect(reopen.exitCode).toBe(0);
    expect(reopen.stdout).toBe(`ImapMMP (t): log files reopened (SIGUSR1 sent to pid ${pid})`);
    expect((await run(script, 'stop')).exitCode).toBe(0);
    expect(readFileSync(join(dir, 'ImapMMP.out'), 'utf8')).toContain(
      'fake proxy got SIGHUP\nfake proxy got SIGUSR1\nfake proxy stopping\n',
    );
    const stopped = await run(script, 'reload');
    expect(stopped.exitCode).toBe(7);
    expect(stopped.stdout).toBe('ImapMMP (t): not running');
  });

  it('restart hands over to a new process (SIGUSR2) and records its pid', async () => {
    const port = await freePort();
    const script = await install(FAKE_PROXY, {
      imap: { ListenPort: `127.0.0.1:${port}` },
      pop3: {},
    });
    const pidFile = join(tmp.path, 'mmp', 'MMP_t', 'ImapMMP.pid');
    expect((await run(script, 'start')).exitCode).toBe(0);
    const first = readFileSync(pidFile, 'utf8').trim();
    const r = await run(script, 'restart');
    expect(r.exitCode).toBe(0);
    const second = readFileSync(pidFile, 'utf8').trim();
    expect(second).not.toBe(first);
    await waitUntil('the old process gone', () => Promise.resolve(!running(first)));
    expect(r.stdout).toBe(
      `ImapMMP (t): restarted (pid ${second}; pid ${first} serves its sessions to their end)`,
    );
  });

  it('start supervises the proxy: one killed (SIGKILL) is started again and serves; stop ends both, no restart after it', async () => {
    const { port, script, dir } = await listeningInstance();
    expect((await run(script, 'start')).exitCode).toBe(0);
    const first = pidIn(dir, 'ImapMMP.pid');
    const supervisor = pidIn(dir, 'ImapMMP.supervisor.pid');
    expect(running(supervisor)).toBe(true);
    // The proxy is the supervisor's child, in a session of its own.
    expect(parentOf(first)).toBe(supervisor);

    process.kill(Number(first), 'SIGKILL');
    const second = await nextProxy(dir, first);
    expect(parentOf(second)).toBe(supervisor);
    expect(await greeting(port)).toBe('* OK fake\r\n');
    expect(readFileSync(join(dir, 'ImapMMP.out'), 'utf8')).toMatch(
      new RegExp(
        `ImapMMP \\(t\\): \\S+Z the proxy \\(pid ${first}\\) was killed by SIGKILL; starting it again in 1s\n`,
      ),
    );
    const st = await run(script, 'status');
    expect([st.exitCode, st.stdout]).toEqual([0, `ImapMMP (t): running (pid ${second})`]);

    const stop = await run(script, 'stop');
    expect([stop.exitCode, stop.stdout]).toEqual([0, 'ImapMMP (t): stopped']);
    expect(running(supervisor)).toBe(false);
    expect(running(second)).toBe(false);
    expect(existsSync(join(dir, 'ImapMMP.supervisor.pid'))).toBe(false);
    expect((await run(script, 'status')).exitCode).toBe(3);
  });

  it('a proxy that keeps crashing is started again after 1 s, then 2 s, capped at MMP_RESTART_MAX; stop during the wait ends the supervisor', async () => {
    const { script, dir } = await listeningInstance();
    const env = { MMP_RESTART_MAX: '2' };
    expect((await execa(script, ['start'], { reject: false, env })).exitCode).toBe(0);
    const supervisor = pidIn(dir, 'ImapMMP.supervisor.pid');
    // Every proxy from now on exits 70 as soon as it looks.
    writeFileSync(join(dir, 'crash'), '');
    const out = join(dir, 'ImapMMP.out');
    const restarts = (): string[] =>
      [
        ...readFileSync(out, 'utf8').matchAll(
          /exited with status 70; starting it again in (\d+)s/g,
        ),
      ].map((m) => m[1] ?? '');
    await waitUntil('three restarts', () => Promise.resolve(restarts().length >= 3), {
      timeoutMs: 30_000,
    });
    expect(restarts().slice(0, 3)).toEqual(['1', '2', '2']);
    const st = await run(script, 'status');
    expect(
      st.exitCode === 0 ||
        String(st.stdout).includes(`its supervisor (pid ${supervisor}) starts it again`),
    ).toBe(true);

    const stop = await run(script, 'stop');
    expect(stop.exitCode).toBe(0);
    expect(running(supervisor)).toBe(false);
    const proxies = (await execa('pgrep', ['-f', join(dir, 'ImapMMP.config')], { reject: false }))
      .stdout;
    expect(proxies).toBe('');
  });

  it('a proxy stopped by hand (SIGTERM, exit 0) is not started again; the supervisor goes too', async () => {
    const { script, dir } = await listeningInstance();
    expect((await run(script, 'start')).exitCode).toBe(0);
    const pid = pidIn(dir, 'ImapMMP.pid');
    const supervisor = pidIn(dir, 'ImapMMP.supervisor.pid');
    process.kill(Number(pid), 'SIGTERM');
    await waitUntil('the supervisor gone', () => Promise.resolve(!running(supervisor)));
    expect(running(pid)).toBe(false);
    expect(readFileSync(join(dir, 'ImapMMP.out'), 'utf8')).not.toContain('starting it again');
    expect((await run(script, 'status')).exitCode).toBe(3);
  });

  it('after a hand-over the supervisor follows the new process (not its child): killed, it is started again once; stopped by hand, not', async () => {
    const { port, script, dir } = await listeningInstance();
    expect((await run(script, 'start')).exitCode).toBe(0);
    const first = pidIn(dir, 'ImapMMP.pid');
    const supervisor = pidIn(dir, 'ImapMMP.supervisor.pid');
    expect((await run(script, 'restart')).exitCode).toBe(0);
    const second = pidIn(dir, 'ImapMMP.pid');
    expect(parentOf(second)).not.toBe(supervisor);
    // The old one exits 0 once it handed over: that is no reason to start a third.
    await waitUntil('the old process gone', () => Promise.resolve(!running(first)));

    process.kill(Number(second), 'SIGKILL');
    const third = await nextProxy(dir, second);
    expect(parentOf(third)).toBe(supervisor);
    expect(await greeting(port)).toBe('* OK fake\r\n');
    const out = readFileSync(join(dir, 'ImapMMP.out'), 'utf8');
    expect(out).toContain(`the proxy (pid ${second}) ended; starting it again in 1s`);
    expect(out.match(/starting it again/g)).toHaveLength(1);
    expect(out).not.toContain(`the proxy (pid ${first})`);

    expect((await run(script, 'restart')).exitCode).toBe(0);
    const fourth = pidIn(dir, 'ImapMMP.pid');
    await waitUntil('the old process gone', () => Promise.resolve(!running(third)));
    process.kill(Number(fourth), 'SIGTERM');
    await waitUntil('the supervisor gone', () => Promise.resolve(!running(supervisor)));
    expect(readFileSync(join(dir, 'ImapMMP.out'), 'utf8').match(/starting it again/g)).toHaveLength(
      1,
    );
    expect((await run(script, 'status')).exitCode).toBe(3);
  });

  it('a proxy running without a supervisor (an older script; its supervisor killed) gets one from start, and from restart', async () => {
    const { script, dir } = await listeningInstance();
    expect((await run(script, 'start')).exitCode).toBe(0);
    const first = pidIn(dir, 'ImapMMP.pid');
    const killSupervisor = async (): Promise<void> => {
      const sup = pidIn(dir, 'ImapMMP.supervisor.pid');
      process.kill(Number(sup), 'SIGKILL');
      await waitUntil('the supervisor gone', () => Promise.resolve(!running(sup)));
    };
    await killSupervisor();

    const start = await run(script, 'start');
    expect(start.exitCode).toBe(0);
    const adopter = pidIn(dir, 'ImapMMP.supervisor.pid');
    expect(start.stdout).toBe(
      `ImapMMP (t): already running (pid ${first}), now supervised (pid ${adopter})`,
    );
    expect(running(adopter)).toBe(true);
    process.kill(Number(first), 'SIGKILL');
    const second = await nextProxy(dir, first);
    expect(parentOf(second)).toBe(adopter);
    expect(readFileSync(join(dir, 'ImapMMP.out'), 'utf8')).toContain(
      `the proxy (pid ${first}) ended; starting it again in 1s`,
    );

    await killSupervisor();
    expect((await run(script, 'restart')).exitCode).toBe(0);
    const third = pidIn(dir, 'ImapMMP.pid');
    const another = pidIn(dir, 'ImapMMP.supervisor.pid');
    expect(another).not.toBe(adopter);
    expect(running(another)).toBe(true);
    process.kill(Number(third), 'SIGKILL');
    const fourth = await nextProxy(dir, third);
    expect(parentOf(fourth)).toBe(another);

    expect((await run(script, 'stop')).exitCode).toBe(0);
    expect(running(another)).toBe(false);
    expect(running(fourth)).toBe(false);
  });

  it('start reports a proxy that refuses its configuration, with its message, and exits 1', async () => {
    const script = await install(DYING_PROXY);
    const r = await run(script, 'start');
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('ImapMMP (t): failed to start; the end of');
    expect(r.stderr).toContain('unknown parameter ListenPrt (did you mean ListenPort?)');
    expect(existsSync(join(tmp.path, 'mmp', 'MMP_t', 'ImapMMP.pid'))).toBe(false);
  });

  it('a missing launcher is named, with how to write it again (exit 5)', async () => {
    const script = await install(FAKE_PROXY);
    rmSync(join(tmp.path, 'mmp', 'bin', 'ImapProxy'));
    const r = await run(script, 'start');
    expect(r.exitCode).toBe(5);
    expect(r.stderr).toBe(
      `ImapMMP (t): ${join(tmp.path, 'mmp', 'bin', 'ImapProxy')} is missing: run mmp-setup --modify t to write it again`,
    );
  });

  it('run (for systemd) execs the proxy in the foreground under the same pid', async () => {
    const { port, script, dir } = await listeningInstance();
    const child = execa(script, ['run'], { reject: false });
    const file = join(dir, 'proxy-report.json');
    await waitUntil('the stand-in started', () => Promise.resolve(existsSync(file)));
    const seen = report(dir);
    // systemd's main pid is the proxy itself, so its SIGTERM reaches the proxy.
    expect(seen.sid).toBe(child.pid);
    expect(seen.cwd).toBe(dir);
    child.kill('SIGTERM');
    const r = await child;
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toContain(`listening on 127.0.0.1:${port}`);
    expect(existsSync(join(dir, 'ImapMMP.pid'))).toBe(false);
  });

  it('an unknown verb prints the usage and exits 2', async () => {
    const script = await install(FAKE_PROXY);
    const r = await run(script, 'frob');
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(
      /Usage: .*ImapMMP \{start\|stop\|restart\|reload\|reopen\|status\|run\}/,
    );
  });
});

describe('the systemd unit', () => {
  it('runs the script in the foreground, reloads with SIGHUP, restarts on failure, hardened, quoted for systemd', () => {
    const unit = systemdUnit({
      protocol: 'pop3',
      instance: 'a',
      root: '/srv/mail 100%',
      instanceDir: '/srv/mail 100%/MMP_a',
      logDir: '/var/log/mmp/a',
    });
    expect(unit).toContain('ExecStart="/srv/mail 100%%/MMP_a/PopMMP" run\n');
    expect(unit).toContain('ExecReload=/bin/kill -HUP $MAINPID\n');
    expect(unit).toContain('Restart=on-failure\n');
    for (const line of [
      'NoNewPrivileges=yes',
      'ProtectSystem=strict',
      'ProtectHome=yes',
      'PrivateTmp=yes',
      'ReadWritePaths="-/var/log/mmp/a"',
    ])
      expect(unit).toContain(`\n${line}\n`);
    expect(unit).not.toMatch(/^User=/m);
    expect(unit).toContain('WantedBy=multi-user.target\n');
  });

  it('is accepted by systemd-analyze verify', async () => {
    const script = await install(FAKE_PROXY);
    const unit = join(dirname(script), 'mmp-t-imap.service');
    const r = await execa('systemd-analyze', ['verify', unit], { reject: false });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
  });
});
