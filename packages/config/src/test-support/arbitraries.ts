/**
 * fast-check generators shared by the property tests: "token soup" inputs that hit a grammar's
 * special characters far more often than random text would, and valid raw values per parameter
 * kind (what a correct operator writes).
 */
import fc from 'fast-check';
import type { ParameterSpec } from '../parameters.js';

/** Non-ASCII stand-ins: multi-byte UTF-8, astral, lone surrogates, line separators, BOM. */
const WIDE = [
  'é',
  'ß',
  '€',
  '中',
  '😀',
  '\uD800',
  '\uDFFF',
  '\u2028',
  '\u2029',
  '\uFEFF',
  '\u00A0',
  '\u0085',
  '\uFFFD',
  '\u{10FFFF}',
  '\u0301',
  'Ж',
];

/**
 * Any text: every ASCII character (control characters included) and, for 0x80-0xFF, the
 * non-ASCII cases above; one integer per character keeps 10^6 cases affordable.
 */
export const anyText = (maxLength = 200): fc.Arbitrary<string> =>
  fc.string({ unit: BYTE_UNIT, maxLength });

const BYTE_UNIT = fc
  .integer({ min: 0, max: 255 })
  .map((b) => (b < 0x80 ? String.fromCharCode(b) : (WIDE[b & 15] ?? '')));

/** Text made of a grammar's tokens and random bits, joined. */
export const soup = (tokens: readonly string[], maxTokens = 40): fc.Arbitrary<string> =>
  fc
    .array(
      fc.oneof(
        { weight: 3, arbitrary: fc.constantFrom(...tokens) },
        { weight: 1, arbitrary: anyText(4) },
      ),
      { maxLength: maxTokens },
    )
    .map((parts) => parts.join(''));

/** One line of text: no CR, LF or NUL (parseValue refuses those in every value). */
export const lineText = (maxLength = 30): fc.Arbitrary<string> =>
  anyText(maxLength).map((s) => s.replace(/[\r\n\0]/g, ' '));

const alnum = (min: number, max: number): fc.Arbitrary<string> =>
  fc.string({
    unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789'),
    minLength: min,
    maxLength: max,
  });

export const attrName: fc.Arbitrary<string> = fc
  .tuple(fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz'), alnum(0, 8))
  .map(([a, b]) => a + b);

export const hostName: fc.Arbitrary<string> = fc
  .array(
    fc.tuple(fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz'), alnum(0, 6)).map(([a, b]) => a + b),
    { minLength: 1, maxLength: 3 },
  )
  .map((labels) => labels.join('.'));

export const ipv4: fc.Arbitrary<string> = fc
  .tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255))
  .map((o) => o.join('.'));

const port = fc.integer({ min: 1, max: 65535 });

const dnValue = fc
  .string({
    unit: fc.constantFrom(...'abcdefghij XYZ0123-_.'),
    minLength: 1,
    maxLength: 10,
  })
  .map((v) => v.trim() || 'x');

export const dn: fc.Arbitrary<string> = fc
  .array(
    fc
      .tuple(fc.constantFrom('cn', 'ou', 'o', 'uid', 'dc', 'c'), dnValue)
      .map(([t, v]) => `${t}=${v}`),
    { minLength: 1, maxLength: 4 },
  )
  .map((rdns) => rdns.join(','));

export const searchFormat: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    '(uid=%s)',
    '(uid=%U)',
    '(&(uid=%U)(mailDomain=%V))',
    '(|(uid=%s)(mail=%o))',
    '(mail=%U@%V)',
    '(cn=*%U*)',
    '(&(objectClass=inetOrgPerson)(!(uid=%s))(ip=%C)(srv=%S)(dn=%D)(pct=100%%))',
  ),
  fc
    .tuple(attrName, fc.constantFrom('%s', '%U', '%V', '%o', '%C', '%S', '%D'))
    .map(([a, e]) => `(${a}=${e})`),
);

/** A raw value `spec`'s kind accepts (within its min/max). */
export function validValue(spec: ParameterSpec): fc.Arbitrary<string> {
  switch (spec.kind) {
    case 'string':
    case 'path':
      return lineText();
    case 'port':
      return port.map(String);
    case 'integer':
      return fc.integer({ min: spec.min ?? 0, max: spec.max ?? 1_000_000 }).map(String);
    case 'boolean':
      return fc.constantFrom('yes', 'no', 'Y', 'n', 'true', 'FALSE', 'on', 'Off', '1', '0');
    case 'listen':
      return fc.oneof(
        port.map(String),
        fc.tuple(ipv4, port).map(([h, p]) => `${h}:${p}`),
        port.map((p) => `[::1]:${p}`),
        port.map((p) => `*:${p}`),
      );
    case 'list':
      if (spec.choices !== undefined)
        return fc.subarray([...spec.choices], { minLength: 1 }).map((a) => a.join(','));
      return fc.array(attrName, { minLength: 1, maxLength: 3 }).map((a) => a.join(','));
    case 'dn':
      return dn;
    case 'ldapUrl':
      return fc
        .array(
          fc
            .tuple(fc.constantFrom('ldap', 'ldaps'), hostName, port, dn)
            .map(([s, h, p, d]) => `${s}://${h}:${p}/${encodeURIComponent(d)}`),
          { minLength: 1, maxLength: 3 },
        )
        .map((u) => u.join(' '));
    case 'searchFormat':
      return searchFormat;
    case 'hostList':
      return fc
        .array(fc.tuple(hostName, fc.option(port)), { minLength: 1, maxLength: 3 })
        .map((hs) => hs.map(([h, p]) => (p === null ? h : `${h}:${p}`)).join(' '));
    case 'choice':
      return fc
        .tuple(fc.constantFrom(...(spec.choices ?? [''])), fc.boolean())
        .map(([c, upper]) => (upper ? c.toUpperCase() : c));
    case 'chars':
      return fc.string({
        unit: fc.constantFrom(...'@%+!#/=:.'),
        minLength: spec.min ?? 1,
        maxLength: spec.max ?? 4,
      });
    case 'networks':
      return fc
        .array(
          fc.oneof(
            ipv4,
            fc.tuple(ipv4, fc.integer({ min: 0, max: 32 })).map(([a, n]) => `${a}/${n}`),
            fc.integer({ min: 0, max: 128 }).map((n) => `2001:db8::/${n}`),
            fc.constant('::1'),
          ),
          { minLength: 1, maxLength: 3 },
        )
        .map((ns) => ns.join(', '));
  }
}
