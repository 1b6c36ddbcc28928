/**
 * mmp-setup --import, in-process: the successors' *AService.cfg and a 4.x ImapMMP.config taken
 * from another host, the plan it prints, the dry run, the refusals of a plan the proxy could not
 * run (SSL with only NSS databases) and of bad input, an interactive import that asks for what is
 * missing, and an update of an existing instance.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfigFile } from '@mmp/config';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type TempDir, runCli, tempDir } from './test-support/fixtures.js';
import { ScriptedPerson } from './test-support/person.js';

let tmp: TempDir;
let conf: string;
let root: string;
let old: string;
let pki: string;
beforeEach(() => {
  tmp = tempDir();
  conf = join(tmp.path, 'netscape.mmp.conf');
  root = join(tmp.path, 'mmp');
  old = join(tmp.path, 'old-host');
  pki = join(tmp.path, 'pki');
  mkdirSync(old);
  mkdirSync(pki);
  for (const f of ['server.pem', 'server.key']) writeFileSync(join(pki, f), 'x');
});
afterEach(() => tmp.cleanup());

const opts = (): { confFile: string; cwd: string } => ({ confFile: conf, cwd: tmp.path });

/** What is on disk besides the import's own files (nothing, after a refusal or a dry run). */
const written = (): string[] =>
  readdirSync(tmp.path)
    .filter((f) => !['old-host', 'pki'].includes(f))
    .sort();

function configOf(instance: string, file: 'ImapMMP.config' | 'PopMMP.config') {
  const path = join(root, `MMP_${instance}`, file);
  const parsed = parseConfigFile(readFileSync(path, 'utf8'), path);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.error));
  return Object.fromEntries([...parsed.value].map(([k, v]) => [k, v.raw]));
}

/** An iPlanet 5 host's three files; `ssl` picks what its certificate settings name. */
function iplanet(ssl: 'pem' | 'nss'): void {
  writeFileSync(
    join(old, 'AService.cfg'),
    [
      '# AService.cfg of mmp1.example.com (iPlanet Messaging Server 5.2)',
      'default:ServiceList "/usr/iplanet/server5/lib/ImapProxyAService@127.0.10.1:143|127.0.10.1:993 /usr/iplanet/server5/lib/PopProxyAService@127.0.10.1:110|127.0.10.1:995"',
      'default:LogDir /usr/iplanet/server5/msg-mmp/log',
      'default:LdapUrl "ldap://127.0.10.9:389/o=mmp.test ldap://127.0.0.1:3389/o=mmp.test"',
      'default:BindDN "cn=mmp,ou=services,o=mmp.test"',
      'default:BindPass "bind secret"',
      'default:NumThreads 4',
      '',
    ].join('\n'),
  );
  const cert =
    ssl === 'pem'
      ? [`default:SSLCertFile ${join(pki, 'server.pem')}`, 'default:SSLKeyFile ../pki/server.key']
      : [
          'default:SSLCertFile /usr/iplanet/server5/alias/cert7.db',
          'default:SSLKeyFile /usr/iplanet/server5/alias/key3.db',
          'default:SSLCertNicknames Server-Cert',
        ];
  writeFileSync(
    join(old, 'ImapProxyAService.cfg'),
    [
      'default:SearchFormat (uid=%U)',
      'default:BacksidePort 1143',
      'default:SSLEnable yes',
      ...cert,
      'default:Timeout 1800',
      'default:BGMax 10000',
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(old, 'PopProxyAService.cfg'),
    'default:SearchFormat uid=%s\ndefault:BacksidePort 1110\ndefault:SSLEnable no\n',
  );
}

describe('mmp-setup --import the successors’ *AService.cfg', () => {
  it('--dry-run prints the plan, one line per setting not carried over or changed, and writes nothing', async () => {
    iplanet('pem');
    const r = await runCli(
      ['--import', old, '--instance', 'mig', '--root', root, '--dry-run'],
      opts(),
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = r.stdout.split('\n');
    expect(out[0]).toBe(
      `Import from ${old}/AService.cfg, ${old}/ImapProxyAService.cfg, ${old}/PopProxyAService.cfg:`,
    );
    const line = (start: string): string | undefined =>
      out.find((l) => l.trimStart().startsWith(start));
    expect(line('UidSearch="(uid=%U)"')).toMatch(/ImapProxyAService\.cfg:1 \(SearchFormat\)$/);
    expect(line('UidSearch="(uid=%s)"')).toMatch(/PopProxyAService\.cfg:1 \(SearchFormat\)$/);
    expect(line('ListenPort="127.0.10.1:143"')).toMatch(/AService\.cfg:2 \(ServiceList\)$/);
    expect(line('SSLListenPort="127.0.10.1:993"')).toBeDefined();
    expect(
      line('LdapUrl="ldap://127.0.10.9:389/o=mmp.test ldap://127.0.0.1:3389/o=mmp.test"'),
    ).toBeDefined();
    // Relative paths were relative to the old file's directory.
    expect(line(`SSLKeyFile="${join(pki, 'server.key')}"`)).toBeDefined();
    expect(line('BindPass=******')).toBeDefined();
    expect(r.stdout).not.toContain('bind secret');
    // The notes: each with its file, line and kind.
    expect(out).toContain(
      "  ImapProxyAService.cfg:6 Timeout (IMAP4) [changed]: their Timeout limited every idle session; mmp's Timeout is the idle limit before login (default 60 s) and after login the store's own idle timeout applies: not carried over",
    );
    expect(line('ImapProxyAService.cfg:7 BGMax (IMAP4) [no equivalent]')).toBeDefined();
    expect(line('AService.cfg:7 NumThreads [changed]')).toBeDefined();
    expect(
      line('PopProxyAService.cfg:1 SearchFormat (POP3) [changed]: written as (uid=%s)'),
    ).toBeDefined();
    expect(line('AService.cfg:3 LogDir [changed]')).toBeDefined();
    // The dialogue's summary, then what would be written.
    expect(r.stdout).toContain('LDAP Host: not asked: LdapUrl is set and replaces it.');
    expect(r.stdout).toContain(`Dry run: would create instance mig in ${root}/MMP_mig:`);
    expect(r.stdout).toContain(`  ${root}/MMP_mig/ImapMMP.config\n`);
    expect(r.stdout).toContain('Nothing was written.');
    expect(written()).toEqual([]);
  });

  it('--yes writes the instance: every value as planned, the old host’s LogDir replaced', async () => {
    iplanet('pem');
    const r = await runCli(['--import', old, '--instance', 'mig', '--root', root, '--yes'], opts());
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Created instance mig in ${root}/MMP_mig:`);
    const imap = configOf('mig', 'ImapMMP.config');
    expect(imap).toMatchObject({
      LdapUrl: 'ldap://127.0.10.9:389/o=mmp.test ldap://127.0.0.1:3389/o=mmp.test',
      BindDN: 'cn=mmp,ou=services,o=mmp.test',
      BindPass: 'bind secret',
      ListenPort: '127.0.10.1:143',
      SSLListenPort: '127.0.10.1:993',
      BacksidePort: '1143',
      UidSearch: '(uid=%U)',
      SSLEnable: 'yes',
      SSLCertFile: join(pki, 'server.pem'),
      SSLKeyFile: join(pki, 'server.key'),
      LogDir: join(tmp.path, 'log', 'mig'),
    });
    // Neither the replaced LDAP questions nor the dropped settings are written.
    for (const n of ['LDAPHost', 'BaseDN', 'Timeout']) expect(imap).not.toHaveProperty(n);
    expect(imap.NumThreads).toBe('0');
    const pop = configOf('mig', 'PopMMP.config');
    expect(pop).toMatchObject({
      ListenPort: '127.0.10.1:110',
      SSLListenPort: '127.0.10.1:995',
      SSLEnable: 'no',
      BacksidePort: '1110',
    });
    // uid=%s became (uid=%s), the default: the dialogue's "n" keeps a default out of the file.
    expect(pop).not.toHaveProperty('UidSearch');
  });

  it('SSL with only NSS databases: --yes refuses in one line naming the --set options, writes nothing; with them it imports', async () => {
    iplanet('nss');
    const args = ['--import', old, '--instance', 'mig', '--root', root, '--yes'];
    const r = await runCli(args, opts());
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'mmp-setup: the proxy would not start without SSLCertFile, SSLKeyFile (IMAP4): add --set imap:SSLCertFile=FILE --set imap:SSLKeyFile=FILE (or --set imap:SSLEnable=no)\n',
    );
    // The notes said why, with the export recipe.
    expect(r.stdout).toContain(
      "ImapProxyAService.cfg:4 SSLCertFile (IMAP4) [to do]: '/usr/iplanet/server5/alias/cert7.db' is an NSS certificate database; mmp reads PEM files. Export with pk12util -d /usr/iplanet/server5/alias -n 'Server-Cert' -o server.p12",
    );
    expect(r.stdout).not.toContain('Summary');
    expect(written()).toEqual([]);

    const dry = await runCli([...args.slice(0, -1), '--dry-run'], opts());
    expect(dry.code).toBe(2);
    expect(dry.stderr).toBe(r.stderr);
    expect(written()).toEqual([]);

    const withPem = await runCli(
      [
        ...args,
        '--set',
        `imap:SSLCertFile=${join(pki, 'server.pem')}`,
        '--set',
        `imap:SSLKeyFile=${join(pki, 'server.key')}`,
      ],
      opts(),
    );
    expect(withPem.stderr).toBe('');
    expect(withPem.code).toBe(0);
    expect(configOf('mig', 'ImapMMP.config')).toMatchObject({
      SSLEnable: 'yes',
      SSLCertFile: join(pki, 'server.pem'),
    });
  });

  it('without --yes prints the plan, then asks for what is missing (the PEM files) in the dialogue', async () => {
    iplanet('nss');
    const person = new ScriptedPerson([
      ['server certificate file (PEM)', ''],
      ['server certificate file (PEM)', join(pki, 'server.pem')],
      ['private key file (PEM)', join(pki, 'server.key')],
    ]);
    const r = await runCli(['--import', old, '--instance', 'mig', '--root', root], {
      ...opts(),
      prompter: person,
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.indexOf('Import from')).toBe(0);
    expect(person.transcript.refusals).toEqual(['SSLCertFile: a value is required']);
    // The imported values are the defaults offered.
    expect(person.transcript.asked).toContain('(IMAP4) Which port: [127.0.10.1:143] => ');
    expect(configOf('mig', 'ImapMMP.config')).toMatchObject({
      SSLCertFile: join(pki, 'server.pem'),
      SSLKeyFile: join(pki, 'server.key'),
    });
  });

  it('certificate login imported without a client CA is refused with the options that complete or drop it', async () => {
    iplanet('pem');
    const certmap = join(pki, 'certmap.conf');
    writeFileSync(certmap, 'certmap default default\ndefault:FilterComps ou=uid\n');
    writeFileSync(
      join(old, 'ImapProxyAService.cfg'),
      `${readFileSync(join(old, 'ImapProxyAService.cfg'), 'utf8')}default:CertMapFile ${certmap}\ndefault:StoreAdmin mmpstore\ndefault:StoreAdminPass "store secret"\n`,
    );
    const r = await runCli(['--import', old, '--instance', 'mig', '--root', root, '--yes'], opts());
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'mmp-setup: the proxy would not start without SSLClientCAFile (IMAP4): add --set imap:SSLClientCAFile=FILE (or --set imap:SSLEnable=no, or --set imap:CertMapFile= --set imap:StoreAdmin= --set imap:StoreAdminPass=)\n',
    );
    expect(r.stderr).not.toContain('store secret');
    expect(written()).toEqual([]);

    // An answers file completes it (and names the instance): its values over the import's.
    const ca = join(pki, 'client-ca.pem');
    writeFileSync(ca, 'x');
    writeFileSync(join(tmp.path, 'more.yaml'), `instance: mig\nimap:\n  SSLClientCAFile: ${ca}\n`);
    const done = await runCli(
      ['--import', old, '--answers', join(tmp.path, 'more.yaml'), '--root', root, '--yes'],
      opts(),
    );
    expect(done.stderr).toBe('');
    expect(done.code).toBe(0);
    expect(configOf('mig', 'ImapMMP.config')).toMatchObject({
      CertMapFile: certmap,
      SSLClientCAFile: ca,
      StoreAdmin: 'mmpstore',
      StoreAdminPass: 'store secret',
    });
  });

  it('updates an existing instance: imported values over its own, its services kept, its LogDir kept', async () => {
    writeFileSync(
      join(tmp.path, 'a.yaml'),
      `root: ${root}\ninstance: mig\nservices: pop3\nLogLevel: 7\nLogDir: /tmp\n`,
    );
    expect((await runCli(['--answers', join(tmp.path, 'a.yaml'), '--yes'], opts())).code).toBe(0);
    writeFileSync(
      join(old, 'ImapProxyAService.cfg'),
      'default:SearchFormat (mail=%s)\ndefault:LogDir /nonexistent/log\n',
    );
    const r = await runCli(
      ['--import', join(old, 'ImapProxyAService.cfg'), '--instance', 'mig', '--yes'],
      opts(),
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Updated instance mig in ${root}/MMP_mig:`);
    // Without AService.cfg: this one file, its protocol added to the instance's, logging where
    // the instance's other protocol does.
    expect(configOf('mig', 'ImapMMP.config')).toMatchObject({
      UidSearch: '(mail=%s)',
      LogDir: '/tmp',
    });
    expect(configOf('mig', 'PopMMP.config')).toMatchObject({ LogLevel: '7', LogDir: '/tmp' });
  });
});

describe('mmp-setup --import a 4.x ImapMMP.config from another host', () => {
  it('carries our names over with their 4.x meanings noted, and writes LDAPAuth as the file says', async () => {
    writeFileSync(
      join(old, 'ImapMMP.config'),
      [
        'LDAPHost="ldap1.example.com ldap2.example.com:1389"; export LDAPHost',
        'BaseDN="o=example.com"; export BaseDN',
        'LDAPAuth=n; export LDAPAuth',
        'NumThreads=32; export NumThreads',
        'ListenPort=127.0.10.1:1143; export ListenPort',
        'LogDir=/usr/netscape/suitespot4/mmp/MMP_mail/log; export LogDir',
        'setenv VirtualDomainFile vdmap',
        'SSLCipherSpecs=SSL_RSA_WITH_RC4_128_MD5; export SSLCipherSpecs',
        '',
      ].join('\n'),
    );
    writeFileSync(join(old, 'vdmap'), 'vdmap one 127.0.10.2\none:VDomain one.example\n');
    const r = await runCli(
      ['--import', old, '--instance', 'four', '--root', root, '--yes'],
      opts(),
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('ImapMMP.config:4 NumThreads (IMAP4) [changed]');
    expect(r.stdout).toContain('ImapMMP.config:8 SSLCipherSpecs (IMAP4) [changed]');
    expect(r.stdout).toContain('ImapMMP.config:6 LogDir (IMAP4) [changed]');
    expect(configOf('four', 'ImapMMP.config')).toMatchObject({
      LDAPHost: 'ldap1.example.com ldap2.example.com:1389',
      BaseDN: 'o=example.com',
      LDAPAuth: 'no',
      NumThreads: '0',
      ListenPort: '127.0.10.1:1143',
      // Relative to the old instance directory, which holds it here.
      VirtualDomainFile: join(old, 'vdmap'),
    });
    expect(configOf('four', 'ImapMMP.config')).not.toHaveProperty('SSLCipherSpecs');
    expect(existsSync(join(root, 'MMP_four', 'PopMMP.config'))).toBe(false);
  });
});

describe('mmp-setup --import refuses bad input in one line each, exit 2, writing nothing', () => {
  it.each([
    [
      'a missing path',
      () => ['--import', join(tmp.path, 'nope')],
      (): string[] => [`${join(tmp.path, 'nope')}: no such file or directory`],
    ],
    [
      'a directory without any of the files',
      () => ['--import', pki],
      () => [
        `${pki}: holds none of AService.cfg, ImapProxyAService.cfg, PopProxyAService.cfg, ImapMMP.config, PopMMP.config`,
      ],
    ],
    [
      'a file whose name says nothing',
      () => {
        writeFileSync(join(old, 'mmp.txt'), 'default:LogLevel 3\n');
        return ['--import', join(old, 'mmp.txt')];
      },
      () => [
        `${join(old, 'mmp.txt')}: not one of AService.cfg, ImapProxyAService.cfg, PopProxyAService.cfg, ImapMMP.config, PopMMP.config (its name says which it is)`,
      ],
    ],
    [
      'a value our validators refuse, at its line',
      () => {
        writeFileSync(join(old, 'ImapProxyAService.cfg'), '# x\ndefault:LogLevel eleven\n');
        return ['--import', old];
      },
      () => ["ImapProxyAService.cfg:2: LogLevel: expected an integer 0–10, got 'eleven'"],
    ],
    [
      'a file the configuration names that is not on this host',
      () => {
        writeFileSync(
          join(old, 'PopProxyAService.cfg'),
          'default:SpoofMessageFile /old/spoof.txt\n',
        );
        return ['--import', old];
      },
      () => [
        'PopProxyAService.cfg:1: SpoofMessageFile: /old/spoof.txt is not on this host: copy it there, or add --set SpoofMessageFile=FILE',
      ],
    ],
    [
      'two kinds of configuration at once',
      () => {
        writeFileSync(join(old, 'ImapProxyAService.cfg'), '');
        writeFileSync(join(old, 'PopMMP.config'), '');
        return ['--import', old];
      },
      () => [
        "ImapProxyAService.cfg, PopMMP.config: the successors' *AService.cfg and ImapMMP.config/PopMMP.config are two configurations; import one of them",
      ],
    ],
    [
      'an unknown --set name',
      () => {
        writeFileSync(join(old, 'ImapProxyAService.cfg'), '');
        return ['--import', old, '--set', 'SSLCertFle=/x.pem'];
      },
      () => ["--set: unknown parameter 'SSLCertFle' (did you mean SSLCertFile?)"],
    ],
    [
      '--yes without --instance',
      () => {
        writeFileSync(join(old, 'ImapProxyAService.cfg'), '');
        return ['--import', old, '--yes'];
      },
      () => ['--import with --yes needs --instance NAME (the instance to create or update)'],
    ],
    [
      '--import with --modify',
      () => ['--import', old, '--modify', 'x'],
      () => ['--import takes no --modify: --instance NAME names the instance to create or update'],
    ],
  ])('%s', async (_what, argv, messages) => {
    const args = [...argv(), ...(argv().includes('--yes') ? [] : ['--instance', 'x', '--yes'])];
    const r = await runCli([...args, '--root', root], opts());
    expect(r.code).toBe(2);
    expect(r.stderr.trimEnd().split('\n')).toEqual(messages().map((m) => `mmp-setup: ${m}`));
    expect(written()).toEqual([]);
  });
});
