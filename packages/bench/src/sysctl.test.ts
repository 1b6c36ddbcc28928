import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { raiseSysctl } from './sysctl.js';

const dir = mkdtempSync(join(tmpdir(), 'mmp-sysctl-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A stand-in for a /proc/sys file holding one number, raised to at least 16384. */
function backlog(text: string) {
  const file = join(dir, 'netdev_max_backlog');
  writeFileSync(file, text);
  const setting = {
    file,
    parse: (t: string) => (/^\d+\n?$/.test(t) ? Number(t) : undefined),
    format: String,
    raise: (n: number) => (n < 16384 ? 16384 : undefined),
  };
  return { file, setting };
}

describe('raiseSysctl', () => {
  it('raises the setting and puts the old value back', () => {
    const { file, setting } = backlog('1000\n');
    const r = raiseSysctl(setting);
    expect(r).toMatchObject({ value: 16384 });
    expect(readFileSync(file, 'utf8')).toBe('16384\n');
    if ('restore' in r) r.restore();
    expect(readFileSync(file, 'utf8')).toBe('1000\n');
  });

  it('leaves a value already high enough, and says why', () => {
    const { file, setting } = backlog('65536\n');
    expect(raiseSysctl(setting)).toEqual({ unchanged: 'already 65536' });
    expect(readFileSync(file, 'utf8')).toBe('65536\n');
  });

  it('leaves what it cannot read or understand', () => {
    const { setting } = backlog('many\n');
    expect(raiseSysctl(setting)).toEqual({ unchanged: `unexpected ${setting.file}: many` });
    expect(raiseSysctl({ ...setting, file: join(dir, 'missing') })).toMatchObject({
      unchanged: expect.stringMatching(/^cannot read /),
    });
  });
});
