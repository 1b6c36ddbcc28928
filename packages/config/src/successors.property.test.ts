/**
 * Property tests (issue 13, point 7) for the successors' files: no input makes the parser, the
 * ServiceList reader or the import plan throw, and a valid file generated from entries parses
 * back to those entries.
 */
import fc from 'fast-check';
import { describe, expect } from 'vitest';
import { planMigrationFromText } from './migrate.js';
import { type SuccessorEntry, parseServiceList, parseSuccessorFile } from './successors.js';
import { anyText, attrName, ipv4, lineText, soup } from './test-support/arbitraries.js';
import { fuzzTest } from '@mmp/testbed/fuzz';

const CFG_TOKENS = [
  'default:',
  'mmp2:',
  'ServiceList ',
  'SearchFormat ',
  'LdapUrl ',
  'SSLPorts ',
  'imapproxy@',
  'popproxy@',
  '/opt/lib/ImapProxyAService@',
  '143',
  '|',
  '993',
  ':',
  ' ',
  '"',
  '\\',
  '#',
  '\n',
  '\r\n',
  'ldap://h/o=x ',
  '(uid=%s)',
];

/** A value as the files write it: quoted (with \" and \\) when it needs quotes, else bare. */
function written(value: string): string {
  const bare =
    value !== '' && value === value.trim() && !value.startsWith('"') && !/[\r\n]/.test(value);
  return bare ? value : `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

const entry = fc.record({
  section: fc.constantFrom('default', 'mmp2', 'site-b'),
  name: attrName.map((n) => n[0]?.toUpperCase() + n.slice(1)),
  value: lineText(40),
});

const port = fc.integer({ min: 1, max: 65535 });
const address = fc.oneof(
  port.map((p) => ({ text: String(p), value: { port: p } })),
  fc.tuple(ipv4, port).map(([h, p]) => ({ text: `${h}:${p}`, value: { host: h, port: p } })),
);
const item = fc.record({
  service: fc.constantFrom(
    'imapproxy',
    'popproxy',
    '/opt/SUNWmsgsr/lib/ImapProxyAService',
    'C:\\mmp\\PopProxyAService.dll',
    'smtpproxy',
  ),
  ports: fc.array(address, { maxLength: 3 }),
});

describe('successor file properties', () => {
  fuzzTest(
    'successors any input: no exception, errors are values with a line',
    fc.property(fc.oneof(soup(CFG_TOKENS), anyText(300)), (text) => {
      const r = parseSuccessorFile(text, 'A.cfg');
      if (!r.ok) for (const p of r.error) expect(p.where).toMatch(/^A\.cfg:\d+$/);
    }),
    1000,
  );

  fuzzTest(
    'successors generated valid file parses to what generated it',
    fc.property(
      fc.array(entry, { maxLength: 12 }),
      fc.constantFrom('\n', '\r\n'),
      (entries, eol) => {
        const lines = [
          '# generated',
          ...entries.map((e) => `${e.section}:${e.name} ${written(e.value)}`),
        ];
        const r = parseSuccessorFile(lines.join(eol), 'A.cfg');
        if (!r.ok) throw new Error(JSON.stringify(r.error));
        const expected: SuccessorEntry[] = entries.map((e, i) => ({ ...e, line: i + 2 }));
        expect(r.value.entries).toEqual(expected);
      },
    ),
    500,
  );

  fuzzTest(
    'successors ServiceList generated from services and ports parses back',
    fc.property(fc.array(item, { maxLength: 4 }), anyText(60), (items, junk) => {
      const text = items
        .map((i) =>
          i.ports.length === 0 ? i.service : `${i.service}@${i.ports.map((p) => p.text).join('|')}`,
        )
        .join(' ');
      const r = parseServiceList(text);
      if (!r.ok) throw new Error(r.error);
      expect(r.value.map((i) => [i.service, i.ports])).toEqual(
        items.map((i) => [i.service, i.ports.map((p) => p.value)]),
      );
      expect(typeof parseServiceList(junk).ok).toBe('boolean');
    }),
    500,
  );

  fuzzTest(
    'successors import plan of any files: no exception, errors are values',
    fc.property(
      soup(CFG_TOKENS, 30),
      soup(CFG_TOKENS, 30),
      soup(CFG_TOKENS, 20),
      (imap, pop3, aservice) => {
        const r = planMigrationFromText({
          imap: { text: imap, fileName: 'ImapProxyAService.cfg' },
          pop3: { text: pop3, fileName: 'PopProxyAService.cfg' },
          aservice: { text: aservice, fileName: 'AService.cfg' },
        });
        if (!r.ok) expect(r.error.length).toBeGreaterThan(0);
        else for (const n of r.value.notes) expect(n.message.length).toBeGreaterThan(0);
      },
    ),
    500,
  );
});
