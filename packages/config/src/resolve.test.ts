import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCommandLine } from './commandLine.js';
import { parseConfigFile, writeMmpConf } from './configFile.js';
import { findInstances } from './instances.js';
import { type ConfigFs, cliAction, effectiveBind, listText, resolveConfig } from './resolve.js';
import type { Protocol } from './types.js';
import { ok } from './types.js';

/** Files by path; a directory is every path prefix of one. */
function memFs(files: Record<string, string>): ConfigFs {
  return {
    readFile: (p) => ok(files[p] ?? null),
    subdirectories: (dir) => [
      ...new Set(
        Object.keys(files)
          .filter((f) => f.startsWith(`${dir}/`))
          .map((f) => f.slice(dir.length + 1).split('/'))
          .filter((parts) => parts.length > 1)
          .map((parts) => parts[0] ?? ''),
      ),
    ],
  };
}

function cl(protocol: Protocol, argv: string[]) {
  const r = parseCommandLine(protocol, argv);
  if (!r.ok) throw new Error(r.error.message);
  return r.value;
}

describe('resolveConfig', () => {
  it('gives every default when nothing is set', () => {
    const r = resolveConfig({ protocol: 'pop3', commandLine: cl('pop3', []), env: {} });
    if (!r.ok) throw new Error(JSON.stringify(r.error));
    const v = r.value.values;
    expect(v.ListenPort).toEqual({ port: 110 });
    expect(v.BacksidePort).toBe(110);
    expect(v.SSLListenPort).toEqual({ port: 995 });
    expect(v.LDAPHost).toEqual([{ host: 'localhost', port: 389 }]);
    expect(v.BaseDN).toBe('o=mcom.com');
    expect(v.PreAuth).toBe(false);
    expect(v.BindDN).toBeUndefined();
    expect(v.MailHostAttrs).toEqual(['mailHost']);
    expect(r.value.sources.ListenPort).toBe('default');
    expect(r.value.warnings).toEqual([]);
  });

  it('takes command line over environment over file over default (guide)', () => {
    const file = parseConfigFile(
      'ListenPort=1001\nexport ListenPort\nLogLevel=2\nBanner="from file"\n',
      '/opt/mmp/MMP_a/ImapMMP.config',
    );
    if (!file.ok) throw new Error('bad file');
    const r = resolveConfig({
      protocol: 'imap',
      commandLine: cl('imap', ['-p', '1003']),
      env: { ListenPort: '1002', LogLevel: '7', PATH: '/bin' },
      fileEntries: file.value,
      fileName: '/opt/mmp/MMP_a/ImapMMP.config',
    });
    if (!r.ok) throw new Error(JSON.stringify(r.error));
    expect(r.value.values.ListenPort).toEqual({ port: 1003 });
    expect(r.value.values.LogLevel).toBe(7);
    expect(r.value.values.Banner).toBe('from file');
    expect(r.value.values.NumThreads).toBe(0);
    expect(r.value.sources).toMatchObject({
      ListenPort: 'command line',
      LogLevel: 'environment',
      Banner: 'config file',
      NumThreads: 'default',
    });
    expect(r.value.origins).toMatchObject({
      ListenPort: '-p',
      LogLevel: 'env LogLevel',
      Banner: 'ImapMMP.config:4',
      NumThreads: 'default',
    });
  });

  it('reads environment variables by alias, the canonical name winning', () => {
    const r = resolveConfig({
      protocol: 'imap',
      commandLine: cl('imap', []),
      env: { BindDN: 'cn=a', BindPassword: 'alias', SSLCipherSecs: 'HIGH' },
    });
    expect(r.ok && r.value.values.BindPass).toBe('alias');
    expect(r.ok && r.value.values.SSLCipherSpecs).toBe('HIGH');
    const both = resolveConfig({
      protocol: 'imap',
      commandLine: cl('imap', []),
      env: { BindDN: 'cn=a', BindPass: 'canonical', BindPassword: 'alias' },
    });
    expect(both.ok && both.value.values.BindPass).toBe('canonical');
    expect(both.ok && both.value.warnings).toEqual([
      {
        where: 'env BindPassword',
        message: 'ignored: env BindPass is also set and takes precedence',
      },
    ]);
  });

  it('says where each bad value came from', () => {
    const file = parseConfigFile('\n\n\nLogLevel=eleven\n', 'ImapMMP.config');
    if (!file.ok) throw new Error('bad file');
    const r = resolveConfig({
      protocol: 'imap',
      commandLine: cl('imap', ['-p', 'abc']),
      env: { NumThreads: 'many' },
      fileEntries: file.value,
      fileName: 'ImapMMP.config',
    });
    expect(r).toEqual({
      ok: false,
      error: [
        { where: 'ImapMMP.config:4', message: "LogLevel: expected an integer 0–10, got 'eleven'" },
        { where: 'env NumThreads', message: "NumThreads: expected an integer 0–64, got 'many'" },
        {
          where: '-p',
          message:
            "ListenPort: expected [IP:]port with port 1–65535, got 'abc' (the port is missing)",
        },
      ],
    });
  });

  it('requires a certificate and key when SSL is on', () => {
    const r = resolveConfig({
      protocol: 'imap',
      commandLine: cl('imap', []),
      env: { SSLEnable: 'yes' },
    });
    expect(r).toMatchObject({
      ok: false,
      error: [
        { where: 'env SSLEnable', message: expect.stringContaining('SSLCertFile') },
        { where: 'env SSLEnable', message: expect.stringContaining('SSLKeyFile') },
      ],
    });
    const s = resolveConfig({
      protocol: 'imap',
      commandLine: cl('imap', ['-s', '', 'c.pem', 'k.pem', '', 'all', '']),
      env: {},
    });
    expect(s.ok && s.value.values.SSLEnable).toBe(true);
    expect(s.ok && s.value.values.SSLKeyPasswd).toBe('');
  });

  it('warns about parameters of the other protocol set explicitly', () => {
    const r = resolveConfig({
      protocol: 'imap',
      commandLine: cl('imap', ['-m', 'spoof.txt']),
      env: {},
    });
    expect(r.ok && r.value.warnings).toEqual([
      { where: '-m', message: 'SpoofMessageFile does not apply to ImapProxy; ignored' },
    ]);
  });
});

describe('cliAction', () => {
  const conf = { MMP_CONF_FILE: '/etc/test.mmp.conf' };

  it('runs with the instance config file located through the multiplexor conf file', () => {
    const fs = memFs({
      '/etc/test.mmp.conf': writeMmpConf('/srv/mmp'),
      '/srv/mmp/MMP_mplex1/PopMMP.config': 'ListenPort="1110"\nexport ListenPort\n',
    });
    const a = cliAction('pop3', ['-n', 'mplex1'], conf, fs);
    expect(a.kind).toBe('run');
    if (a.kind !== 'run') return;
    expect(a.config.values.ListenPort).toEqual({ port: 1110 });
    expect(a.config.instance).toBe('mplex1');
    expect(a.config.configFile).toBe('/srv/mmp/MMP_mplex1/PopMMP.config');
    expect(a.config.origins.ListenPort).toBe('PopMMP.config:1');
  });

  it("-n finds the guide's other spellings, MMP-NAME and a plain NAME, as mmp-setup does", () => {
    const fs = memFs({
      '/etc/test.mmp.conf': writeMmpConf('/srv/mmp'),
      '/srv/mmp/mplex1/ImapMMP.config': 'LogLevel=6\n',
      '/srv/mmp/MMP-two/ImapMMP.config': 'LogLevel=7\n',
      '/srv/mmp/both/ImapMMP.config': 'LogLevel=8\n',
      '/srv/mmp/MMP_both/ImapMMP.config': 'LogLevel=9\n',
    });
    const run = (name: string) => cliAction('imap', ['-n', name], conf, fs);
    const mplex1 = run('mplex1');
    expect(mplex1.kind === 'run' && mplex1.config.configFile).toBe(
      '/srv/mmp/mplex1/ImapMMP.config',
    );
    const two = run('two');
    expect(two.kind === 'run' && two.config.values.LogLevel).toBe(7);
    // Two directories holding one name: refused, never a guess.
    expect(run('both')).toEqual({
      kind: 'fail',
      message: expect.stringContaining(
        'instance both: /srv/mmp/both and /srv/mmp/MMP_both both hold it',
      ),
      exitCode: 2,
    });
    // An instance that does not exist is still looked for as MMP_NAME (and said missing there).
    const none = run('none');
    expect(none.kind === 'fail' && none.message).toContain('/srv/mmp/MMP_none/ImapMMP.config');
  });

  it('-n finds them on disk too (the finder mmp-setup --list and --modify use)', () => {
    const root = mkdtempSync(join(tmpdir(), 'mmp-instances-'));
    try {
      const conf = join(root, 'netscape.mmp.conf');
      writeFileSync(conf, writeMmpConf(root));
      for (const [dir, base] of [
        ['mplex1', 'o=plain'],
        ['MMP-second', 'o=guide'],
      ] as const) {
        mkdirSync(join(root, dir));
        writeFileSync(join(root, dir, 'ImapMMP.config'), `BaseDN='${base}'\nexport BaseDN\n`);
      }
      const base = (name: string) => {
        const a = cliAction('imap', ['-n', name], { MMP_CONF_FILE: conf });
        return a.kind === 'run' ? a.config.values.BaseDN : a;
      };
      expect(base('mplex1')).toBe('o=plain');
      expect(base('second')).toBe('o=guide');
      expect(findInstances(root).map((e) => e.name)).toEqual(['mplex1', 'second']);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('falls back to /opt/mmp without a conf file, and uses -f and MMP_CONFIG_FILE', () => {
    const fs = memFs({
      '/opt/mmp/MMP_x/ImapMMP.config': 'LogLevel=3\n',
      '/tmp/f.config': 'LogLevel=4\n',
      '/tmp/env.config': 'LogLevel=5\n',
    });
    const level = (a: ReturnType<typeof cliAction>) =>
      a.kind === 'run' ? a.config.values.LogLevel : a;
    expect(level(cliAction('imap', ['-n', 'x'], conf, fs))).toBe(3);
    expect(level(cliAction('imap', ['-f', '/tmp/f.config', '-n', 'x'], conf, fs))).toBe(4);
    expect(level(cliAction('imap', [], { MMP_CONFIG_FILE: '/tmp/env.config' }, fs))).toBe(5);
    expect(level(cliAction('imap', [], {}, fs))).toBe(1);
  });

  it('fails with exit code 2 and a message, never a throw', () => {
    const fs = memFs({ '/tmp/bad.config': 'ListnPort=1\n' });
    expect(cliAction('imap', ['-f', '/tmp/bad.config'], {}, fs)).toEqual({
      kind: 'fail',
      message: "/tmp/bad.config:1: unknown parameter 'ListnPort' (did you mean ListenPort?)",
      exitCode: 2,
    });
    expect(cliAction('imap', ['-f', '/tmp/none.config'], {}, fs)).toEqual({
      kind: 'fail',
      message: '-f: config file /tmp/none.config does not exist',
      exitCode: 2,
    });
    expect(cliAction('imap', ['-zz'], {}, fs)).toMatchObject({ kind: 'fail', exitCode: 2 });
    expect(cliAction('imap', ['-v', '99'], {}, fs)).toEqual({
      kind: 'fail',
      message: "-v: LogLevel: expected an integer 0–10, got '99' (above 10)",
      exitCode: 2,
    });
  });

  it('lists every parameter with value and origin for bare -h, secrets masked', () => {
    const fs = memFs({ '/tmp/f.config': 'BindDN="cn=mmp"\nBindPass="hunter2"\n' });
    const a = cliAction('imap', ['-f', '/tmp/f.config', '-p', '1143', '-h'], { LogLevel: '4' }, fs);
    expect(a.kind).toBe('list');
    if (a.kind !== 'list') return;
    expect(a.text).toMatch(/^ImapProxy configuration \(config file \/tmp\/f.config\):/);
    expect(a.text).toMatch(/ListenPort +"1143" +\[-p\]/);
    expect(a.text).toMatch(/LogLevel +"4" +\[env LogLevel\]/);
    expect(a.text).toMatch(/BindDN +"cn=mmp" +\[f.config:1\]/);
    expect(a.text).toMatch(/BindPass +"\*\*\*\*\*\*" +\[f.config:2\]/);
    expect(a.text).toMatch(/Banner +"Netscape Messaging Multiplexor ready" +\[default\]/);
    expect(a.text).toMatch(/StoreAdmin +\(not set\)/);
    expect(a.text).not.toContain('hunter2');
    expect(a.text).toContain('Capability');
    expect(a.text).not.toContain('SpoofMessageFile');
    expect(a.text).toContain('Usage: ImapProxy [install] [options]');
  });

  it('prints install lines that read back as the same configuration', () => {
    const argv = [
      'install',
      '-p',
      '[::1]:1143',
      '-ba',
      `it's "ready" $HOME`,
      '-w',
      "pa ss'",
      '-D',
      'cn=mmp,o=x',
      '-pre',
      '-s',
      '',
      '/etc/mmp/cert.pem',
      '/etc/mmp/key.pem',
      '',
      'HIGH:!aNULL',
      'nick',
      '-h',
      'ldap1 ldap2:1389',
    ];
    const a = cliAction('imap', argv, { LogLevel: '9' }, memFs({}));
    expect(a.kind).toBe('install');
    if (a.kind !== 'install') return;
    expect(a.text).toContain("Banner='it'\\''s \"ready\" $HOME'\nexport Banner\n");
    const direct = resolveConfig({ protocol: 'imap', commandLine: cl('imap', argv), env: {} });
    const viaFile = cliAction(
      'imap',
      ['-f', '/x/ImapMMP.config'],
      {},
      memFs({ '/x/ImapMMP.config': a.text }),
    );
    if (!direct.ok || viaFile.kind !== 'run') throw new Error('did not resolve');
    expect(viaFile.config.values).toEqual(direct.value.values);
  });

  it('refuses to print install lines for bad values', () => {
    expect(cliAction('pop3', ['install', '-c', '0'], {}, memFs({}))).toMatchObject({
      kind: 'fail',
      exitCode: 2,
      message: expect.stringContaining('-c: BacksidePort'),
    });
  });
});

describe('long options through cliAction', () => {
  it('checks long-form values with the messages a config file gets', () => {
    expect(cliAction('imap', ['--LogLevel=99'], {}, memFs({}))).toEqual({
      kind: 'fail',
      message: "--LogLevel: LogLevel: expected an integer 0–10, got '99' (above 10)",
      exitCode: 2,
    });
    const fs = memFs({ '/tmp/f.config': 'LogLevel=99\n' });
    expect(cliAction('imap', ['-f', '/tmp/f.config'], {}, fs)).toEqual({
      kind: 'fail',
      message: "f.config:1: LogLevel: expected an integer 0–10, got '99' (above 10)",
      exitCode: 2,
    });
  });

  it('install prints a line for every option given, short or long, aliases canonical', () => {
    const argv = [
      'install',
      '--UidAttr=mail',
      '--SSLBacksidePort',
      '993',
      '--SearchFormat=(mail=%s)',
      '--PreAuth',
      '--ForwardClientAddress=no',
      '-v',
      '3',
    ];
    const a = cliAction('imap', argv, {}, memFs({}));
    if (a.kind !== 'install') throw new Error(JSON.stringify(a));
    const lines = a.text.split('\n').filter((l) => !l.startsWith('#') && l !== '');
    expect(lines).toEqual([
      "LogLevel='3'",
      'export LogLevel',
      "UidSearch='(mail=%s)'",
      'export UidSearch',
      "UidAttr='mail'",
      'export UidAttr',
      "SSLBacksidePort='993'",
      'export SSLBacksidePort',
      "PreAuth='yes'",
      'export PreAuth',
      "ForwardClientAddress='no'",
      'export ForwardClientAddress',
    ]);
    const viaFile = cliAction('imap', ['-f', '/x'], {}, memFs({ '/x': a.text }));
    if (viaFile.kind !== 'run') throw new Error(JSON.stringify(viaFile));
    expect(viaFile.config.values).toMatchObject({
      UidAttr: 'mail',
      SSLBacksidePort: 993,
      UidSearch: { text: '(mail=%s)' },
      PreAuth: true,
      LogLevel: 3,
    });
  });
});

describe('install -n with long options', () => {
  it('hands every option given, short or long, to the instance writer by canonical name', () => {
    expect(
      cliAction(
        'pop3',
        ['install', '-n', 'mplex1', '--UidAttr=mail', '--SearchFormat', '(mail=%s)', '-p', '1110'],
        {},
        memFs({}),
      ),
    ).toEqual({
      kind: 'apply',
      instance: 'mplex1',
      values: { UidAttr: 'mail', UidSearch: '(mail=%s)', ListenPort: '1110' },
    });
  });
});

describe('SearchFormat, the successors’ name of UidSearch', () => {
  it('is read from a config file, the environment and the command line as UidSearch', () => {
    const fs = memFs({ '/tmp/f.config': "SearchFormat='(mail=%s)'\nexport SearchFormat\n" });
    const fromFile = cliAction('pop3', ['-f', '/tmp/f.config'], {}, fs);
    expect(fromFile.kind === 'run' && fromFile.config.values.UidSearch.text).toBe('(mail=%s)');
    const fromEnv = cliAction('pop3', [], { SearchFormat: '(cn=%U)' }, fs);
    expect(fromEnv.kind === 'run' && fromEnv.config.origins.UidSearch).toBe('env SearchFormat');
    const bad = cliAction('pop3', ['--SearchFormat=uid=%s'], {}, fs);
    expect(bad).toMatchObject({
      kind: 'fail',
      message: expect.stringMatching(/^--SearchFormat: UidSearch: expected an LDAP filter/),
    });
  });
});

describe('LDAPAuth (Table 13.7)', () => {
  const run = (argv: string[], files: Record<string, string> = {}) => {
    const a = cliAction('imap', argv, {}, memFs(files));
    if (a.kind !== 'run') throw new Error(JSON.stringify(a));
    return a.config;
  };

  it('is accepted in a file read with -f', () => {
    const c = run(['-f', '/f'], { '/f': "LDAPAuth='no'\nBindDN='cn=mmp'\nBindPass='s'\n" });
    expect(c.values.LDAPAuth).toBe(false);
  });

  it('no: an anonymous search whatever BindDN says, with a warning and the origin kept', () => {
    const c = run(['-f', '/f', '--LDAPAuth=no'], { '/f': "BindDN='cn=mmp'\nBindPass='s'\n" });
    expect(c.values.BindDN).toBeUndefined();
    expect(c.values.BindPass).toBeUndefined();
    expect(c.origins.BindDN).toBe('f:1, unused: LDAPAuth is no');
    expect(c.warnings).toEqual([
      {
        where: '--LDAPAuth',
        message: 'LDAPAuth is no: BindDN and BindPass not used; searching anonymously',
      },
    ]);
    expect(listText(c)).toMatch(/BindDN +\(not set\) +\[f:1, unused: LDAPAuth is no\]/);
  });

  it('unset: yes when BindDN is set, no otherwise', () => {
    const withDn = run(['-D', 'cn=mmp', '-w', 's']);
    expect(withDn.values.LDAPAuth).toBe(true);
    expect(withDn.values.BindDN).toBe('cn=mmp');
    expect(withDn.origins.LDAPAuth).toBe('derived from BindDN');
    expect(run([]).values.LDAPAuth).toBe(false);
  });

  it('yes without BindDN binds anonymously, with a warning', () => {
    const c = run(['--LDAPAuth']);
    expect(c.values.LDAPAuth).toBe(true);
    expect(c.warnings).toEqual([
      {
        where: '--LDAPAuth',
        message: 'LDAPAuth is yes but BindDN is not set; searching anonymously',
      },
    ]);
  });

  it('effectiveBind gives the identity the directory sees', () => {
    expect(effectiveBind({ BindDN: 'cn=a', BindPass: 'p' })).toEqual({
      bindDn: 'cn=a',
      bindPassword: 'p',
    });
    expect(effectiveBind({ BindDN: 'cn=a', BindPass: 'p', LDAPAuth: true })).toEqual({
      bindDn: 'cn=a',
      bindPassword: 'p',
    });
    expect(effectiveBind({ BindDN: 'cn=a', BindPass: 'p', LDAPAuth: false })).toEqual({});
    expect(effectiveBind({ BindDN: '', LDAPAuth: true })).toEqual({});
    expect(effectiveBind({ BindDN: 'cn=a' })).toEqual({ bindDn: 'cn=a' });
  });
});
