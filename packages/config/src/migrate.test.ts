import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { writeConfigFile } from './configFile.js';
import {
  type MigrationNote,
  type MigrationPlan,
  SUCCESSOR_FILES,
  SUCCESSOR_NAME_RULES,
  planMigrationFromConfigFiles,
  planMigrationFromText,
} from './migrate.js';
import { findParameter } from './parameters.js';
import { type ConfigFs, cliAction } from './resolve.js';
import { ok } from './types.js';

const fixtureDir = (dir: string) => {
  const out: Parameters<typeof planMigrationFromText>[0] = {};
  for (const key of ['aservice', 'imap', 'pop3'] as const) {
    const url = new URL(`../fixtures/successors/${dir}/${SUCCESSOR_FILES[key]}`, import.meta.url);
    if (existsSync(url))
      out[key] = { text: readFileSync(url, 'utf8'), fileName: SUCCESSOR_FILES[key] };
  }
  return out;
};

function plan(input: Parameters<typeof planMigrationFromText>[0]): MigrationPlan {
  const r = planMigrationFromText(input);
  if (!r.ok) throw new Error(JSON.stringify(r.error));
  return r.value;
}

const imapOnly = (text: string, aservice?: string) =>
  planMigrationFromText({
    imap: { text, fileName: 'ImapProxyAService.cfg' },
    ...(aservice === undefined ? {} : { aservice: { text: aservice, fileName: 'AService.cfg' } }),
  });

const noteFor = (notes: readonly MigrationNote[], name: string) =>
  notes.filter((n) => n.name === name);

describe('planMigration: a Sun Java System 6 MMP (sun6 fixtures)', () => {
  const p = plan(fixtureDir('sun6'));

  it('carries every name with an equivalent over, per protocol, AService.cfg shared', () => {
    expect(p.protocols.imap?.enabled).toBe(true);
    expect(p.protocols.imap?.values).toEqual({
      LogDir: '/var/opt/SUNWmsgsr/log',
      LogLevel: '5',
      LdapUrl:
        'ldap://ldap1.example.com:389/o=example.com ldap://ldap2.example.com:389/o=example.com',
      BindDN: 'cn=MMP Service, ou=Services, o=example.com',
      BindPass: 's3cret-bind',
      BacksidePort: '143',
      Capability: 'IMAP4rev1 LITERAL+ NAMESPACE ID UIDPLUS CHILDREN',
      UidSearch: '(uid=%U)',
      SSLEnable: 'yes',
      SSLCipherSpecs: 'all',
      VirtualDomainFile: '/opt/SUNWmsgsr/config/vdmap.cfg',
      VirtualDomainDelim: '@',
      ServerDownAlert: 'Your mail server is being serviced; please try again in a few minutes.',
      MailHostAttrs: 'mailHost,mailAlternateHost',
      PreAuth: 'no',
      PreAuthCacheTTL: '900',
      LdapCacheSize: '20000',
      LdapCacheTTL: '600',
      DefaultDomain: 'example.com',
      CertMapFile: '/opt/SUNWmsgsr/config/certmap.conf',
      StoreAdmin: 'mmpadmin',
      StoreAdminPass: 's3cret-admin',
      ListenPort: '143',
      SSLListenPort: '993',
    });
    expect(p.protocols.imap?.origins).toMatchObject({
      LogDir: 'AService.cfg:4',
      LogLevel: 'ImapProxyAService.cfg:3',
      UidSearch: 'ImapProxyAService.cfg:10 (SearchFormat)',
      ListenPort: 'AService.cfg:3 (ServiceList)',
      SSLListenPort: 'AService.cfg:3 (ServiceList, SSLPorts)',
    });
    expect(p.protocols.imap?.parsed).toMatchObject({
      LogLevel: 5,
      MailHostAttrs: ['mailHost', 'mailAlternateHost'],
      ListenPort: { port: 143 },
      SSLListenPort: { port: 993 },
      SSLEnable: true,
    });
    expect(p.protocols.pop3?.values).toMatchObject({
      LogLevel: '2',
      UidSearch: '(uid=%s)',
      SpoofMessageFile: '/opt/SUNWmsgsr/config/spoof.txt',
      PreAuth: 'yes',
      PreAuthCacheTTL: '300',
      ListenPort: '110',
      SSLListenPort: '995',
    });
  });

  it('writes one note per parameter with no equivalent or a changed meaning', () => {
    const kinds = Object.fromEntries(
      p.notes.map((n) => [`${n.protocol ?? '-'} ${n.name}`, n.kind]),
    );
    expect(kinds).toEqual({
      '- Capability': 'info',
      '- ServerDownAlert': 'info',
      '- ServiceList': 'no-equivalent',
      '- NumThreads': 'changed',
      'imap Timeout': 'changed',
      'imap SSLSecmodFile': 'no-equivalent',
      'imap SSLCertFile': 'action',
      'imap SSLKeyFile': 'action',
      'imap SSLKeyPasswdFile': 'changed',
      'imap SSLCertNicknames': 'no-equivalent',
      'imap SSLCacheDir': 'no-equivalent',
      'imap CRAMs': 'no-equivalent',
      'imap AuthCacheSize': 'no-equivalent',
      'imap BGMax': 'no-equivalent',
      'imap BGPenalty': 'no-equivalent',
      'imap ConnLimits': 'no-equivalent',
      'imap HostedDomains': 'no-equivalent',
      'imap SSLEnable': 'action',
      'pop3 SearchFormat': 'changed',
      'pop3 ServiceList': 'changed',
    });
    expect(noteFor(p.notes, 'NumThreads')).toHaveLength(1);
  });

  it('turns the NSS databases into the PEM export recipe, with their directory and nickname', () => {
    expect(noteFor(p.notes, 'SSLCertFile')[0]).toEqual({
      where: 'ImapProxyAService.cfg:14',
      protocol: 'imap',
      name: 'SSLCertFile',
      kind: 'action',
      message:
        "'/opt/SUNWmsgsr/config/cert8.db' is an NSS certificate database; mmp reads PEM files. " +
        "Export with pk12util -d /opt/SUNWmsgsr/config -n 'Server-Cert' -o server.p12, then " +
        'openssl pkcs12 -in server.p12 -clcerts -nokeys -out server.pem and openssl pkcs12 -in ' +
        'server.p12 -nocerts -out server.key; set SSLCertFile to server.pem and SSLKeyFile to ' +
        'server.key (README, "TLS")',
    });
    expect(p.protocols.imap?.values.SSLCertFile).toBeUndefined();
  });

  it('names the SMTP proxy, the SSL port of a service without SSL, and the SearchFormat fix', () => {
    expect(noteFor(p.notes, 'ServiceList').map((n) => n.message)).toEqual([
      '/opt/SUNWmsgsr/lib/SmtpProxyAService: the SMTP proxy is not part of mmp',
      'SSLEnable is not yes: SSLListenPort 995 is recorded but not served until it is',
    ]);
    expect(noteFor(p.notes, 'SearchFormat')[0]?.message).toBe(
      'written as (uid=%s): a filter is parenthesised (RFC 4515)',
    );
  });

  it('never puts a password in a note', () => {
    const text = JSON.stringify(p.notes);
    expect(text).not.toContain('s3cret');
  });
});

describe('planMigration: an iPlanet 5 MMP (iplanet5 fixtures)', () => {
  const p = plan(fixtureDir('iplanet5'));

  it('reads IP:port ServiceList entries, SSLPorts with an address, multi-host LdapUrl', () => {
    expect(p.protocols.imap?.values).toMatchObject({
      ListenPort: '10.1.2.3:143',
      SSLListenPort: '10.1.2.3:993',
      LdapUrl:
        'ldap://dir1.example.net:389/o=example.net ldap://dir2.example.net:1389/o=example.net',
      BindPass: 'pa ss "quoted"',
      UidSearch: '(|(uid=%U)(mail=%o))',
      SSLCertFile: '/usr/iplanet/server5/alias/mmp-cert.pem',
      LogLevel: '4',
    });
    expect(p.protocols.imap?.origins.BindPass).toBe('ImapProxyAService.cfg:6 (BindPassword)');
    expect(p.protocols.pop3).toEqual({
      enabled: true,
      values: { LogDir: '/usr/iplanet/server5/msg-mmp/log', ListenPort: '10.1.2.3:110' },
      parsed: {
        LogDir: '/usr/iplanet/server5/msg-mmp/log',
        ListenPort: { host: '10.1.2.3', port: 110 },
      },
      origins: { LogDir: 'AService.cfg:3', ListenPort: 'AService.cfg:2 (ServiceList)' },
    });
  });

  it('notes sections, misspellings, NSS ciphers, extra ports, repeats and the other protocol', () => {
    const byName = (n: string) =>
      noteFor(p.notes, n).map((x) => `${x.where} ${x.kind}: ${x.message}`);
    expect(byName('mmp2:')).toEqual([
      "ImapProxyAService.cfg:18 no-equivalent: section 'mmp2' (lines 18, 19) is not imported: an mmp instance has one configuration; import it into another instance",
    ]);
    expect(byName('SerchFormat')).toEqual([
      'ImapProxyAService.cfg:8 unknown: not a parameter we know (did you mean SearchFormat?); not imported',
    ]);
    expect(byName('SSLCipherSecs')[0]).toContain(
      "'+rsa_rc4_128_md5,+rsa_3des_sha' names NSS ciphers",
    );
    expect(byName('LdapUrl')[0]).toContain('?attributes?scope?filter part of the URL is dropped');
    expect(byName('LogLevel')).toEqual([
      'ImapProxyAService.cfg:17 info: also set at line 16; this later line wins',
    ]);
    expect(byName('SpoofMessageFile')).toEqual([
      'ImapProxyAService.cfg:15 no-equivalent: SpoofMessageFile does not apply to IMAP; not imported',
    ]);
    expect(byName('ServiceList')).toEqual([
      'AService.cfg:2 no-equivalent: port(s) 10.1.2.3:1143 not imported: an instance listens on one plain and one TLS address per protocol (use another instance for more)',
    ]);
  });

  it('gives values our own files read back as the same configuration', () => {
    const imap = p.protocols.imap;
    if (imap === undefined) throw new Error('no imap plan');
    const text = writeConfigFile('imap', imap.values);
    const fs: ConfigFs = {
      readFile: (path) => ok(path === '/i/ImapMMP.config' ? text : null),
      subdirectories: () => [],
    };
    const a = cliAction('imap', ['-f', '/i/ImapMMP.config'], {}, fs);
    if (a.kind !== 'run') throw new Error(JSON.stringify(a));
    expect(a.config.values).toMatchObject(imap.parsed);
  });
});

describe('planMigration: rules', () => {
  it('has one rule per name, each a parameter of ours or a note', () => {
    const names = SUCCESSOR_NAME_RULES.map((r) => r.theirs.toLowerCase());
    expect(new Set(names).size).toBe(names.length);
    for (const r of SUCCESSOR_NAME_RULES) {
      if (r.ours !== undefined) expect(findParameter(r.ours)?.name).toBe(r.ours);
      expect(r.ours !== undefined || r.note !== undefined || r.readBy !== undefined).toBe(true);
    }
  });

  it('maps the names the issue names: SearchFormat, LdapUrl, BindDN, BindPass, caches, StoreAdmin, SSL*', () => {
    const rule = (n: string) => SUCCESSOR_NAME_RULES.find((r) => r.theirs === n);
    expect(rule('SearchFormat')?.ours).toBe('UidSearch');
    expect(rule('AuthCacheTTL')?.ours).toBe('PreAuthCacheTTL');
    for (const n of [
      'LdapUrl',
      'BindDN',
      'BindPass',
      'LdapCacheSize',
      'LdapCacheTTL',
      'StoreAdmin',
      'StoreAdminPass',
      'SSLEnable',
      'SSLBacksidePort',
      'SSLCertFile',
      'SSLKeyFile',
      'SSLCipherSpecs',
    ])
      expect(rule(n)?.ours).toBe(n);
  });

  it('leaves every noted name out of the values and says so once', () => {
    for (const r of SUCCESSOR_NAME_RULES) {
      if (r.note === undefined) continue;
      const p = imapOnly(`default:${r.theirs} 1\n`);
      if (!p.ok) throw new Error(`${r.theirs}: ${JSON.stringify(p.error)}`);
      expect(p.value.protocols.imap?.values, r.theirs).toEqual({});
      expect(noteFor(p.value.notes, r.theirs), r.theirs).toHaveLength(1);
    }
  });

  it('matches names without regard to case', () => {
    const p = imapOnly('default:searchformat (mail=%s)\ndefault:LDAPCACHETTL 60\n');
    expect(p.ok && p.value.protocols.imap?.values).toEqual({
      UidSearch: '(mail=%s)',
      LdapCacheTTL: '60',
    });
  });

  it('checks every value with our validators, naming their parameter and line', () => {
    expect(
      imapOnly(
        'default:SearchFormat (uid=%x)\ndefault:LogLevel eleven\ndefault:BindPass "x"\ndefault:BacksidePort 0\n',
      ),
    ).toEqual({
      ok: false,
      error: [
        {
          where: 'ImapProxyAService.cfg:1',
          message:
            "SearchFormat: UidSearch: expected an LDAP filter with % escapes such as (uid=%s), got '(uid=%x)' (unknown escape %x at offset 5 (known: %s %U %V %o %C %S %D %%))",
        },
        {
          where: 'ImapProxyAService.cfg:2',
          message: "LogLevel: expected an integer 0–10, got 'eleven'",
        },
        {
          where: 'ImapProxyAService.cfg:4',
          message: "BacksidePort: expected a port 1–65535, got '0' (out of range)",
        },
      ],
    });
  });

  it('joins several LdapUrl lines into one failover list', () => {
    const p = imapOnly('default:LdapUrl ldap://a/o=x\ndefault:LdapUrl ldaps://b:636/o=x\n');
    expect(p.ok && p.value.protocols.imap?.values.LdapUrl).toBe('ldap://a/o=x ldaps://b:636/o=x');
  });

  it('takes 0 as SSLBacksidePort off, as their guides do', () => {
    const p = imapOnly('default:SSLBacksidePort 0\n');
    expect(p.ok && p.value.protocols.imap?.values).toEqual({});
  });
});

describe('planMigration: ServiceList', () => {
  it('without SSLPorts takes the protocol TLS port, else the second port, as SSL', () => {
    const a = imapOnly('', 'default:ServiceList imapproxy@993|143\n');
    expect(a.ok && a.value.protocols.imap?.values).toEqual({
      ListenPort: '143',
      SSLListenPort: '993',
    });
    const b = imapOnly('', 'default:ServiceList imapproxy@1143|1993\n');
    expect(b.ok && b.value.protocols.imap?.values).toEqual({
      ListenPort: '1143',
      SSLListenPort: '1993',
    });
  });

  it('reads SSLPorts from AService.cfg when the service file has none', () => {
    const a = imapOnly('', 'default:ServiceList imapproxy@1143|1993\ndefault:SSLPorts 1143\n');
    expect(a.ok && a.value.protocols.imap?.values).toEqual({
      ListenPort: '1993',
      SSLListenPort: '1143',
    });
  });

  it('a service missing from ServiceList is planned but not enabled', () => {
    const r = imapOnly('default:LogLevel 3\n', 'default:ServiceList popproxy@110\n');
    expect(r.ok && r.value.protocols.imap).toMatchObject({
      enabled: false,
      values: { LogLevel: '3' },
    });
    expect(r.ok && r.value.protocols.pop3).toMatchObject({
      enabled: true,
      values: { ListenPort: '110' },
    });
  });

  it('an SSL-only service keeps a plain listener, and says what to do about it', () => {
    const r = imapOnly(
      'default:SSLEnable yes\ndefault:SSLCertFile /c.pem\ndefault:SSLKeyFile /k.pem\n',
      'default:ServiceList imapproxy@993\n',
    );
    if (!r.ok) throw new Error(JSON.stringify(r.error));
    expect(r.value.protocols.imap?.values.ListenPort).toBeUndefined();
    expect(noteFor(r.value.notes, 'ServiceList')[0]).toMatchObject({
      kind: 'action',
      message: expect.stringContaining('RestrictPlainPasswords yes'),
    });
  });

  it('refuses one port for two services, and a ServiceList that does not parse', () => {
    expect(
      planMigrationFromText({
        aservice: { text: 'default:ServiceList imapproxy@143 popproxy@143\n', fileName: 'A.cfg' },
      }),
    ).toEqual({
      ok: false,
      error: [
        {
          where: 'A.cfg:1',
          message: 'ServiceList: port 143 is both IMAP ListenPort and POP3 ListenPort',
        },
      ],
    });
    expect(
      planMigrationFromText({
        aservice: { text: 'default:ServiceList imapproxy@14x\n', fileName: 'A.cfg' },
      }),
    ).toEqual({
      ok: false,
      error: [
        {
          where: 'A.cfg:1',
          message: "ServiceList: 'imapproxy@14x': '14x' is not a port or IP:port",
        },
      ],
    });
  });

  it('notes ServiceList in a service file and keeps its defaults without one', () => {
    const r = imapOnly('default:ServiceList imapproxy@1143\n');
    if (!r.ok) throw new Error(JSON.stringify(r.error));
    expect(r.value.protocols.imap?.values).toEqual({});
    expect(noteFor(r.value.notes, 'ServiceList').map((n) => n.kind)).toEqual([
      'no-equivalent',
      'info',
    ]);
  });
});

describe('planMigrationFromConfigFiles: a 4.x ImapMMP.config / PopMMP.config from another host', () => {
  const FOUR_X = [
    '# ImapMMP.config of a Messaging Server 4.x host',
    'LDAPHost="ldap1.example.com:389 ldap2.example.com:389"; export LDAPHost',
    "BaseDN='o=example.com'",
    'export BaseDN',
    'LDAPAuth=y',
    'BindDN="cn=mmp, o=example.com"',
    'BindPassword="s3cret"',
    'NumThreads=16',
    'SSLEnable=yes',
    'SSLSecmodFile=/usr/netscape/suitespot4/alias/secmod.db',
    'SSLCertFile=/usr/netscape/suitespot4/alias/cert7.db',
    'SSLKeyFile=/usr/netscape/suitespot4/alias/key3.db',
    'SSLCertName="Server-Cert"',
    'SSLCipherSpecs=SSL_RSA_WITH_RC4_128_MD5',
    'setenv UidSearch "(mail=%s)"',
    'ListenPrt=1143',
    '',
  ].join('\n');

  it('carries our names over, with the 4.x meanings noted: NSS files, ciphers, threads', () => {
    const r = planMigrationFromConfigFiles({ imap: { text: FOUR_X, fileName: 'ImapMMP.config' } });
    if (!r.ok) throw new Error(JSON.stringify(r.error));
    expect(r.value.protocols.imap).toMatchObject({
      enabled: true,
      values: {
        LDAPHost: 'ldap1.example.com:389 ldap2.example.com:389',
        BaseDN: 'o=example.com',
        LDAPAuth: 'y',
        BindDN: 'cn=mmp, o=example.com',
        BindPass: 's3cret',
        SSLEnable: 'yes',
        UidSearch: '(mail=%s)',
      },
      origins: { BindPass: 'ImapMMP.config:7 (BindPassword)', UidSearch: 'ImapMMP.config:15' },
    });
    expect(r.value.protocols.pop3).toBeUndefined();
    const notes = r.value.notes.map((n) => `${n.where} ${n.name} ${n.kind}`);
    expect(notes).toEqual([
      'ImapMMP.config:8 NumThreads changed',
      'ImapMMP.config:10 SSLSecmodFile no-equivalent',
      'ImapMMP.config:11 SSLCertFile action',
      'ImapMMP.config:12 SSLKeyFile action',
      // The guide's other spelling follows the rule of SSLCertNickname.
      'ImapMMP.config:13 SSLCertName no-equivalent',
      'ImapMMP.config:14 SSLCipherSpecs changed',
      'ImapMMP.config:16 ListenPrt unknown',
      'ImapMMP.config:9 SSLEnable action',
    ]);
    expect(r.value.notes.find((n) => n.name === 'SSLCertFile')?.message).toContain(
      "pk12util -d /usr/netscape/suitespot4/alias -n 'Server-Cert' -o server.p12",
    );
    expect(r.value.notes.find((n) => n.name === 'ListenPrt')?.message).toContain(
      'did you mean ListenPort?',
    );
    expect(JSON.stringify(r.value.notes)).not.toContain('s3cret');
  });

  it('takes a file mmp-setup wrote (RunAsUser) whole: its NumThreads and ciphers are ours', () => {
    const text = writeConfigFile('pop3', {
      NumThreads: '2',
      SSLCipherSpecs: 'ECDHE-RSA-AES128-GCM-SHA256',
      RunAsUser: 'mmp',
      ListenPort: '110',
    });
    const r = planMigrationFromConfigFiles({ pop3: { text, fileName: 'PopMMP.config' } });
    if (!r.ok) throw new Error(JSON.stringify(r.error));
    expect(r.value.protocols.pop3?.values).toEqual({
      NumThreads: '2',
      ListenPort: '110',
      SSLCipherSpecs: 'ECDHE-RSA-AES128-GCM-SHA256',
      RunAsUser: 'mmp',
    });
    expect(r.value.notes).toEqual([]);
  });

  it('refuses what the shell reader refuses and values our validators refuse, with their lines', () => {
    expect(
      planMigrationFromConfigFiles({
        imap: { text: 'LogDir=$HOME/log\nLogLevel=eleven\n', fileName: 'ImapMMP.config' },
      }),
    ).toEqual({
      ok: false,
      error: [
        {
          where: 'ImapMMP.config:1',
          message: "'$' is not supported outside quotes",
        },
      ],
    });
    expect(
      planMigrationFromConfigFiles({
        pop3: { text: 'LogLevel=eleven\n', fileName: 'PopMMP.config' },
      }),
    ).toEqual({
      ok: false,
      error: [
        { where: 'PopMMP.config:1', message: "LogLevel: expected an integer 0–10, got 'eleven'" },
      ],
    });
  });
});
