import { describe, expect, it } from 'vitest';
import { parseCommandLine, usageText } from './commandLine.js';
import { allParameters } from './parameters.js';

describe('parseCommandLine (Table 13.4)', () => {
  it('maps every flag of the table to its parameter', () => {
    for (const p of allParameters()) {
      if (p.flag === undefined || p.positional || p.flagValue !== undefined || p.flag === '-h')
        continue;
      const r = parseCommandLine('imap', [p.flag, 'VALUE']);
      expect(r).toMatchObject({ ok: true, value: { values: { [p.name]: 'VALUE' } } });
    }
  });

  it('reads the guide examples', () => {
    const r = parseCommandLine('imap', [
      'install',
      '-p',
      '10.0.0.1:143',
      '-b',
      'o=airius.com',
      '-D',
      'cn=Directory Manager',
      '-w',
      'secret',
      '-pre',
      '-h',
      'ldap.airius.com:389',
    ]);
    expect(r).toEqual({
      ok: true,
      value: {
        install: true,
        list: false,
        values: {
          ListenPort: '10.0.0.1:143',
          BaseDN: 'o=airius.com',
          BindDN: 'cn=Directory Manager',
          BindPass: 'secret',
          PreAuth: 'yes',
          LDAPHost: 'ldap.airius.com:389',
        },
        flags: {
          ListenPort: '-p',
          BaseDN: '-b',
          BindDN: '-D',
          BindPass: '-w',
          PreAuth: '-pre',
          LDAPHost: '-h',
        },
      },
    });
  });

  it('-s takes six positional values in Table 13.5 order and enables SSL', () => {
    const r = parseCommandLine('imap', [
      '-s',
      '',
      'cert.pem',
      'key.pem',
      '',
      'all',
      'Server-Cert',
      '-v',
      '3',
    ]);
    expect(r.ok && r.value.values).toEqual({
      SSLEnable: 'yes',
      SSLSecmodFile: '',
      SSLCertFile: 'cert.pem',
      SSLKeyFile: 'key.pem',
      SSLKeyPasswd: '',
      SSLCipherSpecs: 'all',
      SSLCertNickname: 'Server-Cert',
      LogLevel: '3',
    });
    const short = parseCommandLine('imap', ['-s', 'a', 'b']);
    expect(short.ok).toBe(false);
    if (!short.ok) {
      expect(short.error.where).toBe('-s');
      expect(short.error.message).toContain(
        '-s needs 6 values: SSLSecmodFile SSLCertFile SSLKeyFile SSLKeyPasswd SSLCipherSpecs SSLCertNickname',
      );
    }
  });

  it('tells bare -h (list) from -h host[:port]', () => {
    expect(parseCommandLine('pop3', ['-h'])).toMatchObject({
      ok: true,
      value: { list: true, values: {} },
    });
    expect(parseCommandLine('pop3', ['-p', '110', '-h'])).toMatchObject({
      ok: true,
      value: { list: true, values: { ListenPort: '110' } },
    });
    expect(parseCommandLine('pop3', ['-h', '-p', '110'])).toMatchObject({
      ok: true,
      value: { list: true, values: { ListenPort: '110' } },
    });
    expect(parseCommandLine('pop3', ['-h', 'ldap:1389'])).toMatchObject({
      ok: true,
      value: { list: false, values: { LDAPHost: 'ldap:1389' } },
    });
  });

  it('reads -n instance and -f file', () => {
    expect(parseCommandLine('imap', ['-n', 'mplex1'])).toMatchObject({
      ok: true,
      value: { instance: 'mplex1' },
    });
    expect(parseCommandLine('imap', ['-f', '/tmp/x.config'])).toMatchObject({
      ok: true,
      value: { configFile: '/tmp/x.config' },
    });
    expect(parseCommandLine('imap', ['-n', '../etc']).ok).toBe(false);
  });

  it('explains unknown flags, stray words and missing values', () => {
    expect(parseCommandLine('imap', ['-P', '143'])).toEqual({
      ok: false,
      error: {
        where: '-P',
        message: "unknown option '-P' (did you mean -p?) (ImapProxy -h lists the options)",
      },
    });
    expect(parseCommandLine('imap', ['-vdx', 'f'])).toMatchObject({
      ok: false,
      error: { message: expect.stringContaining('did you mean -vd') },
    });
    expect(parseCommandLine('imap', ['start'])).toMatchObject({
      ok: false,
      error: { message: expect.stringContaining("unexpected argument 'start'") },
    });
    expect(parseCommandLine('imap', ['-p'])).toMatchObject({
      ok: false,
      error: { where: '-p', message: expect.stringContaining('-p needs [IP:]port (ListenPort)') },
    });
    // A flag where a value should be is a forgotten value.
    expect(parseCommandLine('imap', ['-D', '-w', 'x'])).toMatchObject({
      ok: false,
      error: { where: '-D' },
    });
  });

  it('lets a later flag win, as getopt does', () => {
    expect(parseCommandLine('imap', ['-v', '1', '-v', '5'])).toMatchObject({
      ok: true,
      value: { values: { LogLevel: '5' } },
    });
  });
});

describe('usageText', () => {
  it('lists the flags that apply to the protocol, from the table', () => {
    const imap = usageText('imap');
    const pop = usageText('pop3');
    expect(imap).toMatch(/^Usage: ImapProxy \[install\] \[options\]/);
    expect(imap).toContain('-x str');
    expect(pop).not.toContain('-x str');
    expect(pop).toContain('-m file');
    expect(imap).toContain(
      '-s SSLSecmodFile SSLCertFile SSLKeyFile SSLKeyPasswd SSLCipherSpecs SSLCertNickname',
    );
    expect(pop).toContain('[110]');
    expect(imap).not.toMatch(/secret|hunter/);
  });
});
