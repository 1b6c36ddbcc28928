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

describe('long options (--Name=value, derived from the table)', () => {
  it('gives every parameter a long form, by its name and by each alias', () => {
    for (const p of allParameters()) {
      const value = p.kind === 'boolean' ? 'no' : 'VALUE';
      for (const n of [p.name, ...p.aliases]) {
        expect(parseCommandLine('imap', [`--${n}=${value}`])).toEqual({
          ok: true,
          value: {
            install: false,
            list: false,
            values: { [p.name]: value },
            flags: { [p.name]: `--${n}` },
          },
        });
        // `--Name value`; a boolean alone is yes.
        const spaced = p.kind === 'boolean' ? [`--${n}`] : [`--${n}`, value];
        expect(parseCommandLine('pop3', spaced)).toMatchObject({
          ok: true,
          value: { values: { [p.name]: p.kind === 'boolean' ? 'yes' : value } },
        });
      }
    }
  });

  it('sets parameters that have no short flag, beside the short flags', () => {
    const r = parseCommandLine('imap', [
      '--UidAttr=mail',
      '--SSLBacksidePort',
      '993',
      '-p',
      '1143',
      '--SearchFormat=(mail=%s)',
      '--Banner=a=b',
      '--SSLKeyPasswd=',
    ]);
    expect(r.ok && r.value.values).toEqual({
      UidAttr: 'mail',
      SSLBacksidePort: '993',
      ListenPort: '1143',
      UidSearch: '(mail=%s)',
      Banner: 'a=b',
      SSLKeyPasswd: '',
    });
    expect(r.ok && r.value.flags.UidSearch).toBe('--SearchFormat');
  });

  it('reads a boolean alone as yes, and its value only after =', () => {
    expect(parseCommandLine('pop3', ['--PreAuth'])).toMatchObject({
      ok: true,
      value: { values: { PreAuth: 'yes' } },
    });
    expect(parseCommandLine('pop3', ['--PreAuth=no', '-v', '2'])).toMatchObject({
      ok: true,
      value: { values: { PreAuth: 'no', LogLevel: '2' } },
    });
    expect(parseCommandLine('pop3', ['--PreAuth', 'no'])).toEqual({
      ok: false,
      error: {
        where: 'no',
        message: "unexpected argument 'no' (write --PreAuth=no) (PopProxy -h lists the options)",
      },
    });
  });

  it('suggests the closest name for a misspelt or miscased one', () => {
    expect(parseCommandLine('imap', ['--UidAtr=mail'])).toEqual({
      ok: false,
      error: {
        where: '--UidAtr',
        message:
          "unknown option '--UidAtr' (did you mean --UidAttr?) (ImapProxy -h lists the options)",
      },
    });
    expect(parseCommandLine('imap', ['--listenport', '1'])).toMatchObject({
      ok: false,
      error: { message: expect.stringContaining('(did you mean --ListenPort?)') },
    });
    const typo = parseCommandLine('imap', ['--BindPas=hunter2']);
    expect(JSON.stringify(typo)).not.toContain('hunter2');
    expect(typo).toMatchObject({ ok: false, error: { where: '--BindPas' } });
    expect(parseCommandLine('imap', ['--Nonsense=1'])).toMatchObject({
      ok: false,
      error: { message: expect.not.stringContaining('did you mean') },
    });
  });

  it('takes a following option as a forgotten value, short or long', () => {
    expect(parseCommandLine('imap', ['--BindDN', '--BindPass=x'])).toMatchObject({
      ok: false,
      error: { where: '--BindDN', message: expect.stringContaining('--BindDN needs binddn') },
    });
    expect(parseCommandLine('imap', ['-D', '--BindPass', 'x'])).toMatchObject({
      ok: false,
      error: { where: '-D' },
    });
    expect(parseCommandLine('imap', ['--UidAttr'])).toMatchObject({
      ok: false,
      error: { message: expect.stringContaining('--UidAttr needs a single line of text') },
    });
  });
});

describe('usageText', () => {
  it('lists the short flags and long forms that apply to the protocol, from the table', () => {
    const imap = usageText('imap');
    const pop = usageText('pop3');
    expect(imap).toMatch(/^Usage: ImapProxy \[install\] \[options\]/);
    expect(imap).toContain('-x, --Capability str');
    expect(pop).not.toContain('--Capability');
    expect(pop).toContain('-m, --SpoofMessageFile file');
    expect(imap).toContain('--UidAttr str');
    expect(imap).toContain('--PreAuth[=no]');
    expect(imap).toContain('(also --SearchFormat)');
    expect(imap).not.toContain('--VDomain');
    for (const p of allParameters().filter((q) => q.protocols.includes('imap') && !q.vdmapOnly))
      expect(imap).toContain(`--${p.name}`);
    expect(imap).toContain(
      '-s SSLSecmodFile SSLCertFile SSLKeyFile SSLKeyPasswd SSLCipherSpecs SSLCertNickname',
    );
    expect(pop).toContain('[110]');
    expect(imap).not.toMatch(/secret|hunter/);
  });
});
