import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  type ConfigValues,
  PARAMETERS,
  allParameters,
  findParameter,
  parametersFor,
  promptText,
  suggestName,
} from './parameters.js';
import type { HostPort, ListenAddress } from './types.js';
import { parseValue } from './values.js';

// Copied by hand from the admin guide, chapter 13 (not parsed from it: CI may not have it).
// Table 13.3, as printed (the guide's own spellings, including its variants).
const TABLE_13_3 = [
  'BacksidePort',
  'Banner',
  'BaseDN',
  'BindDN',
  'BindPass',
  'CanonicalVirtualDomainDelim',
  'Capability',
  'CertMapFile',
  'LDAPHost',
  'ListenPort',
  'LogDir',
  'LogLevel',
  'MailHostAttrs',
  'NumThreads',
  'PreAuth',
  'ServerDownAlert',
  'SpoofMessageFile',
  'SSLBacksidePort',
  'SSLCertFile',
  'SSLCertName',
  'SSLCipherSecs',
  'SSLEnable',
  'SSLSecmodFile',
  'SSLCertFile',
  'SSLKeyFile',
  'SSLKeyPasswd',
  'SSLCipherSpecs',
  'SSLCertNickname',
  'SSLListenPort',
  'StoreAdmin',
  'StoreAdminPass',
  'VirtualDomainDelim',
  'VirtualDomainFile',
  'UidSearch',
];

// Table 13.4: flag → the "Configuration parameter =" it names (-s and -pre see below).
const TABLE_13_4: Record<string, string> = {
  '-a': 'ServerDownAlert',
  '-b': 'BaseDN',
  '-ba': 'Banner',
  '-c': 'BacksidePort',
  '-cm': 'CertMapFile',
  '-d': 'StoreAdmin',
  '-D': 'BindDN',
  '-h': 'LDAPHost',
  '-m': 'SpoofMessageFile',
  '-ma': 'MailHostAttrs',
  '-o': 'LogDir',
  '-p': 'ListenPort',
  '-pre': 'PreAuth',
  '-ps': 'SSLListenPort',
  '-t': 'NumThreads',
  '-us': 'UidSearch',
  '-v': 'LogLevel',
  '-vd': 'VirtualDomainFile',
  '-vdd': 'VirtualDomainDelim',
  '-vddc': 'CanonicalVirtualDomainDelim',
  '-w': 'BindPassword',
  '-W': 'StoreAdminPass',
  '-x': 'Capability',
};
// Table 13.4's -s line, in its order and spellings.
const TABLE_13_4_S = [
  'SSLSecmodFile',
  'SSLCertFile',
  'SSLKeyFile',
  'SSLkeypass',
  'SSLCipherSecs',
  'SSLCertNickname',
];
// Table 13.5 (the same six, Table 13.3 spellings).
const TABLE_13_5 = [
  'SSLSecmodFile',
  'SSLCertFile',
  'SSLKeyFile',
  'SSLKeyPasswd',
  'SSLCipherSpecs',
  'SSLCertNickname',
];
// Table 13.1 (virtual domain properties).
const TABLE_13_1 = [
  'BindDN',
  'BindPass',
  'CanonicalVirtualDomainDelim',
  'CertMapFile',
  'LdapUrl',
  'MailHostAttrs',
  'PreAuth',
  'StoreAdmin',
  'StoreAdminPass',
  'UidSearch',
  'VDomain',
  'VirtualDomainDelim',
  'VirtualDomainFile',
];
// Table 13.7's environment variables ("LDAPAuth" is the y/n branch, not a variable).
const TABLE_13_7 = [
  'LDAPHost',
  'BaseDN',
  'LogDir',
  'LogLevel',
  'BindPassword',
  'NumThreads',
  'ListenPort',
  'BacksidePort',
  'Capability',
  'Banner',
  'UidSearch',
  'UidAttr',
  'MailHostAttrs',
  'VirtualDomainFile',
  'VirtualDomainDelim',
  'CanonicalVirtualDomainDelim',
  'SpoofMessageFile',
  'ServerDownAlert',
  'SSLEnable',
];

describe('the parameter table covers the guide', () => {
  it.each(TABLE_13_3)('Table 13.3 %s is known', (name) => {
    expect(findParameter(name)).toBeDefined();
  });

  it.each(Object.entries(TABLE_13_4))('Table 13.4 %s sets %s', (flag, name) => {
    const spec = findParameter(name);
    expect(spec).toBeDefined();
    expect(spec?.flag).toBe(flag);
  });

  it('Table 13.4 -s sets SSLEnable and its six values in the guide order', () => {
    expect(findParameter('SSLEnable')?.flag).toBe('-s');
    TABLE_13_4_S.forEach((name, index) => {
      expect(findParameter(name)?.positional).toEqual({ flag: '-s', index });
    });
    expect(TABLE_13_4_S.map((n) => findParameter(n)?.name)).toEqual(TABLE_13_5);
  });

  it.each(TABLE_13_1)('Table 13.1 %s may appear in a vdmap entry', (name) => {
    expect(findParameter(name)?.virtualDomain).toBe(true);
  });

  it.each(TABLE_13_7)('Table 13.7 %s has an installer prompt', (name) => {
    expect(findParameter(name)?.prompt).toBeDefined();
  });

  it('writes the Table 13.3 spelling and accepts the others', () => {
    expect(findParameter('BindPassword')?.name).toBe('BindPass');
    expect(findParameter('SSLCipherSecs')?.name).toBe('SSLCipherSpecs');
    expect(findParameter('SSLCertName')?.name).toBe('SSLCertNickname');
    expect(findParameter('SSLkeypass')?.name).toBe('SSLKeyPasswd');
    // The successors' spelling (NOTES.md).
    expect(findParameter('SearchFormat')?.name).toBe('UidSearch');
  });

  it("knows Table 13.7's LDAPAuth as a yes/no parameter without a static default", () => {
    const spec = findParameter('LDAPAuth');
    expect(spec?.kind).toBe('boolean');
    expect(spec?.defaults).toEqual({});
  });

  it('is case-sensitive, as the guide says', () => {
    expect(findParameter('listenport')).toBeUndefined();
    expect(findParameter('ListenPort')?.name).toBe('ListenPort');
  });
});

describe('the table is consistent', () => {
  const specs = allParameters();

  it('has unique names, aliases, flags and prompt orders', () => {
    const names = specs.flatMap((s) => [s.name, ...s.aliases]);
    expect(new Set(names).size).toBe(names.length);
    const flags = specs.flatMap((s) => (s.flag ? [s.flag] : []));
    expect(new Set(flags).size).toBe(flags.length);
    const orders = specs.flatMap((s) => (s.prompt ? [s.prompt.order] : []));
    expect(new Set(orders).size).toBe(orders.length);
  });

  it.each(specs.map((s) => [s.name, s] as const))('%s: every default parses', (_n, spec) => {
    for (const raw of Object.values(spec.defaults)) {
      expect(parseValue(spec, raw)).toMatchObject({ ok: true });
    }
  });

  it('keeps -s positions contiguous', () => {
    const idx = specs.flatMap((s) => (s.positional ? [s.positional.index] : [])).sort();
    expect(idx).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('has a one-line help for every parameter and secrets only where passwords are', () => {
    for (const s of specs) expect(s.help).toMatch(/^[^\n]{10,}$/);
    expect(specs.filter((s) => s.secret).map((s) => s.name)).toEqual([
      'BindPass',
      'SSLKeyPasswd',
      'StoreAdminPass',
    ]);
  });

  it('dependsOn and records name a boolean parameter, unlessSet a parameter', () => {
    for (const s of specs) {
      if (s.prompt?.dependsOn) expect(findParameter(s.prompt.dependsOn)?.kind).toBe('boolean');
      if (s.prompt?.records) expect(findParameter(s.prompt.records)?.kind).toBe('boolean');
      if (s.prompt?.unlessSet) expect(findParameter(s.prompt.unlessSet)).toBeDefined();
    }
    expect(findParameter('BindDN')?.prompt?.records).toBe('LDAPAuth');
  });

  it('asks for certificate login, PreAuth and SSLBacksidePort (issue 17)', () => {
    const prompt = (n: string) => findParameter(n)?.prompt;
    const certLogin = ['CertMapFile', 'SSLClientCAFile', 'StoreAdmin', 'StoreAdminPass'];
    // One y/n for the four, asked after the SSL questions and only when SSL is on.
    expect(new Set(certLogin.map((n) => prompt(n)?.branch)).size).toBe(1);
    for (const n of certLogin) {
      expect(prompt(n)?.dependsOn).toBe('SSLEnable');
      expect(prompt(n)?.order).toBeGreaterThan(prompt('SSLStartTLS')?.order ?? Infinity);
    }
    expect(findParameter('CertMapFile')?.mustExist).toBe('file');
    expect(prompt('PreAuth')?.question).toMatch(/\(y\/n\):$/);
    expect(prompt('SSLBacksidePort')?.branch).toContain('[IMAP4/POP3]');
  });

  it('uses the guide defaults', () => {
    const d = (n: string) => findParameter(n)?.defaults;
    expect(d('ListenPort')).toEqual({ imap: '143', pop3: '110' });
    expect(d('BacksidePort')).toEqual({ imap: '143', pop3: '110' });
    expect(d('SSLListenPort')).toEqual({ imap: '993', pop3: '995' });
    expect(d('Banner')?.imap).toBe('Netscape Messaging Multiplexor ready');
    expect(d('BaseDN')?.pop3).toBe('o=mcom.com');
    expect(d('LogLevel')?.imap).toBe('1');
    expect(d('UidSearch')?.imap).toBe('(uid=%s)');
    expect(d('ServerDownAlert')?.imap).toBe(
      'Your IMAP server appears to be temporarily out of service.',
    );
    expect(d('BindDN')).toEqual({});
  });

  it("logs in the guide's text shape unless JSON is asked for (ours, not the guide)", () => {
    const spec = findParameter('LogFormat');
    expect(spec?.kind).toBe('choice');
    expect(spec?.choices).toEqual(['text', 'json']);
    expect(spec?.defaults).toEqual({ imap: 'text', pop3: 'text' });
    expect(spec?.since).toBe('later');
  });

  it('forwards client addresses to the stores only when asked (ours, not the guide)', () => {
    const spec = findParameter('ForwardClientAddress');
    expect(spec?.kind).toBe('boolean');
    expect(spec?.defaults).toEqual({ imap: 'no', pop3: 'no' });
    expect(spec?.since).toBe('later');
  });
});

describe('lookups', () => {
  it('lists parameters per protocol', () => {
    const imap = parametersFor('imap').map((p) => p.name);
    const pop = parametersFor('pop3').map((p) => p.name);
    expect(imap).toContain('Capability');
    expect(imap).not.toContain('SpoofMessageFile');
    expect(pop).toContain('SpoofMessageFile');
    expect(pop).not.toContain('Capability');
    expect(imap.length).toBe(PARAMETERS.length - 1);
  });

  it('suggests the closest name', () => {
    expect(suggestName('ListnPort')).toBe('ListenPort');
    expect(suggestName('listenport')).toBe('ListenPort');
    expect(suggestName('BINDPASSWORD')).toBe('BindPass');
    expect(suggestName('SSLCertNick')).toBe('SSLCertNickname');
    expect(suggestName('PATH')).toBeUndefined();
  });

  it('fills the protocol into Table 13.7 texts', () => {
    expect(promptText('[IMAP4/POP3] MMP LogDir:', 'pop3')).toBe('POP3 MMP LogDir:');
    expect(promptText(findParameter('SSLEnable')?.prompt?.question ?? '', 'imap')).toBe(
      'Should the IMAP4 MMP do SSL (y/n):',
    );
  });
});

describe('ConfigValues', () => {
  it('types defaulted parameters as always present, the others as optional', () => {
    expectTypeOf<ConfigValues['ListenPort']>().toEqualTypeOf<ListenAddress>();
    expectTypeOf<ConfigValues['LDAPHost']>().toEqualTypeOf<HostPort[]>();
    expectTypeOf<ConfigValues['SSLEnable']>().toEqualTypeOf<boolean>();
    expectTypeOf<ConfigValues['LogLevel']>().toEqualTypeOf<number>();
    expectTypeOf<ConfigValues['BindDN']>().toEqualTypeOf<string | undefined>();
    expectTypeOf<ConfigValues['SSLBacksidePort']>().toEqualTypeOf<number | undefined>();
    // Capability applies to IMAP only and has an IMAP default: always present.
    expectTypeOf<ConfigValues['Capability']>().toEqualTypeOf<string>();
  });
});
