import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import {
  configFileName,
  instanceDir,
  parseConfigFile,
  parseShellAssignments,
  readMmpConf,
  shellQuote,
  writeConfigFile,
  writeMmpConf,
} from './configFile.js';
import type { ParamName } from './parameters.js';

const dir = mkdtempSync(join(tmpdir(), 'mmp-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Source a file with the real /bin/sh and print the named variables NUL-separated. */
async function sourceWithSh(text: string, names: readonly string[]): Promise<string[]> {
  const file = join(dir, `f${Math.random().toString(36).slice(2)}.config`);
  writeFileSync(file, text);
  const script = `. "$1" || exit 9\nshift\nfor n in "$@"; do eval "printf '%s\\0' \\"\\$$n\\""; done`;
  // `env -i`: nothing inherited can leak into the comparison; `sh -c` sees only the file.
  const r = await execa('env', ['-i', '/bin/sh', '-c', script, 'sh', file, ...names]);
  const parts = r.stdout.split('\0');
  return parts.slice(0, names.length);
}

/** Exported variables seen by a child of the shell (what the proxy gets). */
async function exportedBySh(
  text: string,
  names: readonly string[],
): Promise<Record<string, string>> {
  const file = join(dir, `e${Math.random().toString(36).slice(2)}.config`);
  writeFileSync(file, text);
  const r = await execa('env', ['-i', '/bin/sh', '-c', '. "$1" && env -0', 'sh', file]);
  const out: Record<string, string> = {};
  for (const kv of r.stdout.split('\0')) {
    const eq = kv.indexOf('=');
    const name = kv.slice(0, eq);
    if (names.includes(name)) out[name] = kv.slice(eq + 1);
  }
  return out;
}

const HOSTILE: Partial<Record<ParamName, string>> = {
  Banner: `it's a "quoted" $HOME \`uname\` banner # not a comment`,
  BindPass: `p'a"s$s\\w\\\\o'rd'`,
  Capability: "IMAP4rev1 X-'$(rm -rf /)'",
  SSLKeyPasswd: '',
  ServerDownAlert: '\\n is not a newline; neither is \\',
  LogDir: '/var/log/mmp with spaces/',
  UidSearch: '(&(uid=%U)(o=100%%))',
  BindDN: "cn=O'Brien\\, Pat,o=x",
  StoreAdmin: '  leading and trailing  ',
  DefaultDomain: "''",
  SpoofMessageFile: 'ünïcödé ✓',
};

describe('writeConfigFile → /bin/sh and → parseConfigFile agree', () => {
  it('for values holding quotes, $, backquotes, backslashes, # and spaces', async () => {
    const text = writeConfigFile('imap', HOSTILE);
    const names = Object.keys(HOSTILE);
    const fromSh = await sourceWithSh(text, names);
    const parsed = parseConfigFile(text, 'ImapMMP.config');
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.error));
    names.forEach((n, k) => {
      expect(fromSh[k]).toBe(HOSTILE[n as ParamName]);
      expect(parsed.value.get(n as ParamName)?.raw).toBe(HOSTILE[n as ParamName]);
    });
    // And they are exported, so the proxy started by the script sees them.
    const exported = await exportedBySh(text, names);
    for (const n of names) expect(exported[n]).toBe(HOSTILE[n as ParamName]);
  });

  it('writes canonical names in table order with export lines', () => {
    const text = writeConfigFile('pop3', { BindPass: 'x', LDAPHost: 'ldap:389' }, { header: 'hi' });
    expect(text).toBe(
      "# hi\nLDAPHost='ldap:389'\nexport LDAPHost\nBindPass='x'\nexport BindPass\n",
    );
  });

  it('refuses a newline (a config value is one line)', () => {
    expect(() => writeConfigFile('imap', { Banner: 'a\nb' })).toThrow(/line break/);
  });
});

describe('parseConfigFile reads what the shell reads', () => {
  // Hand-written files in every accepted style; /bin/sh is the oracle.
  const handWritten = [
    'Banner="double \\"quoted\\" \\$x \\`y\\` back\\\\slash \\n kept"\nexport Banner',
    "export Banner='single'\\''s'",
    'Banner=plain\\ words\\"q\\\\;export Banner',
    'Banner="joined \\\nline"\nexport Banner',
    'Banner="a"\'b\'c\\ d\nexport Banner  # trailing comment',
    '# comment\n\n   Banner="x#y" ; export Banner\n',
    'Banner=""\nexport Banner',
    'Banner=a=b=c\nexport Banner',
    'Banner=first\nBanner="second"\nexport Banner',
    'Banner="multi\nline"\nexport Banner',
  ];
  it.each(handWritten)('%j', async (text) => {
    const [fromSh] = await sourceWithSh(text, ['Banner']);
    const parsed = parseConfigFile(text, 'ImapMMP.config');
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.error));
    expect(parsed.value.get('Banner')?.raw).toBe(fromSh);
  });

  it('accepts csh setenv lines', () => {
    const r = parseConfigFile('setenv ListenPort 1143\nsetenv Banner "hello world"\n', 'f');
    expect(r.ok && Object.fromEntries(r.value)).toEqual({
      ListenPort: { raw: '1143', line: 1 },
      Banner: { raw: 'hello world', line: 2 },
    });
  });

  it('normalises aliases to canonical names and keeps the line of the last setting', () => {
    const r = parseConfigFile('BindPassword=a\nexport BindPassword\n\nSSLkeypass=b\n', 'f');
    expect(r.ok && Object.fromEntries(r.value)).toEqual({
      BindPass: { raw: 'a', line: 1 },
      SSLKeyPasswd: { raw: 'b', line: 4 },
    });
  });

  it('names file and line for anything else, and suggests names', () => {
    const text = [
      'ListenPort=143', // 1 ok
      'ListnPort=143', // 2 typo
      'echo hello', // 3 command
      'Banner="$HOME"', // 4 expansion
      'Banner=a b', // 5 two words
      "Banner='open", // 6.. unterminated
    ].join('\n');
    const r = parseConfigFile(text, 'ImapMMP.config');
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.map((p) => p.where)).toEqual([
      'ImapMMP.config:2',
      'ImapMMP.config:3',
      'ImapMMP.config:4',
      'ImapMMP.config:5',
      'ImapMMP.config:6',
    ]);
    expect(r.error[0]?.message).toBe("unknown parameter 'ListnPort' (did you mean ListenPort?)");
    expect(r.error[2]?.message).toContain('expansion');
    expect(r.error[4]?.message).toContain('unterminated single quote');
  });

  it('refuses unknown variables without a close match plainly', () => {
    const r = parseConfigFile('PATH=/bin\n', 'PopMMP.config');
    expect(r).toEqual({
      ok: false,
      error: [{ where: 'PopMMP.config:1', message: "unknown parameter 'PATH'" }],
    });
  });

  it('keeps reading after a bad line', () => {
    const r = parseShellAssignments('a b c\nX=1\nY="unterminated\n', 'f');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.map((p) => p.where)).toEqual(['f:1', 'f:3']);
  });
});

describe('shellQuote', () => {
  it("quotes ' as '\\''", () => {
    expect(shellQuote("it's")).toBe("'it'\\''s'");
    expect(shellQuote('')).toBe("''");
  });
});

describe('the multiplexor conf file', () => {
  it('round-trips MMPRoot through writeMmpConf and /bin/sh', async () => {
    const text = writeMmpConf("/opt/my mmp/it's");
    expect(readMmpConf(text, '/etc/netscape.mmp.conf')).toEqual({
      ok: true,
      value: "/opt/my mmp/it's",
    });
    expect(await sourceWithSh(text, ['MMPRoot'])).toEqual(["/opt/my mmp/it's"]);
  });

  it('reports a missing MMPRoot', () => {
    expect(readMmpConf('# nothing\n', 'c')).toEqual({
      ok: false,
      error: [{ where: 'c', message: "no MMPRoot='/path' line" }],
    });
  });

  it('places instances as MMPRoot/MMP_name (Table 13.6)', () => {
    expect(instanceDir('/opt/mmp/', 'mplex1')).toBe('/opt/mmp/MMP_mplex1');
    expect(configFileName('imap')).toBe('ImapMMP.config');
    expect(configFileName('pop3')).toBe('PopMMP.config');
  });
});
