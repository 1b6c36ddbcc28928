/**
 * Property tests (issue 13, point 7) for the certmap parser and certificate mapping: no input
 * makes them throw, and a valid certmap.conf generated from a description parses back to it.
 */
import fc from 'fast-check';
import { describe, expect } from 'vitest';
import { mapCertificate, parseCertmap } from './certmap.js';
import { canonicalAttrType } from './dn.js';
import { anyText, attrName, dn, soup } from './test-support/arbitraries.js';
import { fuzzTest } from '@mmp/testbed/fuzz';

const mapName = fc
  .tuple(
    fc.constantFrom(...'abcdefghij'),
    fc.string({ unit: fc.constantFrom(...'xyz019-_'), maxLength: 6 }),
  )
  .map(([a, b]) => a + b);

const comps = (withTo: boolean) =>
  fc.uniqueArray(
    fc.tuple(
      fc.constantFrom('cn', 'ou', 'o', 'uid', 'e', 'mail', 'dc'),
      withTo ? fc.option(attrName) : fc.constant(null),
    ),
    {
      selector: ([f]) => f,
      maxLength: 3,
    },
  );

const certmapModel = fc
  .record({
    withDefault: fc.boolean(),
    maps: fc.uniqueArray(
      fc.record({
        name: mapName,
        issuer: dn,
        dnComps: fc.option(comps(true)),
        filterComps: fc.option(comps(true)),
        verifyCert: fc.option(fc.boolean()),
      }),
      { selector: (m) => m.name, maxLength: 4 },
    ),
  })
  .filter(({ maps }) => {
    const keys = maps.map((m) => m.issuer.toLowerCase().replace(/\s+/g, ''));
    return new Set(keys).size === keys.length && maps.every((m) => m.name !== 'default');
  });

const CERTMAP_TOKENS = [
  'certmap ',
  'default',
  ' ',
  ':',
  'DNComps',
  'FilterComps',
  'verifycert on',
  'e=mail',
  'ou=uid',
  'cn=CA, o=X',
  ',',
  '=',
  '\n',
  '#',
  '"',
  '\\',
];

describe('certmap properties', () => {
  fuzzTest(
    'certmap any input, and any certificate names: no exception',
    fc.property(
      fc.oneof(soup(CERTMAP_TOKENS), anyText(300)),
      anyText(60),
      anyText(60),
      (text, issuer, subject) => {
        const r = parseCertmap(text, 'certmap.conf');
        if (!r.ok) {
          for (const p of r.error) expect(p.where).toMatch(/^certmap\.conf:\d+$/);
          return;
        }
        const m = mapCertificate(r.value, issuer, subject);
        expect(typeof m.ok).toBe('boolean');
      },
    ),
    1000,
  );

  fuzzTest(
    'certmap generated valid file parses to what generated it',
    fc.property(certmapModel, ({ withDefault, maps }) => {
      const lines: string[] = [];
      if (withDefault)
        lines.push('certmap default default', 'default:DNComps', 'default:FilterComps e=mail');
      const written = (cs: [string, string | null][]) =>
        cs.map(([f, t]) => (t === null ? f : `${f}=${t}`)).join(', ');
      for (const m of maps) {
        lines.push(`certmap ${m.name} ${m.issuer}`);
        if (m.dnComps !== null) lines.push(`${m.name}:DNComps ${written(m.dnComps)}`);
        if (m.filterComps !== null) lines.push(`${m.name}:FilterComps ${written(m.filterComps)}`);
        if (m.verifyCert !== null)
          lines.push(`${m.name}:verifycert ${m.verifyCert ? 'on' : 'off'}`);
      }
      const r = parseCertmap(lines.join('\n'), 'certmap.conf');
      if (!r.ok) throw new Error(JSON.stringify(r.error));
      const expected = (cs: [string, string | null][], filter: boolean) =>
        cs.map(([f, t]) => ({
          from: canonicalAttrType(f),
          to: t ?? (filter && f === 'e' ? 'mail' : f),
        }));
      expect(r.value.maps.filter((m) => m.name !== 'default')).toEqual(
        maps.map((m) => {
          const out: Record<string, unknown> = {
            name: m.name,
            issuerDn: m.issuer,
            line: expect.any(Number),
            other: {},
          };
          if (m.dnComps !== null) out.dnComps = expected(m.dnComps, false);
          if (m.filterComps !== null) out.filterComps = expected(m.filterComps, true);
          if (m.verifyCert !== null) out.verifyCert = m.verifyCert;
          return out;
        }),
      );
      expect(r.value.maps.some((m) => m.name === 'default')).toBe(withDefault);
    }),
    300,
  );
});
