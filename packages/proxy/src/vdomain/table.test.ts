import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type ConfigValues, parseCommandLine, resolveConfig } from '@mmp/config';
import { Directory } from '../directory.js';
import { silentLog } from '../log.js';
import { parseSpoofMessage } from '../pop3/spoof.js';
import { type ProxySettings, settingsFrom } from '../settings.js';
import { VirtualDomains, isLocalAddress, loadVdmap } from './table.js';

const IFACES = {
  lo: [
    {
      address: '127.0.0.1',
      netmask: '255.0.0.0',
      family: 'IPv4' as const,
      mac: '00:00:00:00:00:00',
      internal: true,
      cidr: '127.0.0.1/8',
    },
    {
      address: '::1',
      netmask: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
      family: 'IPv6' as const,
      mac: '00:00:00:00:00:00',
      internal: true,
      cidr: '::1/128',
      scopeid: 0,
    },
  ],
  eth0: [
    {
      address: '2001:db8::10',
      netmask: 'ffff:ffff:ffff:ffff::',
      family: 'IPv6' as const,
      mac: '02:00:00:00:00:01',
      internal: false,
      cidr: '2001:db8::10/64',
      scopeid: 0,
    },
  ],
};

describe('isLocalAddress', () => {
  it("knows the interfaces' addresses, whatever their spelling", () => {
    expect(isLocalAddress('127.0.0.1', IFACES, 'linux')).toBe(true);
    expect(isLocalAddress('::ffff:127.0.0.1', IFACES, 'darwin')).toBe(true);
    expect(isLocalAddress('2001:0db8:0:0::10', IFACES, 'linux')).toBe(true);
    expect(isLocalAddress('::1', IFACES, 'linux')).toBe(true);
  });

  it('counts all of 127.0.0.0/8 on Linux only', () => {
    expect(isLocalAddress('127.0.0.4', IFACES, 'linux')).toBe(true);
    expect(isLocalAddress('127.0.0.4', IFACES, 'darwin')).toBe(false);
  });

  it('refuses other addresses and non-addresses', () => {
    expect(isLocalAddress('192.0.2.1', IFACES, 'linux')).toBe(false);
    expect(isLocalAddress('2001:db8::11', IFACES, 'linux')).toBe(false);
    expect(isLocalAddress('0.0.0.0', IFACES, 'linux')).toBe(false);
    expect(isLocalAddress('localhost', IFACES, 'linux')).toBe(false);
  });
});

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mmp-vdtable-'));
});

async function file(text: string): Promise<string> {
  const path = join(dir, 'vdmap.conf');
  await writeFile(path, text);
  return path;
}

const everywhere = (): boolean => true;

describe('loadVdmap', () => {
  it('reports a missing file', () => {
    const r = loadVdmap(join(dir, 'absent'), everywhere);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error[0]?.message).toBe('the file does not exist');
  });

  it('reports syntax problems with file:line', async () => {
    const r = loadVdmap(await file('vdmap a 127.0.0.4\na:Banner hi\nb:VDomain b\n'), everywhere);
    expect(r.ok ? [] : r.error.map((p) => `${p.where} ${p.message}`)).toEqual([
      'vdmap.conf:2 Banner cannot be set for a virtual domain (Table 13.1)',
      "vdmap.conf:3 'b' has no vdmap line before it",
    ]);
  });

  it('refuses addresses that are not local, and unreadable CertMapFiles, at their lines', async () => {
    const r = loadVdmap(
      await file(
        [
          'vdmap a 127.0.0.4',
          'vdmap far 192.0.2.1',
          `a:CertMapFile ${join(dir, 'no-certmap.conf')}`,
        ].join('\n'),
      ),
      (a) => a.startsWith('127.'),
    );
    expect(r.ok ? [] : r.error.map((p) => p.where)).toEqual(['vdmap.conf:3', 'vdmap.conf:2']);
  });

  it('warns about settings that do nothing', async () => {
    const r = loadVdmap(
      await file('vdmap a 127.0.0.4\na:BindDN cn=x\na:VirtualDomainFile /x\n'),
      everywhere,
    );
    expect(r.ok ? r.value.warnings.map((w) => w.where) : ['failed']).toEqual([
      'vdmap.conf:2',
      'vdmap.conf:3',
    ]);
  });
});

function globalValues(): ConfigValues {
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
  ]);
  if (!cl.ok) throw new Error('command line');
  const r = resolveConfig({ protocol: 'imap', commandLine: cl.value, env: {} });
  if (!r.ok) throw new Error(JSON.stringify(r.error));
  return r.value.values;
}

describe('VirtualDomains', () => {
  const values = globalValues();
  let settings: ProxySettings;
  let global: Directory;
  let table: VirtualDomains;
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

  beforeEach(async () => {
    const spoof = parseSpoofMessage(
      Buffer.from(
        'From: postmaster@mmp.test\r\nDate: Mon, 01 Jan 2024 00:00:00 +0000\r\nSubject: down\r\n\r\nback soon\r\n.\r\n',
      ),
    );
    if (!spoof.ok) throw new Error(spoof.error);
    // main.ts completes the global settings (the spoof message it read) after settingsFrom.
    settings = { ...settingsFrom({ protocol: 'imap', values }), spoofMessage: spoof.value };
    global = new Directory(settings.directory);
    const loaded = loadVdmap(await file(VDMAP), everywhere);
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.error));
    table = new VirtualDomains({
      protocol: 'imap',
      values,
      settings,
      directory: global,
      path: join(dir, 'vdmap.conf'),
      domains: loaded.value.domains,
      log: silentLog,
    });
  });
  afterEach(async () => {
    await table.close();
  });

  it('gives an unmapped address the global settings and directory', () => {
    const s = table.settingsFor('127.0.0.1');
    expect(s).toBe(settings);
    expect(table.directoryFor(s)).toBe(global);
    expect(s.userNames).toEqual({
      delimiters: '@',
      canonicalDelim: '+',
      vdomain: undefined,
      defaultDomain: undefined,
    });
  });

  it("gives a mapped address (any spelling) its entry's values over the global ones", () => {
    const s = table.settingsFor('::ffff:127.0.0.4');
    expect(s.searchFormat.text).toBe('(mail=%U@%V)');
    expect(s.userNames?.vdomain).toBe('one.example');
    expect(s.directory.mailHostAttrs).toEqual(['mmpAltMailHost', 'mailHost']);
    expect(s.directory.hosts).toEqual([
      { host: 'ldap1.one.example', secure: true, baseDn: 'o=one' },
      { host: 'ldap2.one.example', port: 1389, secure: false, baseDn: 'o=one-replica' },
    ]);
    // Its own directory: the global service account is not sent there.
    expect(s.directory.bindDn).toBeUndefined();
    expect(s.directory.bindPassword).toBeUndefined();
    // What main.ts added to the global settings carries over; ListenPort is global.
    expect(s.spoofMessage).toBe(settings.spoofMessage);
    expect(s.listen).toEqual({ host: '127.0.0.1', port: 1143 });
    expect(table.settingsFor('::1').userNames).toMatchObject({
      delimiters: '%',
      canonicalDelim: '#',
    });
    expect(table.settingsFor('0:0:0:0:0:0:0:1')).toBe(table.settingsFor('::1'));
  });

  it('keeps one directory client per distinct directory', () => {
    const one = table.directoryFor(table.settingsFor('127.0.0.4'));
    expect(one).not.toBe(global);
    expect(table.directoryFor(table.settingsFor('127.0.0.4'))).toBe(one);
    // six.example uses the global directory settings: the global client.
    expect(table.directoryFor(table.settingsFor('::1'))).toBe(global);
  });

  it("reports what a check finds in a domain's settings, at its vdmap line, also on reload", async () => {
    const checked = new VirtualDomains({
      protocol: 'imap',
      values,
      settings,
      directory: global,
      path: join(dir, 'vdmap.conf'),
      domains: [],
      log: silentLog,
      check: (s) =>
        s.security?.preAuth === true
          ? { ok: false, error: 'no PreAuth here' }
          : { ok: true, value: true },
    });
    expect(checked.problems()).toEqual([]);
    await file(VDMAP);
    const r = await checked.reload();
    expect(r.ok ? [] : r.error).toEqual([
      { where: 'vdmap.conf:1', message: 'vdmap one: no PreAuth here' },
    ]);
    expect(checked.domains).toEqual([]);
    expect(table.problems()).toEqual([]);
  });

  it('reload: a good file replaces the table, a bad one changes nothing', async () => {
    await file('vdmap two 127.0.0.4\ntwo:VDomain two.example\n');
    const good = await table.reload();
    expect(good.ok).toBe(true);
    expect(table.settingsFor('127.0.0.4').userNames?.vdomain).toBe('two.example');
    expect(table.settingsFor('::1')).toBe(settings);

    await file('vdmap two 127.0.0.4\ntwo:VDomian x\n');
    const bad = await table.reload();
    expect(bad.ok ? [] : bad.error.map((p) => p.where)).toEqual(['vdmap.conf:2']);
    expect(table.settingsFor('127.0.0.4').userNames?.vdomain).toBe('two.example');
  });
});
