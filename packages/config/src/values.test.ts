import { describe, expect, it } from 'vitest';
import { type ParameterSpec, allParameters, findParameter } from './parameters.js';
import {
  displayValue,
  formatValue,
  normalizeAddress,
  parseLdapUrls,
  parseValue,
} from './values.js';

function spec(name: string): ParameterSpec {
  const s = findParameter(name);
  if (!s) throw new Error(`no parameter ${name}`);
  return s;
}
const parse = (name: string, raw: string) => parseValue(spec(name), raw);

describe('parseValue', () => {
  it('reads networks: CIDR or bare addresses, normalised, either family', () => {
    expect(
      parse(
        'ProxyProtocolTrustedNetworks',
        '10.0.0.0/8, 192.0.2.7 ,::FFFF:127.0.0.1, 2001:DB8::/32',
      ),
    ).toEqual({
      ok: true,
      value: [
        { address: '10.0.0.0', family: 4, prefix: 8 },
        { address: '192.0.2.7', family: 4, prefix: 32 },
        { address: '127.0.0.1', family: 4, prefix: 32 },
        { address: '2001:db8::', family: 6, prefix: 32 },
      ],
    });
    const v = parse('ProxyProtocolTrustedNetworks', '10.0.0.0/8,192.0.2.7');
    if (!v.ok) throw new Error(v.error);
    expect(formatValue(spec('ProxyProtocolTrustedNetworks'), v.value)).toBe('10.0.0.0/8,192.0.2.7');
    for (const bad of [
      '10.0.0.0/33',
      '::/129',
      'balancer.example',
      '10.0.0.0/8/8',
      '10.0.0.0/x',
      '10.0.0.0/',
    ]) {
      expect(parse('ProxyProtocolTrustedNetworks', bad).ok).toBe(false);
    }
  });

  it('reads the PROXY protocol listeners as a list of the two listener names', () => {
    expect(parse('ProxyProtocol', 'sslListenPort, ListenPort')).toEqual({
      ok: true,
      value: ['SSLListenPort', 'ListenPort'],
    });
    expect(parse('ProxyProtocol', 'LDAPHost').ok).toBe(false);
  });

  it('reads a choice in any case, keeps the table spelling, and lists the choices', () => {
    expect(parse('LogFormat', 'text')).toEqual({ ok: true, value: 'text' });
    expect(parse('LogFormat', ' JSON ')).toEqual({ ok: true, value: 'json' });
    expect(parse('LogFormat', 'xml')).toEqual({
      ok: false,
      error: "LogFormat: expected one of text, json, got 'xml'",
    });
    expect(formatValue(spec('LogFormat'), 'json')).toBe('json');
  });

  it('reads ports and names the accepted form', () => {
    expect(parse('BacksidePort', '143')).toEqual({ ok: true, value: 143 });
    expect(parse('BacksidePort', '0')).toMatchObject({ ok: false });
    expect(parse('BacksidePort', '65536')).toMatchObject({ ok: false });
    expect(parse('BacksidePort', '14x')).toEqual({
      ok: false,
      error: "BacksidePort: expected a port 1–65535, got '14x'",
    });
  });

  it('reads [IP:]port, IPv6 in brackets', () => {
    expect(parse('ListenPort', '143')).toEqual({ ok: true, value: { port: 143 } });
    expect(parse('ListenPort', '10.0.0.1:143')).toEqual({
      ok: true,
      value: { host: '10.0.0.1', port: 143 },
    });
    expect(parse('ListenPort', '[::1]:143')).toEqual({
      ok: true,
      value: { host: '::1', port: 143 },
    });
    expect(parse('ListenPort', '*:143')).toEqual({ ok: true, value: { port: 143 } });
    expect(parse('ListenPort', 'mail.example.com:993')).toEqual({
      ok: true,
      value: { host: 'mail.example.com', port: 993 },
    });
    const bad = parse('ListenPort', 'abc');
    expect(bad.ok).toBe(false);
    if (!bad.ok)
      expect(bad.error).toMatch(/^ListenPort: expected \[IP:\]port with port 1–65535, got 'abc'/);
    const v6 = parse('ListenPort', '::1:143');
    expect(v6.ok).toBe(false);
    if (!v6.ok) expect(v6.error).toContain('[::1]:143');
    expect(parse('ListenPort', '[::1]').ok).toBe(false);
    expect(parse('ListenPort', '[10.0.0.1]:143').ok).toBe(false);
  });

  it('reads integers within the range of the entry', () => {
    expect(parse('LogLevel', '10')).toEqual({ ok: true, value: 10 });
    const r = parse('LogLevel', '11');
    expect(r).toEqual({
      ok: false,
      error: "LogLevel: expected an integer 0–10, got '11' (above 10)",
    });
    expect(parse('NumThreads', '-1').ok).toBe(false);
    expect(parse('NumThreads', '1.5').ok).toBe(false);
  });

  it('reads the boolean spellings the guide uses ("Yes", "True", n)', () => {
    for (const y of ['Yes', 'yes', 'y', 'True', 'on', '1', 'YES'])
      expect(parse('PreAuth', y)).toEqual({ ok: true, value: true });
    for (const n of ['No', 'n', 'false', 'off', '0'])
      expect(parse('PreAuth', n)).toEqual({ ok: true, value: false });
    expect(parse('SSLEnable', 'maybe')).toEqual({
      ok: false,
      error: "SSLEnable: expected yes or no, got 'maybe'",
    });
  });

  it('reads comma lists', () => {
    expect(parse('MailHostAttrs', 'mailHost, altHost,,')).toEqual({
      ok: true,
      value: ['mailHost', 'altHost'],
    });
  });

  it('reads a list of choices in any case, in the table spelling, each once', () => {
    expect(parse('OAuth2Mechanisms', 'xoauth2, OAuthBearer,XOAUTH2')).toEqual({
      ok: true,
      value: ['XOAUTH2', 'OAUTHBEARER'],
    });
    expect(parse('OAuth2Mechanisms', 'XOAUTH2,PLAIN')).toEqual({
      ok: false,
      error:
        "OAuth2Mechanisms: expected a comma-separated list of XOAUTH2, OAUTHBEARER, got 'XOAUTH2,PLAIN' ('PLAIN' is not one of XOAUTH2, OAUTHBEARER)",
    });
    expect(parse('SSLRequireClientCert', 'Implicit')).toEqual({ ok: true, value: 'implicit' });
  });

  it('reads host lists for LDAP failover', () => {
    expect(parse('LDAPHost', 'ldap1:389 ldap2 [::1]:1389')).toEqual({
      ok: true,
      value: [{ host: 'ldap1', port: 389 }, { host: 'ldap2' }, { host: '::1', port: 1389 }],
    });
    expect(parse('LDAPHost', 'ldap1:99999').ok).toBe(false);
    expect(parse('LDAPHost', '').ok).toBe(false);
    expect(parse('LDAPHost', 'bad_host!').ok).toBe(false);
  });

  it('checks DNs', () => {
    expect(parse('BaseDN', 'o=airius.com')).toEqual({ ok: true, value: 'o=airius.com' });
    expect(parse('BindDN', 'cn=Directory Manager')).toMatchObject({ ok: true });
    expect(parse('BindDN', '')).toEqual({ ok: true, value: '' });
    expect(parse('BaseDN', 'airius.com').ok).toBe(false);
  });

  it('checks LDAP URLs', () => {
    expect(parse('LdapUrl', 'ldap://h1:1389/o=a%20b  ldaps://h2/o=c')).toEqual({
      ok: true,
      value: 'ldap://h1:1389/o=a%20b ldaps://h2/o=c',
    });
    expect(parseLdapUrls('ldap://h1:1389/o=a%20b ldaps://[::1]/o=c')).toEqual({
      ok: true,
      value: [
        { secure: false, host: 'h1', port: 1389, baseDn: 'o=a b' },
        { secure: true, host: '::1', baseDn: 'o=c' },
      ],
    });
    expect(parse('LdapUrl', 'http://h/o=x').ok).toBe(false);
    expect(parse('LdapUrl', 'ldap:///o=x').ok).toBe(false);
    expect(parse('LdapUrl', 'ldap://h/o=x?uid?sub').ok).toBe(false);
  });

  it('checks search formats at configuration time', () => {
    expect(parse('UidSearch', '(&(uid=%U)(domain=%V))')).toMatchObject({ ok: true });
    const r = parse('UidSearch', '(uid=%x)');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toContain('unknown escape %x');
    expect(parse('UidSearch', '(uid=%s').ok).toBe(false);
  });

  it('checks delimiter sets', () => {
    expect(parse('VirtualDomainDelim', '@%!')).toEqual({ ok: true, value: '@%!' });
    expect(parse('VirtualDomainDelim', '@ %').ok).toBe(false);
    expect(parse('CanonicalVirtualDomainDelim', '++').ok).toBe(false);
    expect(parse('CanonicalVirtualDomainDelim', '').ok).toBe(false);
  });

  it('keeps strings verbatim but refuses line breaks (protocol injection)', () => {
    expect(parse('Banner', '  spaced banner ')).toEqual({ ok: true, value: '  spaced banner ' });
    const r = parse('Banner', 'ready\r\n* OK injected');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toContain('line breaks');
    expect(parse('SSLCertFile', 'a\0b').ok).toBe(false);
  });

  it('never repeats a secret in a message', () => {
    const r = parse('BindPass', 'sec\nret');
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error).not.toContain('sec');
      expect(r.error).toContain('******');
    }
  });
});

describe('formatValue', () => {
  it('is the inverse of parseValue for every default and some samples', () => {
    const samples: Record<string, string[]> = {
      ListenPort: ['[::1]:143', '10.0.0.1:110', '993'],
      LDAPHost: ['a:1 [::1]:389 b'],
      PreAuth: ['yes', 'no'],
      MailHostAttrs: ['mailHost,altHost'],
    };
    for (const s of allParameters()) {
      const raws = [...Object.values(s.defaults), ...(samples[s.name] ?? [])];
      for (const raw of raws) {
        const v = parseValue(s, raw);
        if (!v.ok) throw new Error(v.error);
        const again = parseValue(s, formatValue(s, v.value));
        expect(again).toEqual(v);
      }
    }
  });

  it('writes IPv6 listen addresses in brackets and booleans as yes/no', () => {
    expect(formatValue(spec('ListenPort'), { host: '::1', port: 143 })).toBe('[::1]:143');
    expect(formatValue(spec('SSLEnable'), true)).toBe('yes');
  });

  it('masks secrets for display', () => {
    expect(displayValue(spec('BindPass'), 'hunter2')).toBe('******');
    expect(displayValue(spec('BindDN'), undefined)).toBe('(not set)');
  });
});

describe('normalizeAddress', () => {
  it('normalises IPv6 (RFC 5952) and unwraps IPv4-mapped addresses', () => {
    expect(normalizeAddress('10.1.2.3')).toBe('10.1.2.3');
    expect(normalizeAddress('2001:DB8:0:0:0:0:0:1')).toBe('2001:db8::1');
    expect(normalizeAddress('[::1]')).toBe('::1');
    expect(normalizeAddress('::ffff:10.0.0.7')).toBe('10.0.0.7');
    expect(normalizeAddress('::FFFF:a00:7')).toBe('10.0.0.7');
    expect(normalizeAddress('fe80::1%eth0')).toBeUndefined();
    expect(normalizeAddress('mail.example.com')).toBeUndefined();
    expect(normalizeAddress('010.1.2.3')).toBeUndefined();
  });
});
