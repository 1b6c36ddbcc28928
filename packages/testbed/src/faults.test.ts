// Fault injection: slapd and a store paused, killed and restarted; the scripted stores, each
// misbehaving in its own way behind a directory entry; a full tmpfs.
import { existsSync } from 'node:fs';
import { appendFile, writeFile } from 'node:fs/promises';
import * as net from 'node:net';
import { basename, dirname } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import {
  canConnect,
  GARBAGE,
  imapLoginCommand,
  LineClient,
  mountFullTmpfs,
  mountsUnder,
  readGreeting,
  reapOrphans,
  SCRIPTED_BEHAVIOURS,
  SCRIPTED_HOSTS,
  startTestbed,
  waitUntil,
  type ScriptedBehaviour,
  type ScriptedStore,
  type Testbed,
} from './index.js';

// One scripted store per behaviour, and a user routed to each (then to store B, for failover).
const behaviours = SCRIPTED_BEHAVIOURS;
const scriptedUid = (b: ScriptedBehaviour): string => `scripted-${b}`;
const testbed: Testbed = await startTestbed({
  bulkUsers: 0,
  tls: false,
  scriptedStores: behaviours,
  extraUsers: behaviours.map((b, i) => ({
    uid: scriptedUid(b),
    mailHosts: [SCRIPTED_HOSTS[i] ?? '', '127.0.0.3'],
    mailboxes: ['B'],
  })),
});
afterAll(async () => {
  await testbed.stop();
});

/** Every byte a connection receives, and how it ended. */
class Raw {
  data = Buffer.alloc(0);
  ended: 'open' | 'end' | 'reset' | 'error' = 'open';
  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.data = Buffer.concat([this.data, chunk]);
    });
    socket.on('end', () => {
      if (this.ended === 'open') this.ended = 'end';
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      this.ended = error.code === 'ECONNRESET' ? 'reset' : 'error';
    });
  }

  static async connect(host: string, port: number): Promise<Raw> {
    const socket = net.connect({ host, port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new Raw(socket);
  }

  text(): string {
    return this.data.toString('latin1');
  }

  /** Wait until the bytes received satisfy `done` (10 s at most). */
  async until(what: string, done: (raw: Raw) => boolean): Promise<void> {
    await waitUntil(what, async () => done(this), { timeoutMs: 10_000 });
  }

  /** Wait for `n` lines in all. */
  async lines(n: number): Promise<string[]> {
    await this.until(`${n} lines`, (r) => r.text().split('\r\n').length > n);
    return this.text().split('\r\n').slice(0, n);
  }

  write(text: string): void {
    this.socket.write(text);
  }

  close(): void {
    this.socket.destroy();
  }
}

const scripted = (b: ScriptedBehaviour): ScriptedStore => {
  const found = testbed.scriptedStores.find((s) => s.behaviour === b);
  if (found === undefined) throw new Error(`no scripted store ${b}`);
  return found;
};
const IMAP_GREETING = (s: ScriptedStore): string =>
  `* OK [CAPABILITY IMAP4rev1 LITERAL+ SASL-IR ID AUTH=PLAIN] mmp-test scripted store ${s.host} ready\r\n`;
const POP3_GREETING = (s: ScriptedStore): string =>
  `+OK mmp-test scripted store ${s.host} ready.\r\n`;

/** A login replayed as nginx and mmp do: LOGIN with synchronising literals. */
async function imapLogin(raw: Raw): Promise<void> {
  raw.write('mmp1 LOGIN {5}\r\n');
  await raw.until('continuation', (r) => r.text().includes('+ go ahead\r\n'));
  raw.write('alice {12}\r\n');
  await raw.until('second continuation', (r) => r.text().split('+ go ahead\r\n').length === 3);
  raw.write('secret-alice\r\n');
}

describe('the directory routes test users to the scripted stores', () => {
  it('each scripted store on its own address, on the back-side ports; extra users point at them', async () => {
    expect(testbed.scriptedStores.map((s) => s.host)).toEqual(
      SCRIPTED_HOSTS.slice(0, behaviours.length),
    );
    for (const s of testbed.scriptedStores) {
      expect(s.imapPort).toBe(testbed.backsidePorts.imap);
      expect(s.pop3Port).toBe(testbed.backsidePorts.pop3);
    }
    const user = testbed.user(scriptedUid('echo'));
    expect(user).toMatchObject({ kind: 'extra', store: 'B', mailboxes: ['B'] });
    const found = await execa(
      'ldapsearch',
      [
        '-x',
        '-LLL',
        '-H',
        testbed.ldap.url,
        '-b',
        testbed.ldap.baseDn,
        `(uid=${user.uid})`,
        'mailHost',
      ],
      { reject: false },
    );
    expect(found.stdout).toContain(`mailHost: ${scripted('echo').host}\nmailHost: 127.0.0.3`);
    // the mailbox on B is real: the user logs in there directly
    const b = await LineClient.connect('127.0.0.3', testbed.backsidePorts.imap);
    await b.readLine();
    expect((await b.imap('a', imapLoginCommand(user.uid, user.password))).at(-1)).toMatch(/^a OK/);
    b.close();
    expect(testbed.describe().scriptedStores).toHaveLength(behaviours.length);
  });
});

describe('scripted stores', () => {
  it('never-greet: accepts and sends nothing', async () => {
    const s = scripted('never-greet');
    const before = s.accepted;
    await expect(readGreeting(s.host, s.imapPort, { timeoutMs: 300 })).rejects.toThrow(
      /no greeting/,
    );
    expect(s.accepted).toBe(before + 1);
  });

  it('stall-mid-greeting: half a greeting line, no CRLF', async () => {
    const s = scripted('stall-mid-greeting');
    const raw = await Raw.connect(s.host, s.pop3Port);
    const greeting = POP3_GREETING(s);
    await raw.until('half a greeting', (r) => r.data.length > 0);
    raw.close();
    expect(raw.text()).toBe(greeting.slice(0, Math.floor(greeting.length / 2)));
    expect(raw.text()).not.toContain('\n');
  });

  it('stall-mid-reply: greets, takes the literal login, answers half a line', async () => {
    const s = scripted('stall-mid-reply');
    const raw = await Raw.connect(s.host, s.imapPort);
    await raw.until('greeting', (r) => r.text() === IMAP_GREETING(s));
    await imapLogin(raw);
    await raw.until('half an answer', (r) => r.text().includes('mmp1 OK'));
    raw.close();
    const answer = raw.text().split('+ go ahead\r\n').at(-1) ?? '';
    expect(answer).toMatch(/^mmp1 OK \[CAPA/);
    expect(answer).not.toContain('\n');
  });

  it('reset-on-login: greets, resets on the LOGIN line before its literal', async () => {
    const s = scripted('reset-on-login');
    const raw = await Raw.connect(s.host, s.imapPort);
    await raw.until('greeting', (r) => r.text() === IMAP_GREETING(s));
    raw.write('mmp1 LOGIN {5}\r\n');
    await raw.until('a reset', (r) => r.ended === 'reset');
    expect(raw.text()).toBe(IMAP_GREETING(s));
    expect(s.commands.at(-1)).toBe('imap: mmp1 LOGIN {5}');
  });

  it('reset-on-login (POP3): USER gets +OK, PASS a reset', async () => {
    const s = scripted('reset-on-login');
    const raw = await Raw.connect(s.host, s.pop3Port);
    await raw.until('greeting', (r) => r.text() === POP3_GREETING(s));
    raw.write('USER alice\r\n');
    await raw.until('+OK', (r) => r.text().endsWith('+OK\r\n'));
    raw.write('PASS secret-alice\r\n');
    await raw.until('a reset', (r) => r.ended === 'reset');
    expect(s.commands.slice(-2)).toEqual(['pop3: USER alice', 'pop3: PASS ***']);
  });

  it('garbage-greeting: bytes that are neither IMAP nor POP3', async () => {
    const s = scripted('garbage-greeting');
    const raw = await Raw.connect(s.host, s.imapPort);
    await raw.until('garbage', (r) => r.data.length >= GARBAGE.length);
    raw.close();
    expect(raw.data).toEqual(GARBAGE);
  });

  it('garbage-reply: greets, answers the login with garbage', async () => {
    const s = scripted('garbage-reply');
    const raw = await Raw.connect(s.host, s.pop3Port);
    await raw.until('greeting', (r) => r.text() === POP3_GREETING(s));
    raw.write('USER alice\r\nPASS secret-alice\r\n');
    await raw.until(
      'garbage',
      (r) => r.data.length >= POP3_GREETING(s).length + 5 + GARBAGE.length,
    );
    raw.close();
    expect(raw.data.subarray(POP3_GREETING(s).length + 5)).toEqual(GARBAGE);
  });

  it('close-after-ok: the OK, then the connection ends', async () => {
    const s = scripted('close-after-ok');
    const before = s.logins;
    const raw = await Raw.connect(s.host, s.imapPort);
    await raw.until('greeting', (r) => r.text() === IMAP_GREETING(s));
    await imapLogin(raw);
    await raw.until('the end', (r) => r.ended === 'end');
    expect(raw.text().split('+ go ahead\r\n').at(-1)).toMatch(
      /^mmp1 OK \[CAPABILITY [^\]]+\] Logged in\r\n$/,
    );
    expect(s.logins).toBe(before + 1);
  });

  it('echo: LOGIN, AUTHENTICATE PLAIN and USER+PASS get OK, then every byte comes back', async () => {
    const s = scripted('echo');
    const imap = await Raw.connect(s.host, s.imapPort);
    await imap.until('greeting', (r) => r.text() === IMAP_GREETING(s));
    imap.write('a ID ("name" "mmp")\r\nb LOGIN alice secret-alice\r\nc NOOP\r\n');
    // pipelined after the login: echoed, not answered
    const lines = await imap.lines(5);
    imap.close();
    expect(lines.slice(1)).toEqual([
      '* ID NIL',
      'a OK done',
      expect.stringMatching(/^b OK \[CAPABILITY/),
      'c NOOP',
    ]);

    const sasl = await Raw.connect(s.host, s.imapPort);
    sasl.write('a AUTHENTICATE PLAIN\r\n');
    await sasl.until('continuation', (r) => r.text().endsWith('+ \r\n'));
    sasl.write(`${Buffer.from('\0alice\0secret-alice').toString('base64')}\r\n`);
    await sasl.until('OK', (r) => r.text().includes('a OK'));
    sasl.write('ping\r\n');
    await sasl.until('echo', (r) => r.text().endsWith('Logged in\r\nping\r\n'));
    sasl.close();

    const pop3 = await Raw.connect(s.host, s.pop3Port);
    pop3.write('CAPA\r\nUSER alice\r\nPASS secret-alice\r\nSTAT\r\n');
    const answer = await pop3.lines(8);
    pop3.close();
    expect(answer.slice(1)).toEqual([
      '+OK',
      'USER',
      'SASL PLAIN',
      '.',
      '+OK',
      '+OK Logged in.',
      'STAT',
    ]);
  });

  it('takes a new behaviour for new connections', async () => {
    const s = scripted('never-greet');
    s.behaviour = 'garbage-greeting';
    try {
      const raw = await Raw.connect(s.host, s.imapPort);
      await raw.until('garbage', (r) => r.data.length >= GARBAGE.length);
      raw.close();
      expect(raw.data).toEqual(GARBAGE);
    } finally {
      s.behaviour = 'never-greet';
    }
  });
});

describe('slapd faults', () => {
  const search = (timeoutS = 5) =>
    execa(
      'ldapsearch',
      [
        ...['-x', '-LLL', '-o', `nettimeout=${timeoutS}`, '-l', String(timeoutS)],
        ...['-H', testbed.ldap.url, '-b', testbed.ldap.baseDn, '(uid=bob)', 'mailHost'],
      ],
      { reject: false, stdin: 'ignore', timeout: timeoutS * 1000 + 500 },
    );

  it('paused: connections are accepted but nothing is answered; resumed, it answers', async () => {
    testbed.ldap.pause();
    try {
      expect(testbed.ldap.paused).toBe(true);
      expect(await canConnect(testbed.ldap.host, testbed.ldap.port)).toBe(true);
      const hung = search(1);
      expect((await hung).exitCode).not.toBe(0);
    } finally {
      testbed.ldap.resume();
    }
    expect(testbed.ldap.paused).toBe(false);
    const found = await search();
    expect(found.stdout).toContain('mailHost: 127.0.0.3');
  });

  it('a search waiting on a paused slapd is answered once it resumes', async () => {
    testbed.ldap.pause();
    const waiting = search(20);
    await new Promise((resolve) => setTimeout(resolve, 300));
    testbed.ldap.resume();
    expect((await waiting).stdout).toContain('mailHost: 127.0.0.3');
  });

  it('killed: refused; started again with the same data; restart() too', async () => {
    await testbed.ldap.kill();
    expect(testbed.ldap.running).toBe(false);
    expect(await canConnect(testbed.ldap.host, testbed.ldap.port)).toBe(false);
    await testbed.ldap.start();
    expect((await search()).stdout).toContain('mailHost: 127.0.0.3');
    await testbed.ldap.restart();
    expect((await search()).stdout).toContain('mailHost: 127.0.0.3');
  });

  it('stop() of a paused slapd does not wait for it', async () => {
    const bed = await startTestbed({ bulkUsers: 0, tls: false, stores: 1 });
    bed.ldap.pause();
    bed.store('A').pause();
    await bed.stop();
    expect(await canConnect(bed.ldap.host, bed.ldap.port)).toBe(false);
    expect(existsSync(bed.dir)).toBe(false);
  });
});

describe('store faults', () => {
  const store = () => testbed.store('A');

  it('paused: the kernel accepts, nothing greets; resumed, the waiting connection is greeted', async () => {
    const s = store();
    s.pause();
    let waiting: Promise<string> | undefined;
    try {
      expect(s.paused).toBe(true);
      await expect(readGreeting(s.host, s.imapPort, { timeoutMs: 300 })).rejects.toThrow(
        /no greeting/,
      );
      waiting = readGreeting(s.host, s.imapPort, { timeoutMs: 20_000 });
    } finally {
      s.resume();
    }
    expect(await waiting).toContain(s.greeting);
  });

  it('a logged-in session freezes with its store and carries on when it resumes', async () => {
    const s = store();
    const alice = testbed.user('alice');
    const client = await LineClient.connect(s.host, s.imapPort, { timeoutMs: 20_000 });
    await client.readLine();
    expect((await client.imap('a', imapLoginCommand(alice.uid, alice.password))).at(-1)).toMatch(
      /^a OK/,
    );
    s.pause();
    const answer = client.imap('b', 'NOOP');
    await new Promise((resolve) => setTimeout(resolve, 300));
    s.resume();
    expect((await answer).at(-1)).toMatch(/^b OK/);
    client.close();
  });

  it('killed: refused on its address and ports; started again there, logins work', async () => {
    const s = store();
    const { host, imapPort, pop3Port } = s;
    await s.kill();
    expect(s.running).toBe(false);
    expect(await canConnect(host, imapPort)).toBe(false);
    await s.start();
    expect([s.host, s.imapPort, s.pop3Port]).toEqual([host, imapPort, pop3Port]);
    expect(await readGreeting(host, pop3Port)).toContain(s.greeting);
    const alice = testbed.user('alice');
    const client = await LineClient.connect(host, imapPort);
    await client.readLine();
    expect((await client.imap('a', imapLoginCommand(alice.uid, alice.password))).at(-1)).toMatch(
      /^a OK/,
    );
    client.close();
  });

  it('restart(): down, then up on the same address and ports', async () => {
    const s = store();
    await s.restart();
    expect(s.running).toBe(true);
    expect(await readGreeting(s.host, s.imapPort)).toContain(s.greeting);
  });
});

describe('a full tmpfs', () => {
  it('refuses a byte more; free() and fill() empty and fill it; unmount() removes it', async () => {
    const fs = await mountFullTmpfs({ sizeKiB: 16 });
    try {
      expect(mountsUnder(fs.path)).toEqual([fs.path]);
      await expect(appendFile(`${fs.path}/mmp.log`, 'one record\n')).rejects.toMatchObject({
        code: 'ENOSPC',
      });
      await fs.free();
      await writeFile(`${fs.path}/mmp.log`, 'one record\n');
      await fs.fill();
      await expect(appendFile(`${fs.path}/mmp.log`, 'x'.repeat(4096))).rejects.toMatchObject({
        code: 'ENOSPC',
      });
    } finally {
      await fs.unmount();
    }
    expect(mountsUnder(fs.path)).toEqual([]);
    expect(existsSync(dirname(fs.path))).toBe(false);
  });

  it('is unmounted by a later start when the process that mounted it was SIGKILLed', async () => {
    const index = new URL('../dist/index.js', import.meta.url).href;
    const child = execa(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { mountFullTmpfs } from ${JSON.stringify(index)};
         const fs = await mountFullTmpfs();
         console.log(fs.path);
         setInterval(() => {}, 1000);`,
      ],
      { reject: false, stdin: 'ignore' },
    );
    const path = await new Promise<string>((resolve, reject) => {
      child.stdout?.once('data', (chunk: Buffer) => resolve(chunk.toString('utf8').trim()));
      void child.then((result) => reject(new Error(`child ended: ${result.stderr}`)));
    });
    child.kill('SIGKILL');
    await child;
    expect(mountsUnder(path)).toEqual([path]);
    const dir = dirname(path);
    expect(basename(dir)).toMatch(/^mmp-testbed-/);
    expect(await reapOrphans(dirname(dir))).toContain(dir);
    expect(mountsUnder(path)).toEqual([]);
    expect(existsSync(dir)).toBe(false);
  });
});
