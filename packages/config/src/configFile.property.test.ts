/**
 * Property tests (issue 13, point 7) for ImapMMP.config / PopMMP.config and
 * /etc/netscape.mmp.conf: the writer and the reader agree on every value, and no input makes
 * the reader throw. `pnpm fuzz` runs them with MMP_FUZZ_RUNS cases.
 */
import fc from 'fast-check';
import { describe, expect } from 'vitest';
import { parseConfigFile, readMmpConf, writeConfigFile, writeMmpConf } from './configFile.js';
import { type ParamName, allParameters } from './parameters.js';
import { anyText, lineText, soup } from './test-support/arbitraries.js';
import { fuzzTest } from '@mmp/testbed/fuzz';

const SHELL_TOKENS = [
  '\n',
  ' ',
  '\t',
  ';',
  '#',
  '=',
  "'",
  '"',
  '\\',
  '\\\n',
  '$',
  '`',
  '|',
  'export ',
  'setenv ',
  'ListenPort',
  'BindPassword',
  'LDAPAuth',
  "'\\''",
  '\r\n',
];

const names = allParameters().map((p) => p.name);

describe('config file properties', () => {
  fuzzTest(
    'configFile round trip: write then read gives the same values',
    fc.property(
      fc.array(fc.tuple(fc.constantFrom(...names), lineText(40)), { maxLength: 12 }),
      fc.constantFrom('imap' as const, 'pop3' as const),
      (pairs, protocol) => {
        const values: Partial<Record<ParamName, string>> = Object.fromEntries(pairs);
        const r = parseConfigFile(writeConfigFile(protocol, values), 'ImapMMP.config');
        expect(r.ok).toBe(true);
        if (!r.ok) return;
        expect(Object.fromEntries([...r.value].map(([n, e]) => [n, e.raw]))).toEqual(values);
      },
    ),
    300,
  );

  fuzzTest(
    'configFile any input: no exception, errors are values with a line',
    fc.property(fc.oneof(soup(SHELL_TOKENS), anyText(300)), (text) => {
      const r = parseConfigFile(text, 'f.config');
      if (r.ok) {
        for (const e of r.value.values()) expect(typeof e.raw).toBe('string');
      } else {
        expect(r.error.length).toBeGreaterThan(0);
        for (const p of r.error) expect(p.where).toMatch(/^f\.config:\d+$/);
      }
    }),
    1000,
  );

  fuzzTest(
    'netscape.mmp.conf round trip and any input',
    fc.property(
      lineText(60).filter((s) => s !== ''),
      soup(SHELL_TOKENS),
      (root, junk) => {
        expect(readMmpConf(writeMmpConf(root), 'm.conf')).toEqual({ ok: true, value: root });
        const r = readMmpConf(junk, 'm.conf');
        expect(typeof r.ok).toBe('boolean');
      },
    ),
    300,
  );
});
