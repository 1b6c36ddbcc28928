import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from './test-support/tempDirs.js';
import {
  type ConfigValues,
  type Result,
  type VirtualDomain,
  err,
  ok,
  parseCommandLine,
  resolveConfig,
} from '@mmp/config';
import type { DirectorySettings, UserDirectory } from './directory.js';
import type { FileError, ReadFile } from './files.js';
import { FakeDirectory } from './test-support/harness.js';
import { selfSignedCertificate } from './test-support/selfSigned.js';
import { buildRuntime } from './proxyRuntime.js';
import { certificateRequired } from './tls/settings.js';
import { loadVdmap } from './vdomain/table.js';

function globalValues(...extra: string[]): ConfigValues {
  const cl = parseCommandLine('imap', [
    '-h',
    '127.0.0.1:389',
    '-b',
    'o=global',
    '-D',
    'cn=global',
    '-w',
    'global-secret',
    '-vd',
    '/vdmap',
    '-p',
    '127.0.0.1:1143',
    ...extra,
  ]);
  if (!cl.ok) throw new Error('command line');
  const r = resolveConfig({ protocol: 'imap', commandLine: cl.value, env: {} });
  if (!r.ok) throw new Error(JSON.stringify(r.error));
  return r.value.values;
}

/** Files in memory: what a runtime reads, without a disk. */
function files(contents: Record<string, string>): ReadFile {
  return (path) => {
    const text = contents[path];
    return text === undefined
      ? err<FileError>({ kind: 'unreadable', code: 'ENOENT' })
      : ok(Buffer.from(text));
  };
}

const VDMAP = [
  'vdmap one 127.0.0.4',
  'one:VDomain one.example',
  'one:LdapUrl ldaps://ldap1.one.example/o=one ldap://ldap2.one.example:1389/o=one-replica',
  'one:UidSearch (mail=%U@%V)',
  'one:MailHostAttrs mmpAltMailHost,mailHost',
  'one:PreAuth yes',
  'vdmap six ::1',
  'six:VirtualDomainDelim %',
  'six:CanonicalVirtualDomainDelim #',
  '',
].join('\n');

const SPOOF =
  'From: postmaster@mmp.test\r\nDate: Mon, 01 Jan 2024 00:00:00 +0000\r\nSubject: down\r\n\r\nback soon\r\n.\r\n';

/** Directories opened by the runtime, each with the settings it was opened for. */
function directories(): {
  opened: DirectorySettings[];
  open: (s: DirectorySettings) => UserDirectory;
} {
  const opened: DirectorySettings[] = [];
  return {
    opened,
    open: (s) => {
      opened.push(s);
      return new FakeDirectory([]);
    },
  };
}

/** The vdmap `text`, as main.ts loads it (every address counts as local here). */
function vdmapOf(text: string, read: ReadFile): { path: string; domains: VirtualDomain[] } {
  const loaded = loadVdmap(
    '/vdmap',
    () => true,
    (path) => (path === '/vdmap' ? ok(Buffer.from(text)) : read(path)),
  );
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.error));
  return { path: '/vdmap', domains: loaded.value.domains };
}

function expectOk<T, E>(r: Result<T, E>): T {
  if (!r.ok) throw new Error(JSON.stringify(r.error));
  return r.value;
}

describe('buildRuntime', () => {
  const read = files({ '/spoof': SPOOF });
  const values = { ...globalValues(), SpoofMessageFile: '/spoof' };

  it('gives an unmapped address the global site, a mapped one (any spelling) its entry’s values', () => {
    const dirs = directories();
    const runtime = expectOk(
      buildRuntime(
        { protocol: 'imap', values, vdmap: vdmapOf(VDMAP, read) },
        { read, openDirectory: dirs.open },
      ),
    );
    const global = runtime.siteFor('127.0.0.1');
    expect(global).toBe(runtime.global);
    expect(global.settings.userNames).toEqual({
      delimiters: '@',
      canonicalDelim: '+',
      vdomain: undefined,
      defaultDomain: undefined,
    });
    const one = runtime.siteFor('::ffff:127.0.0.4');
    expect(one.settings.searchFormat.text).toBe('(mail=%U@%V)');
    expect(one.settings.userNames?.vdomain).toBe('one.example');
    expect(one.settings.directory.mailHostAttrs).toEqual(['mmpAltMailHost', 'mailHost']);
    expect(one.settings.directory.hosts).toEqual([
      { host: 'ldap1.one.example', secure: true, baseDn: 'o=one' },
      { host: 'ldap2.one.example', port: 1389, secure: false, baseDn: 'o=one-replica' },
    ]);
    // Its own directory: the global service account is not sent there.
    expect(one.settings.directory.bindDn).toBeUndefined();
    expect(one.settings.directory.bindPassword).toBeUndefined();
    // ListenPort is global; the spoof message is the runtime's, read once.
    expect(one.settings.listen).toEqual({ host: '127.0.0.1', port: 1143 });
    expect(runtime.spoof?.bytes.toString()).toContain('back soon');
    expect(runtime.siteFor('::1').settings.userNames).toMatchObject({
      delimiters: '%',
      canonicalDelim: '#',
    });
    expect(runtime.siteFor('0:0:0:0:0:0:0:1')).toBe(runtime.siteFor('::1'));
  });

  it('opens one directory client per distinct directory', () => {
    const dirs = directories();
    const runtime = expectOk(
      buildRuntime(
        { protocol: 'imap', values, vdmap: vdmapOf(VDMAP, read) },
        { read, openDirectory: dirs.open },
      ),
    );
    const one = runtime.siteFor('127.0.0.4').directory;
    expect(one).not.toBe(runtime.global.directory);
    // six.example uses the global directory settings: the global client.
    expect(runtime.siteFor('::1').directory).toBe(runtime.global.directory);
    expect(dirs.opened.map((d) => d.baseDn)).toEqual(['o=global', 'o=one']);
  });

  it('reports the first global problem as the operator reads it', () => {
    expect(
      buildRuntime(
        { protocol: 'imap', values: { ...values, SpoofMessageFile: '/gone' }, vdmap: undefined },
        { read },
      ),
    ).toEqual({ ok: false, error: ['SpoofMessageFile /gone: cannot read it: ENOENT'] });
    const tls = { ...values, SSLEnable: true, SSLCertFile: '/cert.pem', SSLKeyFile: '/key.pem' };
    expect(buildRuntime({ protocol: 'imap', values: tls, vdmap: undefined }, { read })).toEqual({
      ok: false,
      error: ['SSLCertFile /cert.pem: ENOENT'],
    });
  });

  it('refuses ProxyProtocol without trusted networks, globally or in a vdmap entry; a site keeps its own listeners', () => {
    const pp = globalValues('--ProxyProtocol=ListenPort');
    expect(buildRuntime({ protocol: 'imap', values: pp, vdmap: undefined }, { read })).toEqual({
      ok: false,
      error: [
        'ProxyProtocol is set but ProxyProtocolTrustedNetworks is not: no balancer could connect',
      ],
    });
    const inVdmap = buildRuntime(
      {
        protocol: 'imap',
        values,
        vdmap: vdmapOf('vdmap one 127.0.0.4\none:ProxyProtocol SSLListenPort\n', read),
      },
      { read },
    );
    expect(inVdmap.ok ? [] : inVdmap.error).toEqual([
      'vdmap:1: vdmap one: ProxyProtocol is set but ProxyProtocolTrustedNetworks is not: no balancer could connect',
    ]);
    const trusted = globalValues(
      '--ProxyProtocol=ListenPort',
      '--ProxyProtocolTrustedNetworks=10.0.0.0/8',
    );
    const runtime = expectOk(
      buildRuntime(
        {
          protocol: 'imap',
          values: trusted,
          vdmap: vdmapOf('vdmap one 127.0.0.4\none:ProxyProtocol SSLListenPort\n', read),
        },
        { read },
      ),
    );
    expect(runtime.siteFor('127.0.0.1').settings.proxyProtocol).toEqual({
      listen: true,
      sslListen: false,
      trusted: [{ address: '10.0.0.0', family: 4, prefix: 8 }],
    });
    expect(runtime.siteFor('127.0.0.4').settings.proxyProtocol).toMatchObject({
      listen: false,
      sslListen: true,
    });
  });

  it('reports each domain’s problem at its vdmap line; a reload with it makes nothing then', async () => {
    const dir = await tempDir('mmp-runtime-');
    await selfSignedCertificate({
      keyFile: join(dir, 'key.pem'),
      certFile: join(dir, 'cert.pem'),
      subject: '/CN=localhost',
    });
    const disk = files({
      '/cert.pem': await readFile(join(dir, 'cert.pem'), 'utf8'),
      '/key.pem': await readFile(join(dir, 'key.pem'), 'utf8'),
      '/ca.pem': await readFile(join(dir, 'cert.pem'), 'utf8'),
      '/certmap.conf': 'certmap default default\ndefault:FilterComps ou=uid\n',
      '/bad-certmap.conf': 'certmap\nnonsense here\n',
    });
    // Certificate login configured globally: SSLEnable, a client CA, the master user.
    const certLogin: ConfigValues = {
      ...globalValues(),
      SSLEnable: true,
      SSLCertFile: '/cert.pem',
      SSLKeyFile: '/key.pem',
      SSLClientCAFile: '/ca.pem',
      CertMapFile: '/certmap.conf',
      StoreAdmin: 'master',
      StoreAdminPass: 'master-secret',
    };
    const bad = '# one\nvdmap one 127.0.0.4\none:CertMapFile /bad-certmap.conf\n';
    const refused = buildRuntime(
      { protocol: 'imap', values: certLogin, vdmap: vdmapOf(bad, disk) },
      { read: disk, openDirectory: directories().open },
    );
    expect(refused.ok ? [] : refused.error).toEqual([
      expect.stringMatching(/^vdmap:2: vdmap one: certificate login: /),
    ]);
    const good = expectOk(
      buildRuntime(
        { protocol: 'imap', values: certLogin, vdmap: undefined },
        { read: disk, openDirectory: directories().open },
      ),
    );
    expect(good.global.certLogin?.storeAdmin.toString()).toBe('master');
    expect(good.serverTls?.requestCert).toBe(true);
    const again = buildRuntime(
      { protocol: 'imap', values: certLogin, vdmap: vdmapOf(bad, disk) },
      { read: disk, openDirectory: directories().open, previous: good },
    );
    expect(again.ok ? [] : again.error).toEqual([
      expect.stringMatching(/^vdmap:2: vdmap one: certificate login: /),
    ]);
  });
});

describe('the guide’s certificate recipe and required certificates (issue 17)', () => {
  async function tlsFiles(extra: Record<string, string> = {}): Promise<ReadFile> {
    const dir = await tempDir('mmp-runtime-');
    await selfSignedCertificate({
      keyFile: join(dir, 'key.pem'),
      certFile: join(dir, 'cert.pem'),
      subject: '/CN=localhost',
    });
    return files({
      '/cert.pem': await readFile(join(dir, 'cert.pem'), 'utf8'),
      '/key.pem': await readFile(join(dir, 'key.pem'), 'utf8'),
      '/ca.pem': await readFile(join(dir, 'cert.pem'), 'utf8'),
      '/certmap.conf': 'certmap default default\n',
      ...extra,
    });
  }
  // The guide's recipe, as written: SSLEnable, CertMapFile, StoreAdmin and StoreAdminPass.
  const recipe: ConfigValues = {
    ...globalValues(),
    SSLEnable: true,
    SSLCertFile: '/cert.pem',
    SSLKeyFile: '/key.pem',
    CertMapFile: '/certmap.conf',
    StoreAdmin: 'master',
    StoreAdminPass: 'master-secret',
  };
  const build = (values: ConfigValues, read: ReadFile) =>
    buildRuntime(
      { protocol: 'imap', values, vdmap: undefined },
      { read, openDirectory: directories().open },
    );

  it('refuses to start without a client CA, naming the parameter to set (never silently off)', async () => {
    const read = await tlsFiles();
    expect(build(recipe, read)).toEqual({
      ok: false,
      error: [expect.stringMatching(/^certificate login: .*set SSLClientCAFile/)],
    });
    // With the CA (SSLClientCAFile, or SSLCAFile), it starts and asks clients for certificates.
    for (const ca of [{ SSLClientCAFile: '/ca.pem' }, { SSLCAFile: '/ca.pem' }]) {
      const runtime = expectOk(build({ ...recipe, ...ca }, read));
      expect(runtime.global.certLogin).toBeDefined();
      expect(runtime.serverTls?.requestCert).toBe(true);
      expect(runtime.serverTls?.options.rejectUnauthorized).toBe(false);
    }
  });

  it('refuses an empty DNComps without FilterComps: every certificate would map to BaseDN', async () => {
    const read = await tlsFiles({ '/certmap.conf': 'certmap default default\ndefault:DNComps\n' });
    expect(build({ ...recipe, SSLClientCAFile: '/ca.pem' }, read)).toEqual({
      ok: false,
      error: [expect.stringMatching(/an empty DNComps needs FilterComps/)],
    });
  });

  it('SSLRequireClientCert needs a client CA, and rejects handshakes where it says', async () => {
    const read = await tlsFiles();
    const tls = {
      ...globalValues(),
      SSLEnable: true,
      SSLCertFile: '/cert.pem',
      SSLKeyFile: '/key.pem',
    };
    expect(build({ ...tls, SSLRequireClientCert: 'implicit' }, read)).toEqual({
      ok: false,
      error: [
        'SSLRequireClientCert=implicit needs the CA that issues client certificates: set SSLClientCAFile',
      ],
    });
    const implicit = expectOk(
      build({ ...tls, SSLRequireClientCert: 'implicit', SSLClientCAFile: '/ca.pem' }, read),
    );
    // The certificates ask for one; the listener requires it where the site says.
    expect(implicit.serverTls?.options).toMatchObject({
      requestCert: true,
      rejectUnauthorized: false,
    });
    const security = implicit.global.settings.security;
    expect(certificateRequired(security, 'implicit')).toBe(true);
    expect(certificateRequired(security, 'starttls')).toBe(false);
    const all = expectOk(
      build({ ...tls, SSLRequireClientCert: 'all', SSLClientCAFile: '/ca.pem' }, read),
    );
    expect(certificateRequired(all.global.settings.security, 'starttls')).toBe(true);
    // No login before TLS with `all`: LOGINDISABLED, as RestrictPlainPasswords does.
    expect(all.global.settings.security.requireClientCert).toBe('all');
  });

  it('a vdmap entry requires a certificate on its address alone, given a client CA', async () => {
    const read = await tlsFiles();
    const tls = {
      ...globalValues(),
      SSLEnable: true,
      SSLCertFile: '/cert.pem',
      SSLKeyFile: '/key.pem',
    };
    const vdmap = vdmapOf('vdmap strict 127.0.12.9\nstrict:SSLRequireClientCert implicit\n', read);
    const withVdmap = (values: ConfigValues) =>
      buildRuntime(
        { protocol: 'imap', values, vdmap },
        { read, openDirectory: directories().open },
      );
    expect(withVdmap(tls)).toEqual({
      ok: false,
      error: [
        'vdmap:1: vdmap strict: SSLRequireClientCert=implicit needs the CA that issues client certificates: set SSLClientCAFile',
      ],
    });
    const runtime = expectOk(withVdmap({ ...tls, SSLClientCAFile: '/ca.pem' }));
    expect(certificateRequired(runtime.siteFor('127.0.12.9').settings.security, 'implicit')).toBe(
      true,
    );
    expect(certificateRequired(runtime.global.settings.security, 'implicit')).toBe(false);
  });

  it('refuses a vdmap entry’s StoreAdmin when client certificates are not requested', async () => {
    const read = await tlsFiles();
    const tls = {
      ...globalValues(),
      SSLEnable: true,
      SSLCertFile: '/cert.pem',
      SSLKeyFile: '/key.pem',
      SSLCAFile: '/ca.pem',
      CertMapFile: '/certmap.conf',
    };
    const vdmap = vdmapOf(
      'vdmap one 127.0.0.4\none:StoreAdmin master\none:StoreAdminPass x\n',
      read,
    );
    const refused = buildRuntime(
      { protocol: 'imap', values: tls, vdmap },
      { read, openDirectory: directories().open },
    );
    expect(refused.ok ? [] : refused.error).toEqual([
      'vdmap:1: vdmap one: certificate login: StoreAdmin is set but client certificates are not requested: set SSLClientCAFile',
    ]);
    expectOk(
      buildRuntime(
        { protocol: 'imap', values: { ...tls, SSLClientCAFile: '/ca.pem' }, vdmap },
        { read, openDirectory: directories().open },
      ),
    );
  });
});

describe('SpoofMessageFile without Date:, From: or To: (issue 17)', () => {
  it('starts, with a warning per field the sessions fill in', () => {
    const warnings: string[] = [];
    const read = files({ '/spoof': 'Subject: down\r\n\r\nback soon\r\n.\r\n' });
    const runtime = expectOk(
      buildRuntime(
        {
          protocol: 'pop3',
          values: { ...globalValues(), SpoofMessageFile: '/spoof' },
          vdmap: undefined,
        },
        { read, openDirectory: directories().open, warn: (m) => warnings.push(m) },
      ),
    );
    expect(runtime.spoof?.missing).toEqual(['Date', 'From', 'To']);
    expect(warnings).toEqual([
      expect.stringMatching(/^SpoofMessageFile \/spoof: the message has no Date: field/),
      expect.stringMatching(/^SpoofMessageFile \/spoof: the message has no From: field/),
      expect.stringMatching(/^SpoofMessageFile \/spoof: the message has no To: field/),
    ]);
  });
});

describe('a reload (buildRuntime with the previous runtime)', () => {
  it('replaces the domains and keeps the shared state; the runtime before is unchanged', () => {
    const read = files({});
    const before = expectOk(
      buildRuntime(
        { protocol: 'imap', values: globalValues(), vdmap: vdmapOf(VDMAP, read) },
        { read, openDirectory: directories().open },
      ),
    );
    const after = expectOk(
      buildRuntime(
        {
          protocol: 'imap',
          values: globalValues(),
          vdmap: vdmapOf('vdmap two 127.0.0.4\ntwo:VDomain two.example\n', read),
        },
        { read, openDirectory: directories().open, previous: before },
      ),
    );
    expect(after.siteFor('127.0.0.4').settings.userNames?.vdomain).toBe('two.example');
    expect(after.shared.directories).toBe(before.shared.directories);
    expect(after.shared.attempts).toBe(before.shared.attempts);
    expect(after.shared.preAuthCache).toBe(before.shared.preAuthCache);
    // Sessions that took the runtime before keep their settings.
    expect(before.siteFor('127.0.0.4').settings.userNames?.vdomain).toBe('one.example');
  });
});
