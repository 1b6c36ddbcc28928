import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { allParameters } from '@mmp/config';
import { describe, expect, it } from 'vitest';
import { dialogueSteps } from './table.js';

const here = dirname(fileURLToPath(import.meta.url));

describe('the parameter table is the one source', () => {
  it('no installer source file names a parameter in a string', () => {
    const sources = readdirSync(here, { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.includes('test-support'))
      .map((f) => ({ f, text: readFileSync(join(here, f), 'utf8') }));
    expect(sources.length).toBeGreaterThan(5);
    const names = allParameters().flatMap((p) => [p.name, ...p.aliases]);
    const hits = sources.flatMap(({ f, text }) =>
      names.filter((n) => new RegExp(`['"\`]${n}['"\`]`).test(text)).map((n) => `${f}: ${n}`),
    );
    expect(hits).toEqual([]);
  });

  it('every prompted parameter is asked, in the table order', () => {
    const steps = dialogueSteps(['imap', 'pop3'], { imap: {}, pop3: {} });
    const asked = [...new Set(steps.flatMap((s) => s.params.map((p) => p.name)))];
    const prompted = allParameters()
      .filter((p) => p.prompt !== undefined)
      .sort((a, b) => (a.prompt?.order ?? 0) - (b.prompt?.order ?? 0))
      .map((p) => p.name);
    expect(asked).toEqual(prompted);
  });
});
