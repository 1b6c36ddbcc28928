/**
 * Property tests (issue 13, point 7) for the UidSearch expansion: whatever a client types (and
 * whatever its address or certificate says), the expanded filter has the structure of the
 * format, and each substituted value reads back as what was typed. The filter is parsed with
 * ldapts's own parser, the one that encodes the search the proxy sends.
 */
import fc from 'fast-check';
import { type Filter, FilterParser } from 'ldapts';
import { describe, expect } from 'vitest';
import { type SearchContext, expandSearch, parseSearchFormat } from './searchFormat.js';
import { type Result, ok } from './types.js';
import { anyText, attrName, searchFormat, soup } from './test-support/arbitraries.js';
import { fuzzTest } from '@mmp/testbed/fuzz';

/** What a login does with the configured UidSearch: the template parsed once, then expanded. */
function expandSearchFormat(format: string, ctx: SearchContext): Result<string, string> {
  const template = parseSearchFormat(format);
  return template.ok ? ok(expandSearch(template.value, ctx)) : template;
}

const ESCAPES = ['%s', '%U', '%V', '%o', '%C', '%S', '%D'] as const;

/** A value part: literal text, `%%`, escapes, with `*` never next to another `*`. */
const valueTemplate = fc
  .array(
    fc.oneof(
      fc.constantFrom(...ESCAPES),
      fc.string({ unit: fc.constantFrom(...'abc.@-_ 09'), minLength: 1, maxLength: 4 }),
      fc.constant('%%'),
    ),
    { minLength: 1, maxLength: 3 },
  )
  .chain((parts) =>
    fc.tuple(fc.boolean(), fc.boolean(), fc.boolean()).map(([lead, mid, trail]) => {
      const body =
        mid && parts.length > 1 ? [parts[0], '*', ...parts.slice(1)].join('') : parts.join('');
      return `${lead ? '*' : ''}${body}${trail ? '*' : ''}`;
    }),
  );

/** Valid formats: RFC 4515 filters whose values hold escapes. */
const formatTree: fc.Arbitrary<string> = fc.letrec<{ f: string }>((tie) => ({
  f: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.tuple(attrName, valueTemplate).map(([a, v]) => `(${a}=${v})`),
    fc
      .tuple(attrName, fc.constantFrom('>=', '<=', '~='), fc.constantFrom(...ESCAPES))
      .map(([a, op, e]) => `(${a}${op}${e})`),
    attrName.map((a) => `(${a}=*)`),
    fc.array(tie('f'), { minLength: 1, maxLength: 3 }).map((fs) => `(&${fs.join('')})`),
    fc.array(tie('f'), { minLength: 1, maxLength: 3 }).map((fs) => `(|${fs.join('')})`),
    tie('f').map((f) => `(!${f})`),
  ),
})).f;

const anyFormat = fc.oneof(searchFormat, formatTree);
const input = anyText(40).filter((s) => s !== '');

const context = fc.record({
  user: input,
  domain: input,
  canonical: input,
  original: input,
  clientIp: input,
  serverIp: input,
  subjectDn: input,
});

const benign: SearchContext = {
  user: 'x',
  domain: 'x',
  canonical: 'x',
  original: 'x',
  clientIp: 'x',
  serverIp: 'x',
  subjectDn: 'x',
};

/** The filter's structure: node types, attributes, substring shape; never the values. */
function shape(f: Filter): unknown {
  const n = f as unknown as {
    type: number;
    attribute?: string;
    filters?: Filter[];
    filter?: Filter;
    initial?: string;
    any?: string[];
    final?: string;
  };
  if (n.filters !== undefined) return [n.type, n.filters.map(shape)];
  if (n.filter !== undefined) return [n.type, shape(n.filter)];
  if (n.any !== undefined)
    return [n.type, n.attribute, n.initial !== '', n.any.length, n.final !== ''];
  return [n.type, n.attribute];
}

const FORMAT_TOKENS = [
  '(',
  ')',
  '%',
  '%s',
  '%U',
  '%%',
  '%x',
  '&',
  '|',
  '!',
  '=',
  '*',
  'uid',
  '\\',
  ' ',
];

describe('UidSearch expansion properties', () => {
  fuzzTest(
    'searchFormat expansion with any user input keeps the filter structure',
    fc.property(anyFormat, context, (format, ctx) => {
      expect(parseSearchFormat(format).ok).toBe(true);
      const expanded = expandSearchFormat(format, ctx);
      const reference = expandSearchFormat(format, benign);
      if (!expanded.ok || !reference.ok) throw new Error(`${format} did not expand`);
      expect(shape(FilterParser.parseString(expanded.value))).toEqual(
        shape(FilterParser.parseString(reference.value)),
      );
    }),
    500,
  );

  fuzzTest(
    'searchFormat substituted values read back as typed',
    fc.property(attrName, fc.constantFrom(...ESCAPES), context, (attr, escape, ctx) => {
      const expanded = expandSearchFormat(`(${attr}=${escape})`, ctx);
      if (!expanded.ok) throw new Error(expanded.error);
      const f = FilterParser.parseString(expanded.value) as unknown as { value: string };
      const key = {
        '%s': 'canonical',
        '%U': 'user',
        '%V': 'domain',
        '%o': 'original',
        '%C': 'clientIp',
        '%S': 'serverIp',
        '%D': 'subjectDn',
      }[escape] as keyof SearchContext;
      // Strings travel as UTF-8: a lone surrogate becomes U+FFFD, as Buffer.from writes it.
      expect(f.value).toBe(Buffer.from(ctx[key] ?? '', 'utf8').toString('utf8'));
    }),
    500,
  );

  fuzzTest(
    'searchFormat any format and context: no exception, errors are values',
    fc.property(
      fc.oneof(soup(FORMAT_TOKENS, 12), anyText(40)),
      fc.record({ user: anyText(10), canonical: anyText(10), original: anyText(10) }),
      (format, ctx) => {
        const v = parseSearchFormat(format);
        const e = expandSearchFormat(format, ctx);
        expect(e.ok).toBe(v.ok);
      },
    ),
    1000,
  );
});
