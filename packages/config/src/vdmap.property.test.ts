/**
 * Property tests (issue 13, point 7) for the vdmap parser: no input makes it throw, and a valid
 * file generated from a description parses back to that description.
 */
import fc from 'fast-check';
import { describe, expect } from 'vitest';
import { allParameters } from './parameters.js';
import { anyText, ipv4, soup, validValue } from './test-support/arbitraries.js';
import { fuzzTest } from '@mmp/testbed/fuzz';
import { parseValue } from './values.js';
import { applyVirtualDomain, findVirtualDomain, parseVdmap } from './vdmap.js';
import { resolveConfig } from './resolve.js';

/** A vdmap value, always quoted: `\` and `"` escaped, as the reader unquotes them. */
const quote = (v: string): string => `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"`;

const VD_SPECS = allParameters().filter((p) => p.virtualDomain);

const domainName = fc
  .tuple(
    fc.constantFrom(...'abcdefghij'),
    fc.string({ unit: fc.constantFrom(...'xyz019-_'), maxLength: 6 }),
  )
  .map(([a, b]) => a + b);

const vdmapModel = fc
  .uniqueArray(
    fc.record({
      name: domainName,
      address: ipv4,
      props: fc.uniqueArray(
        fc
          .constantFrom(...VD_SPECS)
          .chain((spec) =>
            fc
              .tuple(fc.constantFrom(spec.name, ...spec.aliases), validValue(spec))
              .map(([spelling, raw]) => ({ spec, spelling, raw })),
          ),
        { selector: (p) => p.spec.name, maxLength: 6 },
      ),
    }),
    { selector: (d) => d.name, maxLength: 4 },
  )
  .filter((ds) => new Set(ds.map((d) => d.address)).size === ds.length);

const VDMAP_TOKENS = [
  'vdmap ',
  'airius',
  ':',
  'VDomain',
  'UidSearch',
  'SearchFormat',
  ' ',
  '"',
  '\\',
  '\n',
  '10.0.0.1',
  '::1',
  '#',
  '\r\n',
  'PreAuth yes',
];

const base = resolveConfig({
  protocol: 'imap',
  commandLine: { install: false, list: false, values: {}, flags: {} },
  env: {},
});
if (!base.ok) throw new Error('no defaults');

describe('vdmap properties', () => {
  fuzzTest(
    'vdmap any input: no exception, errors are values with a line',
    fc.property(fc.oneof(soup(VDMAP_TOKENS), anyText(300)), (text) => {
      const r = parseVdmap(text, 'vdmap');
      if (!r.ok) for (const p of r.error) expect(p.where).toMatch(/^vdmap:\d+$/);
    }),
    1000,
  );

  fuzzTest(
    'vdmap generated valid file parses to what generated it',
    fc.property(vdmapModel, fc.constantFrom('\n', '\r\n'), (model, eol) => {
      const lines = ['# generated'];
      for (const d of model) {
        lines.push(`vdmap ${d.name} ${d.address}`);
        for (const p of d.props) lines.push(`${d.name}:${p.spelling} ${quote(p.raw)}`);
        lines.push('');
      }
      const r = parseVdmap(lines.join(eol), 'vdmap');
      if (!r.ok) throw new Error(JSON.stringify(r.error));
      expect(r.value.map((d) => [d.name, d.address, d.overrides])).toEqual(
        model.map((d) => [
          d.name,
          d.address,
          Object.fromEntries(d.props.map((p) => [p.spec.name, p.raw])),
        ]),
      );
      for (const [i, d] of model.entries())
        for (const p of d.props) {
          const parsed = parseValue(p.spec, p.raw);
          expect(parsed.ok).toBe(true);
          if (parsed.ok) expect(r.value[i]?.values[p.spec.name]).toEqual(parsed.value);
        }
    }),
    300,
  );

  fuzzTest(
    'vdmap lookup and merge never throw for any local address',
    fc.property(vdmapModel, anyText(40), (model, address) => {
      const text = model
        .map((d) =>
          [
            `vdmap ${d.name} ${d.address}`,
            ...d.props.map((p) => `${d.name}:${p.spelling} ${quote(p.raw)}`),
          ].join('\n'),
        )
        .join('\n');
      const r = parseVdmap(text, 'vdmap');
      if (!r.ok) throw new Error(JSON.stringify(r.error));
      const vd =
        findVirtualDomain(r.value, address) ?? findVirtualDomain(r.value, model[0]?.address ?? '');
      if (vd !== undefined) expect(applyVirtualDomain(base.value.values, vd)).toBeTypeOf('object');
    }),
    300,
  );
});
