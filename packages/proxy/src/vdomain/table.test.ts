import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { tempDir } from '../test-support/tempDirs.js';
import { isLocalAddress, loadVdmap } from './table.js';

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
  dir = await tempDir('mmp-vdtable-');
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
