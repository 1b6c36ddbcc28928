/**
 * Property tests (issue 13, point 7) for the command line (Table 13.4 flags and the long forms):
 * no argv makes parsing or cliAction throw, and an argv generated from the table gives exactly
 * the values it names, which `install` prints and reads back.
 */
import fc from 'fast-check';
import { describe, expect } from 'vitest';
import { parseCommandLine } from './commandLine.js';
import { type ParamName, type ParameterSpec, allParameters } from './parameters.js';
import { type ConfigFs, cliAction, resolveConfig } from './resolve.js';
import { anyText, soup, validValue } from './test-support/arbitraries.js';
import { fuzzTest } from '@mmp/testbed/fuzz';
import { ok } from './types.js';

const specs = allParameters();
const noFiles: ConfigFs = { readFile: () => ok(null), subdirectories: () => [] };

const ARG_TOKENS = [
  ...specs.flatMap((p) => (p.flag === undefined ? [] : [p.flag])),
  ...specs.flatMap((p) => [p.name, ...p.aliases].map((n) => `--${n}`)),
  ...specs.map((p) => `--${p.name}=`),
  'install',
  '-h',
  '-n',
  '-f',
  '--',
  '-',
  '=',
  'yes',
  'no',
  '143',
  '',
];

const anyArg = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...ARG_TOKENS) },
  { weight: 1, arbitrary: soup(ARG_TOKENS, 3) },
  { weight: 1, arbitrary: anyText(12) },
);

type Given = {
  spec: ParameterSpec & { name: ParamName };
  args: string[];
  value: string;
  flag: string;
};

/** One parameter given in one of the forms its table entry allows. */
const givenArg: fc.Arbitrary<Given> = fc.constantFrom(...specs).chain((spec) => {
  const value = validValue(spec).filter((v) => !v.startsWith('-'));
  const names = [spec.name, ...spec.aliases];
  const forms: fc.Arbitrary<Given>[] = [
    fc
      .tuple(fc.constantFrom(...names), value)
      .map(([n, v]) => ({ spec, args: [`--${n}=${v}`], value: v, flag: `--${n}` })),
  ];
  if (spec.kind === 'boolean')
    forms.push(
      fc
        .constantFrom(...names)
        .map((n) => ({ spec, args: [`--${n}`], value: 'yes', flag: `--${n}` })),
    );
  else
    forms.push(
      fc
        .tuple(fc.constantFrom(...names), value)
        .map(([n, v]) => ({ spec, args: [`--${n}`, v], value: v, flag: `--${n}` })),
    );
  const short = spec.flag;
  if (short !== undefined && spec.flagValue !== undefined && spec.name !== 'SSLEnable')
    forms.push(fc.constant({ spec, args: [short], value: spec.flagValue, flag: short }));
  else if (short !== undefined && spec.flagValue === undefined)
    forms.push(value.map((v) => ({ spec, args: [short, v], value: v, flag: short })));
  return fc.oneof(...forms);
});

describe('command line properties', () => {
  fuzzTest(
    'commandLine any argv and environment: no exception, failures are values',
    fc.property(
      fc.array(anyArg, { maxLength: 12 }),
      fc.dictionary(fc.constantFrom(...specs.map((p) => p.name), 'MMP_CONFIG_FILE'), anyText(10), {
        maxKeys: 3,
      }),
      fc.constantFrom('imap' as const, 'pop3' as const),
      (argv, env, protocol) => {
        const r = parseCommandLine(protocol, argv);
        if (!r.ok)
          expect(r.error.message).toMatch(/\((ImapProxy|PopProxy) -h lists the options\)$/);
        const a = cliAction(protocol, argv, env, noFiles);
        if (a.kind === 'fail') expect(a.exitCode).toBe(2);
      },
    ),
    1000,
  );

  fuzzTest(
    'commandLine generated argv gives the values it names, in any form',
    fc.property(
      fc.array(givenArg, { maxLength: 8 }),
      fc.constantFrom('imap' as const, 'pop3' as const),
      (given, protocol) => {
        const r = parseCommandLine(
          protocol,
          given.flatMap((g) => g.args),
        );
        if (!r.ok) throw new Error(JSON.stringify(r.error));
        const values: Record<string, string> = {};
        const flags: Record<string, string> = {};
        for (const g of given) {
          values[g.spec.name] = g.value;
          flags[g.spec.name] = g.flag;
        }
        expect(r.value.values).toEqual(values);
        expect(r.value.flags).toEqual(flags);
      },
    ),
    500,
  );

  fuzzTest(
    'commandLine install prints every option given and reads back the same values',
    fc.property(
      fc.array(givenArg, { maxLength: 6 }),
      fc.constantFrom('imap' as const, 'pop3' as const),
      (given, protocol) => {
        const argv = given.flatMap((g) => g.args);
        const direct = resolveConfig({ protocol, commandLine: cl(protocol, argv), env: {} });
        const a = cliAction(protocol, ['install', ...argv], {}, noFiles);
        if (!direct.ok) {
          expect(a.kind).toBe('fail');
          return;
        }
        if (a.kind !== 'install') throw new Error(JSON.stringify(a));
        for (const g of given) expect(a.text).toContain(`export ${g.spec.name}\n`);
        const fs: ConfigFs = {
          readFile: (p) => ok(p === '/i.config' ? a.text : null),
          subdirectories: () => [],
        };
        const back = cliAction(protocol, ['-f', '/i.config'], {}, fs);
        if (back.kind !== 'run') throw new Error(JSON.stringify(back));
        expect(back.config.values).toEqual(direct.value.values);
      },
    ),
    300,
  );
});

function cl(protocol: 'imap' | 'pop3', argv: string[]) {
  const r = parseCommandLine(protocol, argv);
  if (!r.ok) throw new Error(r.error.message);
  return r.value;
}
