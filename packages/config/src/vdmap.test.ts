import { describe, expect, it } from 'vitest';
import { parseCommandLine } from './commandLine.js';
import { resolveConfig } from './resolve.js';
import { applyVirtualDomain, findVirtualDomain, parseVdmap, vdmapWarnings } from './vdmap.js';

const SAMPLE = `# virtual domains
vdmap airius 192.168.1.10
airius:VDomain airius.com
airius:UidSearch "(&(uid=%U)(mailDomain=%V))"
airius:MailHostAttrs mailHost, altHost
airius:PreAuth Yes

vdmap v6 2001:DB8::0:10
v6:VDomain example.org
v6:CanonicalVirtualDomainDelim @
v6:LdapUrl ldap://ldap.example.org:1389/o=example.org
v6:BindDN "cn=Proxy, o=example.org"
v6:BindPassword "se\\"cret"
`;

describe('parseVdmap', () => {
  it('reads the guide syntax, IPv4 and IPv6, quoted values, aliases', () => {
    const r = parseVdmap(SAMPLE, 'vdmap.conf');
    if (!r.ok) throw new Error(JSON.stringify(r.error));
    const [a, b] = r.value;
    expect(a).toMatchObject({
      name: 'airius',
      address: '192.168.1.10',
      line: 2,
      overrides: {
        VDomain: 'airius.com',
        UidSearch: '(&(uid=%U)(mailDomain=%V))',
        MailHostAttrs: 'mailHost, altHost',
        PreAuth: 'Yes',
      },
      values: {
        VDomain: 'airius.com',
        MailHostAttrs: ['mailHost', 'altHost'],
        PreAuth: true,
      },
    });
    expect(b).toMatchObject({
      name: 'v6',
      address: '2001:db8::10',
      overrides: { BindDN: 'cn=Proxy, o=example.org', BindPass: 'se"cret' },
      values: { CanonicalVirtualDomainDelim: '@' },
    });
  });

  it('reads a value holding U+2028 (a line end only for JavaScript regexps)', () => {
    const r = parseVdmap('vdmap a 10.0.0.1\na:VDomain "x\u2028y"\n', 'vdmap');
    expect(r.ok && r.value[0]?.overrides).toEqual({ VDomain: 'x\u2028y' });
  });

  it('reads SearchFormat (the successors’ vdmap.cfg name) as UidSearch', () => {
    const r = parseVdmap(
      'vdmap siroe 10.0.0.5\nsiroe:SearchFormat (&(uid=%U)(o=%V))\n',
      'vdmap.cfg',
    );
    expect(r.ok && r.value[0]?.overrides).toEqual({ UidSearch: '(&(uid=%U)(o=%V))' });
    const dup = parseVdmap(
      'vdmap siroe 10.0.0.5\nsiroe:SearchFormat (uid=%U)\nsiroe:UidSearch (uid=%s)\n',
      'vdmap.cfg',
    );
    expect(dup).toEqual({
      ok: false,
      error: [{ where: 'vdmap.cfg:3', message: 'siroe:UidSearch is already set at line 2' }],
    });
  });

  it('reports every bad line with its number', () => {
    const text = [
      'airius:VDomain a.com', // 1: before its vdmap line
      'vdmap airius 10.0.0.1', // 2
      'airius:ListenPort 143', // 3: not a vdmap property
      'airius:VDomian x', // 4: typo
      'vdmap other 10.0.0.1', // 5: duplicate address
      'vdmap airius 10.0.0.2', // 6: duplicate name
      'vdmap bad 10.0.0.300', // 7: not an address
      'airius:PreAuth perhaps', // 8: bad value
      'airius:VDomain a.com', // 9 ok
      'airius:VDomain b.com', // 10: set twice
      'just words', // 11
      'airius:Banner "x', // 12: Banner is not a vdmap property
      'airius:StoreAdmin "unterminated', // 13
      'vdmap v6 fe80::1%eth0', // 14
    ].join('\n');
    const r = parseVdmap(text, 'vd.map');
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error).toEqual([
      { where: 'vd.map:1', message: "'airius' has no vdmap line before it" },
      { where: 'vd.map:3', message: 'ListenPort cannot be set for a virtual domain (Table 13.1)' },
      { where: 'vd.map:4', message: "unknown property 'VDomian' (did you mean VDomain?)" },
      { where: 'vd.map:5', message: 'address 10.0.0.1 is already mapped to airius at line 2' },
      { where: 'vd.map:6', message: 'vdmap airius is already defined at line 2' },
      { where: 'vd.map:7', message: "'10.0.0.300' is not an IPv4 or IPv6 address" },
      { where: 'vd.map:8', message: "PreAuth: expected yes or no, got 'perhaps'" },
      { where: 'vd.map:10', message: 'airius:VDomain is already set at line 9' },
      {
        where: 'vd.map:11',
        message: "expected 'vdmap NAME IPADDR' or 'NAME:Property value', got 'just words'",
      },
      { where: 'vd.map:12', message: 'Banner cannot be set for a virtual domain (Table 13.1)' },
      { where: 'vd.map:13', message: 'StoreAdmin: unterminated double quote' },
      { where: 'vd.map:14', message: "'fe80::1%eth0' is not an IPv4 or IPv6 address" },
    ]);
  });

  it('warns that BindDN/BindPass need LdapUrl (Table 13.1)', () => {
    const r = parseVdmap('vdmap a 10.0.0.1\na:BindDN cn=x\na:BindPass y\n', 'vd');
    if (!r.ok) throw new Error('parse');
    expect(vdmapWarnings(r.value, 'vd')).toEqual([
      { where: 'vd:2', message: 'a:BindDN is ignored without a:LdapUrl' },
      { where: 'vd:3', message: 'a:BindPass is ignored without a:LdapUrl' },
    ]);
    const withUrl = parseVdmap(SAMPLE, 'vd');
    expect(withUrl.ok && vdmapWarnings(withUrl.value, 'vd')).toEqual([]);
  });
});

describe('using virtual domains', () => {
  const r = parseVdmap(SAMPLE, 'vd');
  if (!r.ok) throw new Error('parse');
  const domains = r.value;

  it('finds the domain by local address, whatever its spelling', () => {
    expect(findVirtualDomain(domains, '::ffff:192.168.1.10')?.name).toBe('airius');
    expect(findVirtualDomain(domains, '2001:0db8:0:0::10')?.name).toBe('v6');
    expect(findVirtualDomain(domains, '10.9.9.9')).toBeUndefined();
  });

  it('overrides global values for that address only', () => {
    const g = resolveConfig({
      protocol: 'imap',
      commandLine: (() => {
        const c = parseCommandLine('imap', ['-D', 'cn=global', '-w', 'g']);
        if (!c.ok) throw new Error('cl');
        return c.value;
      })(),
      env: {},
    });
    if (!g.ok) throw new Error('resolve');
    const [airius, v6] = domains;
    if (!airius || !v6) throw new Error('domains');
    const a = applyVirtualDomain(g.value.values, airius);
    expect(a.PreAuth).toBe(true);
    expect(a.VDomain).toBe('airius.com');
    expect(a.BindDN).toBe('cn=global');
    expect(a.ListenPort).toEqual({ port: 143 });
    const b = applyVirtualDomain(g.value.values, v6);
    expect(b.BindDN).toBe('cn=Proxy, o=example.org');
    expect(b.BindPass).toBe('se"cret');
    expect(g.value.values.PreAuth).toBe(false);
  });

  it("never sends the global bind credentials to a domain's own directory", () => {
    const own = parseVdmap('vdmap d 10.0.0.1\nd:LdapUrl ldap://ldap.d.example/o=d\n', 'vd');
    if (!own.ok) throw new Error('parse');
    const [d] = own.value;
    if (!d) throw new Error('domain');
    const g = resolveConfig({
      protocol: 'imap',
      commandLine: (() => {
        const c = parseCommandLine('imap', ['-D', 'cn=global', '-w', 'g']);
        if (!c.ok) throw new Error('cl');
        return c.value;
      })(),
      env: {},
    });
    if (!g.ok) throw new Error('resolve');
    const merged = applyVirtualDomain(g.value.values, d);
    expect(merged.LdapUrl).toBe('ldap://ldap.d.example/o=d');
    expect(merged.BindDN).toBeUndefined();
    expect(merged.BindPass).toBeUndefined();
  });
});
