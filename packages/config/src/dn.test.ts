import { describe, expect, it } from 'vitest';
import { dnWithin, escapeDnValue, formatDn, normalizeDn, parseDn } from './dn.js';

describe('parseDn (RFC 4514)', () => {
  it('reads simple DNs with spaces around separators', () => {
    expect(parseDn('cn=Pilar Lorca, ou=pilar, o=airius.com')).toEqual({
      ok: true,
      value: [
        [{ type: 'cn', value: 'Pilar Lorca' }],
        [{ type: 'ou', value: 'pilar' }],
        [{ type: 'o', value: 'airius.com' }],
      ],
    });
    expect(parseDn('')).toEqual({ ok: true, value: [] });
  });

  it('reads escapes, hex pairs (UTF-8), quoted values, # values and multi-valued RDNs', () => {
    expect(parseDn('cn=Doe\\, John+uid=jd,o=R\\C3\\A9seau;c=\\23US')).toEqual({
      ok: true,
      value: [
        [
          { type: 'cn', value: 'Doe, John' },
          { type: 'uid', value: 'jd' },
        ],
        [{ type: 'o', value: 'Réseau' }],
        [{ type: 'c', value: '#US' }],
      ],
    });
    expect(parseDn('cn="a,b+c;d",2.5.4.10=#04024869')).toEqual({
      ok: true,
      value: [[{ type: 'cn', value: 'a,b+c;d' }], [{ type: '2.5.4.10', value: '#04024869' }]],
    });
    expect(parseDn('cn=trailing\\ ')).toEqual({
      ok: true,
      value: [[{ type: 'cn', value: 'trailing ' }]],
    });
  });

  it('refuses malformed DNs', () => {
    for (const bad of [
      'airius.com',
      'cn=a,',
      '=x',
      'c n=x',
      'cn="open',
      'cn=a\\',
      'cn=\\FF',
      'cn=a<b',
    ])
      expect(parseDn(bad).ok, bad).toBe(false);
  });
});

describe('formatting and comparing', () => {
  it('escapes values so that they parse back', () => {
    const value = ' #a,b+c"d\\e;f<g>h ';
    const dn = `cn=${escapeDnValue(value)}`;
    expect(parseDn(dn)).toEqual({ ok: true, value: [[{ type: 'cn', value }]] });
    const parsed = parseDn('cn=Doe\\, John+uid=jd,o=x');
    if (!parsed.ok) throw new Error('parse');
    expect(formatDn(parsed.value)).toBe('cn=Doe\\, John+uid=jd,o=x');
  });

  it('normalises case, spacing, type aliases and AVA order', () => {
    const a = normalizeDn('CN=Some  CA + O=Big , C=US');
    const b = normalizeDn('o=big+commonName=some ca,2.5.4.6=us');
    expect(a).toEqual(b);
    expect(a).toEqual({ ok: true, value: 'cn=some ca+o=big,c=us' });
  });
});

describe('dnWithin', () => {
  it('holds for the base itself and entries below it, compared RDN by RDN', () => {
    expect(dnWithin('UID=alice,OU=People,O=mmp.test', 'o=MMP.test')).toBe(true);
    expect(dnWithin('o=mmp.test', 'o=mmp.test')).toBe(true);
    expect(dnWithin('uid=alice,o=other', 'o=mmp.test')).toBe(false);
    expect(dnWithin('o=mmp.test', 'ou=people,o=mmp.test')).toBe(false);
  });

  it('is not fooled by an escaped comma that looks like an RDN boundary', () => {
    // One RDN whose value is "x,o=mmp.test": not an entry under o=mmp.test.
    expect(dnWithin('cn=x\\,o=mmp.test', 'o=mmp.test')).toBe(false);
    expect(dnWithin('not a dn', 'o=mmp.test')).toBe(false);
  });
});
