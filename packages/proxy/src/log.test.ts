import { chmod, readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { tempDir } from './test-support/tempDirs.js';
import {
  type LogFile,
  escapeText,
  guideLine,
  logFileName,
  msUntilMidnight,
  openLogFile,
  textRecord,
} from './log.js';
import { LOG_BATCH_BYTES, LOG_BATCH_MS } from './limits.js';
import { preAuthMessage } from './preauth.js';

const LOG_MODULE = fileURLToPath(new URL('../dist/log.js', import.meta.url));

describe('log file', () => {
  it('is named after the local date, MMP_yyyymmdd.log', () => {
    expect(logFileName(new Date(2026, 0, 5, 23, 59))).toBe('MMP_20260105.log');
  });

  it('rolls at the next local midnight', () => {
    expect(msUntilMidnight(new Date(2026, 0, 5, 23, 59, 0, 0))).toBe(60_000);
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  it("writes into the next day's file after local midnight", async () => {
    const dir = await tempDir('mmp-log-roll-');
    let clock = new Date(2026, 0, 5, 23, 59, 59, 900);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const file = openLogFile({
      dir,
      level: 1,
      protocol: 'imap',
      warn: () => undefined,
      now: () => clock,
    });
    file.log.at('session', 'connect', 'before midnight');
    // The day's file has long been open when midnight comes: end the record's write window, then
    // wait until the record is on disk.
    vi.advanceTimersByTime(LOG_BATCH_MS);
    const first = join(dir, 'MMP_20260105.log');
    for (let i = 0; i < 1000; i++) {
      if ((await readFile(first, 'utf8').catch(() => '')).includes('before midnight')) break;
      await new Promise((r) => setImmediate(r));
    }
    clock = new Date(2026, 0, 6, 0, 0, 0, 50);
    vi.advanceTimersByTime(200);
    expect(file.path).toBe(join(dir, 'MMP_20260106.log'));
    file.log.at('session', 'connect', 'after midnight');
    vi.useRealTimers();
    // Closed at once: what was written during the reopen still reaches the new file.
    await file.close();
    expect((await readdir(dir)).sort()).toEqual(['MMP_20260105.log', 'MMP_20260106.log']);
    expect(await readFile(join(dir, 'MMP_20260105.log'), 'utf8')).toContain('before midnight');
    const after = await readFile(join(dir, 'MMP_20260106.log'), 'utf8');
    expect(after).toContain('after midnight');
    expect(after).not.toContain('before midnight');
    // The file opened at midnight is as private as the first.
    expect((await stat(join(dir, 'MMP_20260106.log'))).mode & 0o777).toBe(0o600);
  });

  it('is not written when LogDir does not exist, with one warning', () => {
    const warnings: string[] = [];
    const file = openLogFile({
      dir: '/nonexistent/mmp-logs',
      level: 10,
      protocol: 'imap',
      warn: (m) => warnings.push(m),
    });
    expect(file.path).toBeUndefined();
    file.log.at('session', 'connect', 'nothing happens');
    expect(warnings).toEqual([expect.stringContaining('does not exist')]);
  });

  it('is not written, and does not crash, when the user cannot write LogDir', async () => {
    const dir = await tempDir('mmp-log-ro-');
    await chmod(dir, 0o755);
    // As root every directory is writable: run the check as `nobody`, as mmp-setup's scripts do.
    const asOther =
      process.getuid?.() === 0
        ? ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups']
        : [];
    if (asOther.length === 0) await chmod(dir, 0o555);
    const script = `
      const { openLogFile } = await import(${JSON.stringify(LOG_MODULE)});
      const f = openLogFile({ dir: ${JSON.stringify(dir)}, level: 10, protocol: 'imap', warn: (m) => console.log('WARN ' + m) });
      f.log.at('session', 'connect', 'a record');
      await f.close();
      console.log('path=' + f.path);
    `;
    const [cmd, ...args] = [...asOther, process.execPath, '--input-type=module', '-e', script];
    const r = await execa(cmd ?? process.execPath, args, { reject: false });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('is not writable by this user');
    expect(r.stdout).toContain('path=undefined');
    expect(await readdir(dir)).toEqual([]);
  });
});

/** Open a log in a fresh directory, write with `write`, close, and return the file's lines. */
async function written(
  format: 'text' | 'json' | undefined,
  write: (file: LogFile) => void,
): Promise<string[]> {
  const dir = await tempDir('mmp-log-format-');
  const file = openLogFile({ dir, level: 10, protocol: 'imap', format, warn: () => undefined });
  write(file);
  await file.close();
  const text = await readFile(file.path ?? '', 'utf8');
  expect(text.endsWith('\n')).toBe(true);
  return text.slice(0, -1).split('\n');
}

const STAMP = '\\d{8} \\d{6}';
const FORGED = '\r\n20261202 120000 (sid 0x1) admin pre-authenticated - 1.2.3.4';

describe('text records (LogFormat=text, the default)', () => {
  it("are the guide's `yyyymmdd hhmmss (sid 0x…) message`, then key=value fields", async () => {
    const lines = await written(undefined, (f) => {
      f.log.at('lifecycle', 'start', 'ImapProxy listening', { address: '127.0.0.1:143' });
      const s = f.log.child({ sid: '0x2a' });
      s.at('session', 'connect', 'client connected', {
        client: '127.0.0.1:50000',
        tls: false,
        tag: null,
        skipped: undefined,
        note: 'two words',
        empty: '',
        quote: 'a"b=c',
      });
      s.error('store', 'store connection failed', { error: 'ECONNREFUSED' });
    });
    expect(lines).toHaveLength(3);
    const pid = process.pid;
    expect(lines[0]).toMatch(
      new RegExp(
        `^${STAMP} \\(sid -\\) ImapProxy listening phase=start address=127\\.0\\.0\\.1:143 proto=imap lvl=0 pid=${pid}$`,
      ),
    );
    expect(lines[1]).toMatch(
      new RegExp(
        `^${STAMP} \\(sid 0x2a\\) client connected phase=connect client=127\\.0\\.0\\.1:50000 tls=false tag=- note="two words" empty="" quote="a\\\\"b=c" proto=imap lvl=1 pid=${pid}$`,
      ),
    );
    expect(lines[2]).toMatch(
      / store connection failed phase=store error=ECONNREFUSED proto=imap lvl=0 level=error pid=\d+$/,
    );
  });

  it('writes the PreAuth record exactly as the guide gives it', async () => {
    const lines = await written('text', (f) => {
      f.log
        .child({ sid: '0x1f00' })
        .guide('session', 'pre-authentication', preAuthMessage('alice', '192.0.2.7'), {
          cached: false,
        });
    });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      new RegExp(`^${STAMP} \\(sid 0x1f00\\) alice pre-authenticated - 192\\.0\\.2\\.7$`),
    );
  });

  it('escapes every control byte of a user name: no client can forge a record', async () => {
    const user = FORGED;
    const lines = await written('text', (f) => {
      const s = f.log.child({ sid: '0x2' });
      s.guide('session', 'pre-authentication', preAuthMessage(user, '127.0.0.1'));
      s.at('session', 'login', 'login failed: unknown user', { user });
      s.at('trace', 'command', 'C:', { verb: 'X\u0000\u001b[2J\u007f\u0085\u2028\\' });
    });
    // One record per line, and none begins as the forged one would.
    expect(lines).toHaveLength(3);
    for (const line of lines) {
      expect(line).toMatch(new RegExp(`^${STAMP} \\(sid 0x2\\) `));
      // eslint-disable-next-line no-control-regex -- no control character may remain
      expect(line).not.toMatch(/[\x00-\x1f\x7f-\x9f\u2028\u2029]/);
    }
    expect(lines[0]).toContain(
      '\\x0d\\x0a20261202 120000 (sid 0x1) admin pre-authenticated - 1.2.3.4 pre-authenticated - 127.0.0.1',
    );
    expect(lines[1]).toContain(
      'user="\\x0d\\x0a20261202 120000 (sid 0x1) admin pre-authenticated - 1.2.3.4"',
    );
    expect(lines[2]).toContain('verb=X\\x00\\x1b[2J\\x7f\\x85\\u2028\\\\');
  });

  it('escapes unambiguously: a backslash is doubled, so `\\x0d` typed is not a CR', () => {
    expect(escapeText('a\\x0d')).toBe('a\\\\x0d');
    expect(escapeText('a\r')).toBe('a\\x0d');
    const record = textRecord({
      time: new Date(2026, 11, 2, 12, 0, 0),
      sid: '0x9',
      msg: 'm',
      phase: 'p',
      lvl: 1,
      pid: 7,
    });
    expect(record).toBe('20261202 120000 (sid 0x9) m phase=p lvl=1 pid=7');
    expect(guideLine(new Date(2026, 0, 2, 3, 4, 5), '0x1', 'x')).toBe(
      '20260102 030405 (sid 0x1) x',
    );
  });
});

describe('JSON records (LogFormat=json)', () => {
  it('are the pino lines log shippers read; the PreAuth line is the msg', async () => {
    const lines = await written('json', (f) => {
      const s = f.log.child({ sid: '0x2a' });
      s.at('session', 'connect', 'client connected', { client: '127.0.0.1:50000' });
      s.guide('session', 'pre-authentication', preAuthMessage(FORGED, '127.0.0.1'), {
        cached: true,
      });
    });
    expect(lines).toHaveLength(2);
    const [connect, pre] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(connect).toMatchObject({
      level: 'info',
      pid: process.pid,
      sid: '0x2a',
      proto: 'imap',
      lvl: 1,
      phase: 'connect',
      client: '127.0.0.1:50000',
      msg: 'client connected',
    });
    expect(typeof connect?.['time']).toBe('string');
    expect(pre).toMatchObject({ sid: '0x2a', phase: 'pre-authentication', cached: true });
    expect(pre?.['msg']).toMatch(
      new RegExp(
        `^${STAMP} \\(sid 0x2a\\) \\r\\n20261202 120000 \\(sid 0x1\\) admin pre-authenticated - 1\\.2\\.3\\.4 pre-authenticated - 127\\.0\\.0\\.1$`,
      ),
    );
  });
});

describe('log file mode', () => {
  it('is 0600 even when the proxy runs with a permissive umask', async () => {
    const dir = await tempDir('mmp-log-mode-');
    const script = `
      const { openLogFile } = await import(${JSON.stringify(LOG_MODULE)});
      const f = openLogFile({ dir: ${JSON.stringify(dir)}, level: 1, protocol: 'pop3', warn: console.log });
      f.log.at('session', 'connect', 'a record');
      await f.close();
      console.log('umask=' + process.umask().toString(8));
    `;
    const r = await execa(
      'sh',
      ['-c', 'umask 000; exec "$0" --input-type=module -e "$1"', process.execPath, script],
      { reject: false },
    );
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('umask=0');
    const [name] = await readdir(dir);
    const info = await stat(join(dir, name ?? ''));
    expect(info.mode & 0o777).toBe(0o600);
    expect(await readFile(join(dir, name ?? ''), 'utf8')).toContain('a record');
  });
});

describe('log writes', () => {
  /** The log file's text after `turns` more turns of the event loop, each reading it. */
  async function textAfterTurns(path: string, turns: number, until?: string): Promise<string> {
    let text = '';
    for (let i = 0; i < turns; i++) {
      text = await readFile(path, 'utf8').catch(() => '');
      if (until !== undefined && text.includes(until)) break;
      await new Promise((r) => setImmediate(r));
    }
    return text;
  }

  it('writes the records of a window together, when the window ends', async () => {
    const dir = await tempDir('mmp-log-window-');
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const file = openLogFile({ dir, level: 1, protocol: 'imap', warn: () => undefined });
    const path = file.path ?? '';
    file.log.at('session', 'connect', 'first of the window');
    // Many turns later, each with a file read (a thread-pool round trip, as the write is), the
    // window has not ended: nothing is written. A write per turn would be on disk by now.
    expect(await textAfterTurns(path, 50)).not.toContain('first of the window');
    file.log.at('session', 'disconnect', 'second of the window');
    vi.advanceTimersByTime(LOG_BATCH_MS);
    vi.useRealTimers();
    const text = await textAfterTurns(path, 1000, 'second of the window');
    expect(text).toContain('first of the window');
    expect(text).toContain('second of the window');
    await file.close();
  });

  it('writes at once when a window holds LOG_BATCH_BYTES', async () => {
    const dir = await tempDir('mmp-log-window-');
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const file = openLogFile({ dir, level: 1, protocol: 'imap', warn: () => undefined });
    file.log.at('session', 'connect', `big ${'x'.repeat(LOG_BATCH_BYTES)} end`);
    // no timer advanced: only the size sends it
    const text = await textAfterTurns(file.path ?? '', 1000, ' end');
    vi.useRealTimers();
    expect(text).toContain(' end');
    await file.close();
  });

  it('loses no record when the process exits in the turn that made it', async () => {
    const dir = await tempDir('mmp-log-exit-');
    // The first record proves the file open; the second is made in the turn of process.exit(),
    // before any write could carry it.
    const script = `
      const { readdirSync, readFileSync } = await import('node:fs');
      const { openLogFile } = await import(${JSON.stringify(LOG_MODULE)});
      const dir = ${JSON.stringify(dir)};
      const f = openLogFile({ dir, level: 1, protocol: 'imap', warn: console.log });
      f.log.at('session', 'connect', 'first record');
      const written = () => readdirSync(dir).some((n) => readFileSync(dir + '/' + n, 'utf8').includes('first record'));
      while (!written()) await new Promise((r) => setImmediate(r));
      f.log.at('session', 'disconnect', 'last record');
      process.exit(0);
    `;
    const r = await execa(process.execPath, ['--input-type=module', '-e', script], {
      reject: false,
    });
    expect(r.exitCode).toBe(0);
    const [name] = await readdir(dir);
    const text = await readFile(join(dir, name ?? ''), 'utf8');
    expect(text).toContain('first record');
    expect(text).toContain('last record');
  });
});
