import { describe, expect, it } from 'vitest';
import { type CertMapConfig, mapCertificate, parseCertmap } from './certmap.js';

// NOTES.md's example file, plus an issuer-specific map with DNComps.
const CERTMAP = `# certmap.conf
certmap default default
default:DNComps
default:FilterComps e=mail

certmap airius ou=Certificate Authority, o=Airius, c=US
airius:FilterComps ou=uid
airius:verifycert on
airius:library /usr/lib/plugin.so

certmap corp cn=Corp CA,o=Corp
corp:DNComps ou, o
corp:FilterComps uid cn

certmap nodn cn=Entry CA
`;

function cfg(): CertMapConfig {
  const r = parseCertmap(CERTMAP, 'certmap.conf');
  if (!r.ok) throw new Error(JSON.stringify(r.error));
  return r.value;
}

describe('parseCertmap', () => {
  it('reads an issuer DN holding U+2028 (a line end only for JavaScript regexps)', () => {
    const r = parseCertmap('certmap a cn=x\u2028y\na:FilterComps cn\n', 'certmap.conf');
    expect(r.ok && r.value.maps[0]?.issuerDn).toBe('cn=x\u2028y');
  });

  it('reads maps, comps, FROM=TO and keeps other properties', () => {
    const { maps } = cfg();
    expect(maps.map((m) => m.name)).toEqual(['default', 'airius', 'corp', 'nodn']);
    expect(maps[0]).toEqual({
      name: 'default',
      line: 2,
      dnComps: [],
      filterComps: [{ from: 'e', to: 'mail' }],
      other: {},
    });
    expect(maps[1]).toMatchObject({
      issuerDn: 'ou=Certificate Authority, o=Airius, c=US',
      filterComps: [{ from: 'ou', to: 'uid' }],
      verifyCert: true,
      other: { library: '/usr/lib/plugin.so' },
    });
    expect(maps[2]?.dnComps).toEqual([
      { from: 'ou', to: 'ou' },
      { from: 'o', to: 'o' },
    ]);
    expect(maps[3]?.dnComps).toBeUndefined();
  });

  it('reports bad lines with their numbers', () => {
    const r = parseCertmap(
      [
        'x:FilterComps uid', // 1
        'certmap a cn=A', // 2
        'a:FilterComps ou=uid=x', // 3
        'certmap b cn=a', // 4: same issuer, other case
        'certmap c not a dn', // 5
        'a:verifycert maybe', // 6
        'nonsense', // 7
        'certmap a cn=B', // 8
      ].join('\n'),
      'cm',
    );
    expect(r).toEqual({
      ok: false,
      error: [
        { where: 'cm:1', message: "'x' has no certmap line before it" },
        { where: 'cm:3', message: "FilterComps: 'ou=uid=x' is not an attribute or FROM=TO pair" },
        { where: 'cm:4', message: 'issuer already mapped by certmap a' },
        {
          where: 'cm:5',
          message: "bad issuer DN 'not a dn': expected attribute=value at offset 0",
        },
        { where: 'cm:6', message: "verifycert: expected on or off, got 'maybe'" },
        {
          where: 'cm:7',
          message: "expected 'certmap NAME ISSUER-DN' or 'NAME:Property value', got 'nonsense'",
        },
        { where: 'cm:8', message: 'certmap a is already defined at line 2' },
      ],
    });
  });
});

describe('mapCertificate', () => {
  it("gives the guide's example: ou=pilar with FilterComps ou=uid is (uid=pilar)", () => {
    expect(
      mapCertificate(
        cfg(),
        'ou=Certificate Authority,o=Airius,c=US',
        'cn=Pilar Lorca, ou=pilar, o=airius.com',
      ),
    ).toEqual({
      ok: true,
      value: {
        map: 'airius',
        filter: '(uid=pilar)',
        baseDn: 'cn=Pilar Lorca, ou=pilar, o=airius.com',
      },
    });
  });

  it('matches the issuer DN case- and space-insensitively, else uses default', () => {
    const r = mapCertificate(cfg(), 'OU=certificate  authority , O=AIRIUS,C=us', 'cn=x,ou=y');
    expect(r.ok && r.value.map).toBe('airius');
    expect(
      mapCertificate(cfg(), 'cn=Unknown CA', 'cn=Pilar,emailAddress=pilar@airius.com'),
    ).toEqual({
      ok: true,
      value: { map: 'default', filter: '(mail=pilar@airius.com)' },
    });
  });

  it('builds (&…) from several components and a base DN from DNComps', () => {
    expect(
      mapCertificate(cfg(), 'cn=Corp CA,o=Corp', 'uid=jd+cn=John Doe,ou=Eng,ou=R&D,o=Corp,c=US'),
    ).toEqual({
      ok: true,
      value: {
        map: 'corp',
        filter: '(&(uid=jd)(cn=John Doe))',
        baseDn: 'ou=Eng,ou=R&D,o=Corp',
      },
    });
  });

  it('ORs several values of one attribute', () => {
    const r = mapCertificate(cfg(), 'ou=Certificate Authority,o=Airius,c=US', 'cn=x,ou=a,ou=b');
    expect(r.ok && r.value.filter).toBe('(|(uid=a)(uid=b))');
  });

  it('takes the subject DN as the entry DN when DNComps is absent', () => {
    expect(mapCertificate(cfg(), 'cn=entry ca', 'cn=Some One,o=x')).toEqual({
      ok: true,
      value: { map: 'nodn', baseDn: 'cn=Some One,o=x' },
    });
  });

  it('escapes hostile certificate values (RFC 4515 and RFC 4514)', () => {
    const r = mapCertificate(
      cfg(),
      'ou=Certificate Authority,o=Airius,c=US',
      'cn=x,ou=*)(uid=*\\2C\\5C,o=y',
    );
    expect(r).toEqual({
      ok: true,
      value: {
        map: 'airius',
        filter: '(uid=\\2a\\29\\28uid=\\2a,\\5c)',
        baseDn: 'cn=x,ou=*)(uid=*\\2C\\5C,o=y',
      },
    });
    const corp = mapCertificate(cfg(), 'cn=Corp CA,o=Corp', 'uid=a,ou=x\\,y,o=Corp');
    expect(corp.ok && corp.value.baseDn).toBe('ou=x\\,y,o=Corp');
  });

  it('fails clearly when nothing matches', () => {
    const noDefault = parseCertmap('certmap a cn=A\na:FilterComps uid\n', 'c');
    if (!noDefault.ok) throw new Error('parse');
    expect(mapCertificate(noDefault.value, 'cn=B', 'uid=x')).toEqual({
      ok: false,
      error: "no certmap for issuer 'cn=B' and no default map",
    });
    expect(mapCertificate(noDefault.value, 'cn=A', 'cn=x')).toMatchObject({
      ok: false,
      error: expect.stringContaining('none of the FilterComps attributes (uid)'),
    });
    expect(mapCertificate(cfg(), 'cn=A', 'not a dn').ok).toBe(false);
  });

  it('maps a subject with none of the DNComps attributes to nobody, not to the whole tree', () => {
    // Netscape certmap: "at least one attr in DNComps should be present in the cert".
    expect(mapCertificate(cfg(), 'cn=Corp CA,o=Corp', 'uid=jd,cn=John Doe,c=US')).toMatchObject({
      ok: false,
      error: expect.stringContaining('none of the DNComps attributes (ou, o)'),
    });
  });
});
