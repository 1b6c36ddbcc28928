import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { removeTempDirs, tempDir } from './tempDirs.js';

describe('tempDir', () => {
  it('makes fresh directories and removes them, with what was written in them', async () => {
    const a = await tempDir('mmp-tempdirs-');
    const b = await tempDir('mmp-tempdirs-');
    expect(a).not.toBe(b);
    await writeFile(join(a, 'MMP_20261203.log'), 'a record\n');
    expect(existsSync(a) && existsSync(b)).toBe(true);
    await removeTempDirs();
    expect(existsSync(a) || existsSync(b)).toBe(false);
  });
});
