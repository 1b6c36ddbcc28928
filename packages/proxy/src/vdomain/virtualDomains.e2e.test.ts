/**
 * Virtual domains end to end (issue 6): the built ImapProxy and PopProxy in front of the test
 * bed, with two hosted domains on two loopback addresses, each with its own slapd. `alice` exists
 * in both (alice+one.example on store B, alice+two.example on store A, different passwords) and in
 * the main directory (alice on store A). Clients: imapflow, curl and Python's poplib.
 */

import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type ResultPromise, execa } from 'execa';
import { ImapFlow } from 'imapflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../test-support/tempDirs.js';
import {
  type Testbed,
  canConnect,
  freePortsOnAll,
  markerSubject,
  startTestbed,
} from '@mmp/testbed';
import {
  IMAP_PROXY,
  POP_PROXY,
  logsUpToNow,
  proxyEnv,
  testbedArgs,
  waitForLog,
} from '../test-support/proxyProcess.js';

const ONE = '127.0.0.4';
const TWO = '127.0.0.5';
const GLOBAL = '127.0.0.1';
/** Mapped only while the SIGHUP test adds it. */
const THREE = '127.0.0.6';

let bed: Testbed;
let dir: string;
let vdmapFile: string;
let imap: Proxy;
let pop: Proxy;

interface Proxy {
  port: number;
  logDir: string;
  child: ResultPromise<{ reject: false; all: true; buffer: true }>;
  output(): string;
  logs(): Promise<string>;
  stop(): Promise<number | undefined>;
}

/** Start a proxy listening on 127.0.0.1:PORT, PORT free on the vdmap's addresses too. */
async function startProxy(
  program: string,
  args: readonly string[],
  listenAll = false,
  env: Record<string, string> = {},
): Promise<Proxy> {
  const [port = 0] = await freePortsOnAll([GLOBAL, ONE, TWO, THREE], 1);
  const logDir = await tempDir('mmp-vd-log-');
  const child = execa(
    'node',
    [
      program,
      '-p',
      listenAll ? String(port) : `${GLOBAL}:${port}`,
      '-o',
      logDir,
      '-v',
      '5',
      ...args,
    ],
    {
      reject: false,
      all: true,
      buffer: true,
      extendEnv: false,
      // JSON records: the tests below look for their fields.
      env: proxyEnv({ LogFormat: 'json', ...env }),
    },
  );
  let out = '';
  child.all.on('data', (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + 15_000;
  while (!out.includes('listening on')) {
    if (child.exitCode !== null || Date.now() > deadline)
      throw new Error(`${program} did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    logDir,
    child,
    output: () => out,
    async logs() {
      const files = (await readdir(logDir)).filter((f) => /^MMP_\d{8}\.log$/.test(f));
      return (await Promise.all(files.map((f) => readFile(join(logDir, f), 'utf8')))).join('');
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return (await child).exitCode;
    },
  };
}

/** The global directory (anonymous) and stores; the vdmap gives each hosted domain its own. */
const globalArgs = (b: Testbed, backsidePort: number): string[] => [
  ...testbedArgs(b, backsidePort, { bind: false }),
  '-vd',
  vdmapFile,
];

function vdmapText(b: Testbed): string {
  const [one, two] = b.domains;
  if (one === undefined || two === undefined) throw new Error('two hosted domains expected');
  return [
    '# one.example: its own directory, readable only when bound as its service account',
    `vdmap one ${ONE}`,
    'one:VDomain one.example',
    `one:LdapUrl ldap://${one.ldap.host}:${one.ldap.port}/${one.ldap.baseDn}`,
    `one:BindDN ${one.ldap.bindDn}`,
    `one:BindPass ${one.ldap.bindPassword}`,
    '',
    '# two.example: searched by mail address, the store in mmpAltMailHost, % or @ as delimiter',
    `vdmap two ${TWO}`,
    'two:VDomain two.example',
    `two:LdapUrl ldap://${two.ldap.host}:${two.ldap.port}/${two.ldap.baseDn}`,
    'two:VirtualDomainDelim @%',
    'two:UidSearch (mail=%U@%V)',
    'two:MailHostAttrs mmpAltMailHost',
    'two:PreAuth yes',
    '',
  ].join('\n');
}

beforeAll(async () => {
  bed = await startTestbed({
    bulkUsers: 0,
    domains: [
      { domain: 'one.example', users: { alice: 'B' }, anonymousRead: false },
      { domain: 'two.example', users: { alice: 'A' }, mailHostAttr: 'mmpAltMailHost' },
    ],
  });
  dir = await tempDir('mmp-vd-');
  vdmapFile = join(dir, 'vdmap.conf');
  await writeFile(vdmapFile, vdmapText(bed));
  [imap, pop] = await Promise.all([
    startProxy(IMAP_PROXY, globalArgs(bed, bed.backsidePorts.imap)),
    startProxy(POP_PROXY, globalArgs(bed, bed.backsidePorts.pop3)),
  ]);
});

afterAll(async () => {
  await Promise.all([imap?.stop(), pop?.stop()]);
  await bed?.stop();
});

const pw = (uid: string): string => bed.user(uid).password;

function client(
  host: string,
  user: string,
  pass: string,
  port = imap.port,
  secure = false,
): ImapFlow {
  return new ImapFlow({
    host,
    port,
    secure,
    // The test bed's certificate names 127.0.0.1 only; the chain is checked by the TLS tests.
    ...(secure ? { tls: { rejectUnauthorized: false } } : {}),
    auth: { user, pass },
    logger: false,
    disableAutoIdle: true,
  });
}

/** Log in with imapflow on this address and read the marker subject (names store and user). */
async function markerVia(
  host: string,
  user: string,
  pass: string,
  port = imap.port,
  secure = false,
): Promise<string> {
  const c = client(host, user, pass, port, secure);
  try {
    await c.connect();
  } catch (e) {
    const response = (e as { responseText?: string }).responseText;
    return `refused: ${response ?? (e as Error).message}`;
  }
  try {
    await c.mailboxOpen('INBOX');
    const msg = await c.fetchOne('1', { envelope: true });
    return (msg ? msg.envelope?.subject : undefined) ?? '(none)';
  } finally {
    await c.logout();
  }
}

const REFUSED = 'refused: Authentication failed.';

describe('IMAP: the address a client dialled selects the domain', () => {
  it('alice on each hosted address reaches her own mailbox, with her own password', async () => {
    expect(await markerVia(ONE, 'alice', pw('alice+one.example'))).toBe(
      markerSubject('B', 'alice+one.example'),
    );
    expect(await markerVia(TWO, 'alice', pw('alice+two.example'))).toBe(
      markerSubject('A', 'alice+two.example'),
    );
  });

  it("one domain's password does not open the other domain's alice", async () => {
    expect(await markerVia(ONE, 'alice', pw('alice+two.example'))).toMatch(/^refused/);
    expect(await markerVia(TWO, 'alice', pw('alice+one.example'))).toMatch(/^refused/);
  });

  it('an unmapped address (127.0.0.1) uses the global directory', async () => {
    expect(await markerVia(GLOBAL, 'alice', pw('alice'))).toBe(markerSubject('A', 'alice'));
    expect(await markerVia(GLOBAL, 'alice', pw('alice+one.example'))).toMatch(/^refused/);
    // Virtual domains are on: the global delimiter (@) gives alice+virt.example.
    expect(await markerVia(GLOBAL, 'alice@virt.example', pw('alice+virt.example'))).toBe(
      markerSubject('A', 'alice+virt.example'),
    );
  });

  it('delimiters: the domain typed after @ (or % where listed), in any case', async () => {
    expect(await markerVia(ONE, 'alice@one.example', pw('alice+one.example'))).toBe(
      markerSubject('B', 'alice+one.example'),
    );
    expect(await markerVia(ONE, 'alice@ONE.Example', pw('alice+one.example'))).toBe(
      markerSubject('B', 'alice+one.example'),
    );
    expect(await markerVia(TWO, 'alice%two.example', pw('alice+two.example'))).toBe(
      markerSubject('A', 'alice+two.example'),
    );
    expect(await markerVia(TWO, 'alice@two.example', pw('alice+two.example'))).toBe(
      markerSubject('A', 'alice+two.example'),
    );
    // % is no delimiter on one.example: `alice%one.example` + one.example names nobody.
    expect(await markerVia(ONE, 'alice%one.example', pw('alice+one.example'))).toMatch(/^refused/);
    // The last delimiter wins: user `alice@two.example`, domain two.example: nobody.
    expect(await markerVia(TWO, 'alice@two.example%two.example', pw('alice+two.example'))).toMatch(
      /^refused/,
    );
  });

  it('a domain not served on the address fails exactly like an unknown user', async () => {
    const foreign = await markerVia(ONE, 'alice@two.example', pw('alice+two.example'));
    const unknown = await markerVia(ONE, 'nobody', 'whatever');
    expect(foreign).toBe(REFUSED);
    expect(foreign).toBe(unknown);
  });

  it("each domain's UidSearch, base DN and MailHostAttrs were used (the log's directory queries)", async () => {
    const expected = [
      JSON.stringify('(uid=alice+one.example)'),
      JSON.stringify('(mail=alice@two.example)'),
      '"base":"o=one.example"',
      '"base":"o=two.example"',
      `"base":"${bed.ldap.baseDn}"`,
      'not served on this address (VDomain one.example)',
      '"typed":"alice%two.example","canonical":"alice+two.example"',
    ];
    const log = await waitForLog(
      () => imap.logs(),
      (text) => expected.every((e) => text.includes(e)),
    );
    for (const e of expected) expect(log).toContain(e);
  });

  it('PreAuth on two.example only: the directory judges the password before any store', async () => {
    expect(await markerVia(TWO, 'alice', 'wrong password')).toBe(REFUSED);
    expect(await markerVia(ONE, 'alice', 'wrong password')).toBe(REFUSED);
    // Every record made so far: the absences below are looked for in all of them.
    const records = (await logsUpToNow(imap, GLOBAL))
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as { sid?: string; msg?: string; server?: string; phase?: string });
    const sessionsOn = (address: string): Set<string> =>
      new Set(
        records
          .filter((r) => r.phase === 'connect' && r.server?.startsWith(`${address}:`))
          .map((r) => r.sid ?? ''),
      );
    const pre = records.filter((r) => r.phase === 'pre-authentication');
    // The guide's line, with the virtual domain in the user name.
    expect(
      pre.some((r) =>
        / \(sid 0x[0-9a-f]+\) alice\+two\.example pre-authenticated - /.test(r.msg ?? ''),
      ),
    ).toBe(true);
    const two = sessionsOn(TWO);
    const one = sessionsOn(ONE);
    expect(pre.every((r) => two.has(r.sid ?? ''))).toBe(true);
    expect(pre.some((r) => one.has(r.sid ?? ''))).toBe(false);
    // The wrong password on two.example never reached a store; on one.example the store refused it.
    const refusedBy = (sids: Set<string>): string[] =>
      records
        .filter((r) => sids.has(r.sid ?? '') && /login (failed|refused)/.test(r.msg ?? ''))
        .map((r) => r.msg ?? '');
    expect(refusedBy(two)).toContain('login failed: unknown user');
    expect(refusedBy(one)).toContain('login refused by store');
  });

  it('listens on the mapped addresses besides ListenPort', () => {
    // Connections above reached 127.0.0.4 and 127.0.0.5 on ListenPort's port.
    expect(imap.output()).toContain(`listening on ${GLOBAL}:${imap.port}`);
  });
});

describe('ListenPort on every address', () => {
  it('one listener serves the mapped addresses too, told apart by the local address', async () => {
    const all = await startProxy(IMAP_PROXY, globalArgs(bed, bed.backsidePorts.imap), true);
    try {
      expect(all.output()).toContain(`listening on :::${all.port}`);
      expect(await markerVia(ONE, 'alice', pw('alice+one.example'), all.port)).toBe(
        markerSubject('B', 'alice+one.example'),
      );
      expect(await markerVia(TWO, 'alice', pw('alice+two.example'), all.port)).toBe(
        markerSubject('A', 'alice+two.example'),
      );
      expect(await markerVia(GLOBAL, 'alice', pw('alice'), all.port)).toBe(
        markerSubject('A', 'alice'),
      );
      // Another loopback address, not in the vdmap: the global settings.
      expect(await markerVia('127.0.0.6', 'alice', pw('alice'), all.port)).toBe(
        markerSubject('A', 'alice'),
      );
    } finally {
      expect(await all.stop()).toBe(0);
    }
  });
});

describe('with SSLEnable', () => {
  function sslEnv(tlsPort: number): Record<string, string> {
    const tls = bed.tls;
    if (tls === undefined) throw new Error('the test bed has no TLS');
    return {
      SSLEnable: 'yes',
      SSLListenPort: `${GLOBAL}:${tlsPort}`,
      SSLCertFile: tls.certFile,
      SSLKeyFile: tls.keyFile,
    };
  }

  it('SSLListenPort on one address: the mapped addresses get implicit-TLS listeners too', async () => {
    const [tlsPort = 0] = await freePortsOnAll([GLOBAL, ONE, TWO], 1);
    const p = await startProxy(
      IMAP_PROXY,
      globalArgs(bed, bed.backsidePorts.imap),
      false,
      sslEnv(tlsPort),
    );
    try {
      expect(await markerVia(ONE, 'alice', pw('alice+one.example'), tlsPort, true)).toBe(
        markerSubject('B', 'alice+one.example'),
      );
      expect(await markerVia(TWO, 'alice', pw('alice+two.example'), tlsPort, true)).toBe(
        markerSubject('A', 'alice+two.example'),
      );
      expect(await markerVia(GLOBAL, 'alice', pw('alice'), tlsPort, true)).toBe(
        markerSubject('A', 'alice'),
      );
    } finally {
      expect(await p.stop()).toBe(0);
    }
  });

  it("a domain's own CertMapFile that does not parse: exit 2 at its vdmap line", async () => {
    const tls = bed.tls;
    if (tls === undefined) throw new Error('the test bed has no TLS');
    const badMap = join(dir, 'bad-certmap.conf');
    await writeFile(badMap, 'certmap\nnonsense here\n');
    const goodMap = join(dir, 'certmap.conf');
    await writeFile(
      goodMap,
      'certmap default default\ndefault:DNComps\ndefault:FilterComps e=mail\n',
    );
    const file = join(dir, 'certmap.vdmap');
    await writeFile(file, `# one\nvdmap one ${ONE}\none:CertMapFile ${badMap}\n`);
    const r = await execa('node', [IMAP_PROXY, '-p', `${GLOBAL}:1`, '-vd', file], {
      reject: false,
      all: true,
      extendEnv: false,
      env: proxyEnv({
        ...sslEnv(2),
        SSLCAFile: tls.caFile,
        StoreAdmin: bed.masterUser.name,
        StoreAdminPass: bed.masterUser.password,
        CertMapFile: goodMap,
      }),
      timeout: 15_000,
    });
    expect(r.exitCode, r.all).toBe(2);
    expect(r.all).toMatch(/ImapProxy: certmap\.vdmap:2: vdmap one: certificate login: /);
  });
});

/** Run Python's poplib against this address; the script prints JSON. */
async function poplib(host: string, script: string): Promise<unknown> {
  const code = [
    'import poplib, json',
    `M = poplib.POP3(${JSON.stringify(host)}, ${pop.port}, timeout=20)`,
    'def err(e):\n    return e.args[0].decode("utf-8", "replace")',
    script,
  ].join('\n');
  const r = await execa('python3', ['-c', code], { reject: false });
  if (r.exitCode !== 0) throw new Error(`python failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

describe('POP3: the same domains', () => {
  it('poplib: alice on 127.0.0.4 is alice+one.example (store B)', async () => {
    const subject = await poplib(
      ONE,
      [
        `M.user('alice')`,
        `M.pass_(${JSON.stringify(pw('alice+one.example'))})`,
        `lines = M.top(1, 0)[1]`,
        `print(json.dumps([l.decode() for l in lines if l.startswith(b'Subject:')][0]))`,
        'M.quit()',
      ].join('\n'),
    );
    expect(subject).toBe(`Subject: ${markerSubject('B', 'alice+one.example')}`);
  });

  it('curl: alice%two.example on 127.0.0.5 is alice+two.example (store A)', async () => {
    const r = await execa(
      'curl',
      [
        '-sS',
        '--max-time',
        '20',
        `pop3://${TWO}:${pop.port}/1`,
        '-u',
        `alice%two.example:${pw('alice+two.example')}`,
      ],
      { reject: false },
    );
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain(`Subject: ${markerSubject('A', 'alice+two.example')}`);
  });

  it('poplib: a foreign domain is refused like an unknown user', async () => {
    const answers = await poplib(
      ONE,
      [
        'out = []',
        "for u, p in (('alice@two.example', 'x'), ('nobody', 'x')):",
        `    M = poplib.POP3(${JSON.stringify(ONE)}, ${pop.port}, timeout=20)`,
        '    M.user(u)',
        '    try:',
        '        M.pass_(p)',
        "        out.append('accepted')",
        '    except poplib.error_proto as e:',
        '        out.append(err(e))',
        'print(json.dumps(out))',
      ].join('\n'),
    );
    expect(answers).toEqual([
      '-ERR [AUTH] Authentication failed.',
      '-ERR [AUTH] Authentication failed.',
    ]);
  });
});

describe('configuration checked at start-up', () => {
  async function refused(
    text: string | undefined,
  ): Promise<{ code: number | undefined; out: string }> {
    const file = join(dir, `bad-${Math.random().toString(36).slice(2)}.vdmap`);
    if (text !== undefined) await writeFile(file, text);
    const r = await execa('node', [IMAP_PROXY, '-p', `${GLOBAL}:1`, '-vd', file], {
      reject: false,
      all: true,
      extendEnv: false,
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' },
      timeout: 15_000,
    });
    return { code: r.exitCode, out: (r.all ?? '').replaceAll(file.slice(dir.length + 1), 'F') };
  }

  it('an unknown property: exit 2, with the line number', async () => {
    const r = await refused(`vdmap one ${ONE}\none:VDomain one.example\none:UidSerch (uid=%s)\n`);
    expect(r.code).toBe(2);
    expect(r.out).toContain(
      "ImapProxy: F:3: unknown property 'UidSerch' (did you mean UidSearch?)",
    );
  });

  it('an address that is not on this machine: exit 2, with the line number', async () => {
    const r = await refused(`# a comment\nvdmap far 192.0.2.1\nfar:VDomain far.example\n`);
    expect(r.code).toBe(2);
    expect(r.out).toContain(
      'ImapProxy: F:2: 192.0.2.1 (vdmap far) is not an address of this machine',
    );
  });

  it('a bad value, a property without its vdmap line, a missing CertMapFile: every line listed', async () => {
    const r = await refused(
      [
        `vdmap one ${ONE}`,
        'one:UidSearch (uid=%q)',
        'two:VDomain two.example',
        'one:CertMapFile /nonexistent/certmap.conf',
      ].join('\n'),
    );
    expect(r.code).toBe(2);
    expect(r.out).toMatch(/F:2: .*unknown escape %q/);
    expect(r.out).toContain("F:3: 'two' has no vdmap line before it");
    // Syntax first: the file checks run once it parses.
    const c = await refused(`vdmap one ${ONE}\none:CertMapFile /nonexistent/certmap.conf\n`);
    expect(c.code).toBe(2);
    expect(c.out).toContain(
      'F:2: one:CertMapFile /nonexistent/certmap.conf cannot be read (ENOENT)',
    );
  });

  it('a missing file: exit 2', async () => {
    const r = await refused(undefined);
    expect(r.code).toBe(2);
    expect(r.out).toMatch(/VirtualDomainFile .*: the file does not exist/);
  });
});

describe('SIGHUP', () => {
  it('re-reads the vdmap for new connections, listeners following its addresses; an established session goes on; a bad file is refused', async () => {
    const held = client(ONE, 'alice', pw('alice+one.example'));
    await held.connect();
    await held.mailboxOpen('INBOX');
    try {
      // Swap the addresses: 127.0.0.4 now serves two.example, 127.0.0.5 one.example.
      const swapped = vdmapText(bed)
        .replace(`vdmap one ${ONE}`, `vdmap one ${TWO}`)
        .replace(`vdmap two ${TWO}`, `vdmap two ${ONE}`);
      await writeFile(vdmapFile, swapped);
      imap.child.kill('SIGHUP');
      await waitFor(() => imap.output().includes('SIGHUP: '));
      expect(imap.output()).toContain('SIGHUP: configuration reloaded');
      expect(await markerVia(ONE, 'alice', pw('alice+two.example'))).toBe(
        markerSubject('A', 'alice+two.example'),
      );
      expect(await markerVia(TWO, 'alice', pw('alice+one.example'))).toBe(
        markerSubject('B', 'alice+one.example'),
      );
      // The session opened before the reload is still alice+one.example on store B.
      const msg = await held.fetchOne('1', { envelope: true });
      expect(msg ? msg.envelope?.subject : undefined).toBe(markerSubject('B', 'alice+one.example'));

      // A broken file: logged and refused, the swapped table stays.
      await writeFile(vdmapFile, `vdmap one ${ONE}\none:Nonsense yes\n`);
      const before = imap.output().length;
      imap.child.kill('SIGHUP');
      await waitFor(() => imap.output().slice(before).includes('SIGHUP: '));
      expect(imap.output().slice(before)).toContain(
        "SIGHUP: configuration refused, keeping the running one: vdmap.conf:2: unknown property 'Nonsense'",
      );
      expect(await markerVia(ONE, 'alice', pw('alice+two.example'))).toBe(
        markerSubject('A', 'alice+two.example'),
      );
      expect(await held.noop()).toBeUndefined();
      expect(imap.child.exitCode).toBeNull();

      // A new address gets a listener; a removed one loses it (ListenPort binds 127.0.0.1 only).
      expect(await canConnect(THREE, imap.port)).toBe(false);
      const reloads = (): number => imap.output().split(' reloaded').length - 1;
      const n = reloads();
      await writeFile(
        vdmapFile,
        `${vdmapText(bed)}vdmap three ${THREE}\nthree:VDomain virt.example\n`,
      );
      imap.child.kill('SIGHUP');
      await waitFor(() => reloads() > n);
      expect(await markerVia(THREE, 'alice', pw('alice+virt.example'))).toBe(
        markerSubject('A', 'alice+virt.example'),
      );
      await writeFile(vdmapFile, vdmapText(bed));
      imap.child.kill('SIGHUP');
      await waitFor(() => reloads() > n + 1);
      expect(await canConnect(THREE, imap.port)).toBe(false);
      expect(await markerVia(ONE, 'alice', pw('alice+one.example'))).toBe(
        markerSubject('B', 'alice+one.example'),
      );
    } finally {
      await held.logout();
      await writeFile(vdmapFile, vdmapText(bed));
      imap.child.kill('SIGHUP');
    }
  });
});

async function waitFor(check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}
