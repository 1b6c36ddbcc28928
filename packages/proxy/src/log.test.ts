import { chmod, mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { logFileName, msUntilMidnight, openLogFile } from './log.js';

const LOG_MODULE = fileURLToPath(new URL('../dist/log.js', import.meta.url));

describe('log file', () => {
  it('is named after the local date, MMP_yyyymmdd.log', () => {
    expect(logFileName(new Date(2026, 0, 5, 23, 59))).toBe('MMP_20260105.log');
  });

  it('rolls at the next local midnight', () => {
    expect(msUntilMidnight(new Date(2026, 0, 5, 23, 59, 0, 0))).toBe(60_000);
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
