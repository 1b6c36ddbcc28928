/**
 * The generated start scripts, run for real with /bin/sh against stand-in proxies: a small Node
 * program that reports its environment and listens like the proxy would, and one that dies.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
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

const FAKE_PROXY = `
import { createServer } from 'node:net';
import { writeFileSync } from 'node:fs';
const port = Number(String(process.env.ListenPort).split(':').pop());
writeFileSync('proxy-report.json', JSON.stringify({
  uid: process.getuid(), cwd: process.cwd(), argv: process.argv.slice(1), execArgv: process.execArgv,
  ListenPort: process.env.ListenPort, BindPass: process.env.BindPass, BaseDN: process.env.BaseDN,
  sid: process.pid,
}));
const srv = createServer((s) => s.end('* OK fake\\r\\n')).listen(port, '127.0.0.1');
console.log('fake proxy listening on', port);
process.on('SIGTERM', () => { console.log('fake proxy stopping'); srv.close(); process.exit(0); });
`;

const DYING_PROXY = `console.error('ListenPort: cannot bind 127.0.0.1:1 (EACCES)'); process.exit(2);`;

async function install(
  proxySource: string,
  user = 'root',
  values: Answers['values'] = { imap: {}, pop3: {} },
): Promise<string> {
  const bin = join(tmp.path, 'proxy.mjs');
  writeFileSync(bin, proxySource);
  const answers: Answers = {
    user,
    root: join(tmp.path, 'mmp'),
    instance: 't',
    services: ['imap'],
    values,
  };
  const plan = planInstance(answers, {
    node: process.execPath,
    proxyBins: { imap: bin, pop3: bin },
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

const run = (script: string, verb: string): ReturnType<typeof execa> =>
  execa(script, [verb], { reject: false, env: { MMP_START_WAIT: '1' } });

describe('the ImapMMP start script', () => {
  it('status reports "not running" with exit 3 before any start', async () => {
    const script = await install(FAKE_PROXY);
    const r = await run(script, 'status');
    expect(r.exitCode).toBe(3);
    expect(r.stdout).toBe('ImapMMP (t): not running');
  });

  it('status is 1 with a stale pid file, and stop cleans it', async () => {
    const script = await install(FAKE_PROXY);
    // A pid that is alive but is not our proxy (this test process) must not count.
    writeFileSync(join(tmp.path, 'mmp', 'MMP_t', 'ImapMMP.pid'), `${process.pid}\n`);
    const st = await run(script, 'status');
    expect(st.exitCode).toBe(1);
    expect(st.stdout).toContain('stale pid file');
    const stop = await run(script, 'stop');
    expect(stop.exitCode).toBe(0);
    expect(stop.stdout).toBe('ImapMMP (t): not running');
    expect(existsSync(join(tmp.path, 'mmp', 'MMP_t', 'ImapMMP.pid'))).toBe(false);
  });

  it('start sources the config, detaches the proxy and writes its pid; stop ends it', async () => {
    const port = await freePort();
    const script = await install(FAKE_PROXY, 'root', {
      imap: { ListenPort: `127.0.0.1:${port}`, BindPass: "pa$$ 'word'", BaseDN: 'o=x' },
      pop3: {},
    });
    const dir = join(tmp.path, 'mmp', 'MMP_t');
    const start = await run(script, 'start');
    expect(start.stderr).toBe('');
    expect(start.exitCode).toBe(0);
    const pid = readFileSync(join(dir, 'ImapMMP.pid'), 'utf8').trim();
    expect(start.stdout).toBe(`ImapMMP (t): started (pid ${pid})`);

    const report = JSON.parse(readFileSync(join(dir, 'proxy-report.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    // The pid file names the proxy itself (exec all the way), running in the instance directory
    // with the config file's values in its environment, quotes and dollars intact.
    expect(String(report.sid)).toBe(pid);
    expect(report.cwd).toBe(dir);
    expect(report).toMatchObject({
      ListenPort: `127.0.0.1:${port}`,
      BindPass: "pa$$ 'word'",
      BaseDN: 'o=x',
    });
    // Node runs it with the proxy's own flags (a bounded young generation).
    expect(report.execArgv).toEqual(['--max-semi-space-size=2']);
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
      `fake proxy listening on ${port}\nfake proxy stopping\n`,
    );
  });

  it('restart gives a new process', async () => {
    const port = await freePort();
    const script = await install(FAKE_PROXY, 'root', {
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
    expect(running(first)).toBe(false);
    expect(r.stdout).toBe(`ImapMMP (t): stopped\nImapMMP (t): started (pid ${second})`);
  });

  it('start reports a proxy that dies at once, with the end of its output', async () => {
    const script = await install(DYING_PROXY);
    const r = await run(script, 'start');
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('ImapMMP (t): failed to start; the end of');
    expect(r.stderr).toContain('ListenPort: cannot bind 127.0.0.1:1 (EACCES)');
    expect(existsSync(join(tmp.path, 'mmp', 'MMP_t', 'ImapMMP.pid'))).toBe(false);
  });

  it.runIf(process.getuid?.() === 0)(
    'started by root for another user, the proxy runs as that user',
    async () => {
      const port = await freePort();
      const script = await install(FAKE_PROXY, 'nobody', {
        imap: { ListenPort: `127.0.0.1:${port}` },
        pop3: {},
      });
      const dir = join(tmp.path, 'mmp', 'MMP_t');
      // nobody must be able to reach the stand-in and write its report.
      await execa('chmod', ['755', tmp.path]);
      await execa('chmod', ['777', dir]);
      const r = await run(script, 'start');
      expect(r.stderr).toBe('');
      expect(r.exitCode).toBe(0);
      const report = JSON.parse(readFileSync(join(dir, 'proxy-report.json'), 'utf8')) as {
        uid: number;
      };
      const nobody = Number((await execa('id', ['-u', 'nobody'])).stdout);
      expect(report.uid).toBe(nobody);
      expect((await run(script, 'stop')).exitCode).toBe(0);
    },
  );

  it('run (for systemd) execs the proxy in the foreground under the same pid', async () => {
    const port = await freePort();
    const script = await install(FAKE_PROXY, 'root', {
      imap: { ListenPort: `127.0.0.1:${port}` },
      pop3: {},
    });
    const dir = join(tmp.path, 'mmp', 'MMP_t');
    const child = execa(script, ['run'], { reject: false });
    const report = join(dir, 'proxy-report.json');
    for (let i = 0; i < 100 && !existsSync(report); i++)
      await new Promise((r) => setTimeout(r, 50));
    const seen = JSON.parse(readFileSync(report, 'utf8')) as { sid: number; cwd: string };
    // systemd's main pid is the proxy itself, so its SIGTERM reaches the proxy.
    expect(seen.sid).toBe(child.pid);
    expect(seen.cwd).toBe(dir);
    child.kill('SIGTERM');
    const r = await child;
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain(`fake proxy listening on ${port}`);
    expect(existsSync(join(dir, 'ImapMMP.pid'))).toBe(false);
  });

  it('an unknown verb prints the usage and exits 2', async () => {
    const script = await install(FAKE_PROXY);
    const r = await run(script, 'frob');
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/Usage: .*ImapMMP \{start\|stop\|restart\|status\|run\}/);
  });

  it('the systemd unit runs the script in the foreground, quoted for systemd', () => {
    const unit = systemdUnit({
      protocol: 'pop3',
      instance: 'a',
      instanceDir: '/srv/mail 100%/MMP_a',
      user: 'nobody',
      node: '/usr/bin/node',
      proxy: '/x/PopProxy.js',
    });
    expect(unit).toContain('ExecStart="/srv/mail 100%%/MMP_a/PopMMP" run\n');
    expect(unit).toContain('Type=simple\n');
    expect(unit).toContain('WantedBy=multi-user.target\n');
  });
});
