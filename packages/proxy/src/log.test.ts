import { chmod, mkdtemp, readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { logFileName, msUntilMidnight, openLogFile } from './log.js';

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
    const dir = await mkdtemp(join(tmpdir(), 'mmp-log-roll-'));
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
    // The day's file has long been open when midnight comes: wait until the record is on disk.
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
    const dir = await mkdtemp(join(tmpdir(), 'mmp-log-ro-'));
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
