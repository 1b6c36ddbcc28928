/**
 * nginx-tests' mail cases (mail_imap.t, mail_pop3.t, mail_max_errors.t) that apply to a routing
 * proxy, as a table run against the built ImapProxy and PopProxy on the test bed (issue 13,
 * point 8). Each row names the nginx case it mirrors; the README's "nginx's mail tests" table
 * says which apply, where they run, and what mmp does where it differs by design (APOP,
 * CRAM-MD5: the proxy needs the plaintext password to replay the login).
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SPECIAL_PASSWORD, type Testbed, startTestbed } from '@mmp/testbed';
import {
  POP_PROXY,
  type ProxyProcess,
  startProxyProcess,
  testbedArgs,
} from '../test-support/proxyProcess.js';
import { RawClient } from '../test-support/rawClient.js';

let bed: Testbed;
let imap: ProxyProcess;
let pop: ProxyProcess;

beforeAll(async () => {
  bed = await startTestbed({ tls: false });
  imap = await startProxyProcess(testbedArgs(bed, bed.backsidePorts.imap), { Timeout: '10' });
  pop = await startProxyProcess(
    testbedArgs(bed, bed.backsidePorts.pop3),
    { Timeout: '10' },
    POP_PROXY,
  );
}, 180_000);

afterAll(async () => {
  await imap?.stop();
  await pop?.stop();
  await bed?.stop();
});

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

async function greeted(proxy: ProxyProcess): Promise<RawClient> {
  const c = await RawClient.open(proxy.port);
  expect(await c.line()).toMatch(/^(\* OK|\+OK) /);
  return c;
}

/** The last line up to the tagged answer of `tag`. */
async function answer(c: RawClient, tag: string): Promise<string | undefined> {
  return (await c.until(tag)).at(-1);
}

/** An IMAP case: what the client sends and what it must see, as nginx's `check`/`ok`. */
type ImapCase = readonly [nginx: string, run: (c: RawClient) => Promise<void>];

const IMAP_CASES: readonly ImapCase[] = [
  [
    'login without arguments',
    async (c) => {
      c.send('a01 LOGIN\r\n');
      expect(await c.line()).toMatch(/^a01 BAD /);
    },
  ],
  [
    'login with bad password, then login',
    async (c) => {
      const u = bed.userOn('A');
      c.send(`a02 LOGIN ${u.uid} bad\r\n`);
      expect(await answer(c, 'a02')).toMatch(/^a02 NO /);
      c.send(`a03 LOGIN ${u.uid} ${u.password}\r\n`);
      expect(await answer(c, 'a03')).toMatch(/^a03 OK /);
    },
  ],
  [
    'auth without arguments',
    async (c) => {
      c.send('1 AUTHENTICATE\r\n');
      expect(await c.line()).toMatch(/^1 BAD /);
    },
  ],
  [
    'auth plain with bad password, then auth plain',
    async (c) => {
      const u = bed.userOn('A');
      c.send(`1 AUTHENTICATE PLAIN ${b64(`\0${u.uid}\0bad`)}\r\n`);
      expect(await answer(c, '1')).toMatch(/^1 NO /);
      c.send(`2 AUTHENTICATE PLAIN ${b64(`\0${u.uid}\0${u.password}`)}\r\n`);
      expect(await answer(c, '2')).toMatch(/^2 OK /);
    },
  ],
  [
    'auth login simple (username and password challenges)',
    async (c) => {
      const u = bed.userOn('B');
      c.send('1 AUTHENTICATE LOGIN\r\n');
      expect(await c.line()).toBe('+ VXNlcm5hbWU6');
      c.send(`${b64(u.uid)}\r\n`);
      expect(await c.line()).toBe('+ UGFzc3dvcmQ6');
      c.send(`${b64(u.password)}\r\n`);
      expect(await answer(c, '1')).toMatch(/^1 OK /);
    },
  ],
  [
    'auth login with username',
    async (c) => {
      const u = bed.userOn('B');
      c.send(`1 AUTHENTICATE LOGIN ${b64(u.uid)}\r\n`);
      expect(await c.line()).toBe('+ UGFzc3dvcmQ6');
      c.send(`${b64(u.password)}\r\n`);
      expect(await answer(c, '1')).toMatch(/^1 OK /);
    },
  ],
  [
    'auth cram-md5 (differs: not offered, the replay needs the password)',
    async (c) => {
      c.send('1 AUTHENTICATE CRAM-MD5\r\n');
      expect(await c.line()).toBe('1 NO [CANNOT] Unsupported authentication mechanism');
    },
  ],
  [
    'auth external (differs: only with a verified client certificate)',
    async (c) => {
      c.send(`1 AUTHENTICATE EXTERNAL ${b64('alice')}\r\n`);
      expect(await c.line()).toMatch(/^1 NO \[AUTHENTICATIONFAILED\] /);
    },
  ],
  [
    'quoted strings (escaped quote and backslash)',
    async (c) => {
      const u = bed.user('quoted');
      expect(u.password).toBe(SPECIAL_PASSWORD);
      const quoted = `"${SPECIAL_PASSWORD.replace(/["\\]/g, (ch) => `\\${ch}`)}"`;
      c.send(Buffer.from(`a01 LOGIN "${u.uid}" ${quoted}\r\n`, 'utf8'));
      expect(await answer(c, 'a01')).toMatch(/^a01 OK /);
    },
  ],
  [
    'literals (user name and password, each after `+`)',
    async (c) => {
      const u = bed.userOn('A');
      c.send(`a01 LOGIN {${u.uid.length}}\r\n`);
      expect(await c.line()).toMatch(/^\+ /);
      c.send(`${u.uid} {${u.password.length}}\r\n`);
      expect(await c.line()).toMatch(/^\+ /);
      c.send(`${u.password}\r\n`);
      expect(await answer(c, 'a01')).toMatch(/^a01 OK /);
    },
  ],
  [
    'non-synchronizing literals',
    async (c) => {
      const u = bed.userOn('A');
      c.send(
        `a01 LOGIN {${u.uid.length}+}\r\n${u.uid} {${u.password.length}+}\r\n${u.password}\r\n`,
      );
      expect(await answer(c, 'a01')).toMatch(/^a01 OK /);
    },
  ],
  [
    'backslash in literal (a literal name, a quoted password)',
    async (c) => {
      const u = bed.userOn('B');
      c.send(`a01 LOGIN {${u.uid.length}+}\r\n${u.uid} "${u.password}"\r\n`);
      expect(await answer(c, 'a01')).toMatch(/^a01 OK /);
    },
  ],
  [
    'pipelined invalid command, then noop',
    async (c) => {
      c.send('a01 INVALID COMMAND WITH ARGUMENTS\r\na02 NOOP\r\n');
      expect(await c.line()).toMatch(/^a01 BAD /);
      expect(await c.line()).toMatch(/^a02 OK /);
    },
  ],
  [
    'invalid command with a non-sync literal: the literal is not a command',
    async (c) => {
      c.send('a03 FOOBAR {10+}\r\ntest test \r\na04 NOOP\r\n');
      expect(await c.line()).toMatch(/^a03 BAD /);
      // Either the stream stays in step (a04 answered) or the session ends; never `test` read.
      const next = await c.line();
      expect(next === undefined || next.startsWith('a04 ') || next.startsWith('* BYE')).toBe(true);
    },
  ],
  [
    'pipelined login and logout: the logout reaches the store',
    async (c) => {
      const u = bed.userOn('A');
      c.send(`a01 LOGIN ${u.uid} ${u.password}\r\na02 LOGOUT\r\n`);
      const lines = await c.rest();
      expect(lines.find((l) => l.startsWith('a01 '))).toMatch(/^a01 OK /);
      expect(lines.at(-1)).toMatch(/^a02 OK /);
    },
  ],
];

describe('nginx-tests mail_imap.t, as a routing proxy', () => {
  for (const [nginx, run] of IMAP_CASES)
    it(nginx, async () => {
      const c = await greeted(imap);
      try {
        await run(c);
      } finally {
        c.close();
      }
    });
});

type Pop3Case = readonly [nginx: string, run: (c: RawClient) => Promise<void>];

const POP3_CASES: readonly Pop3Case[] = [
  [
    'user and pass: bad password, then good',
    async (c) => {
      const u = bed.userOn('A');
      c.send(`USER ${u.uid}\r\n`);
      expect(await c.line()).toMatch(/^\+OK/);
      c.send('PASS bad\r\n');
      expect(await c.line()).toMatch(/^-ERR/);
      c.send(`USER ${u.uid}\r\nPASS ${u.password}\r\n`);
      expect(await c.line()).toMatch(/^\+OK/);
      expect(await c.line()).toMatch(/^\+OK/);
    },
  ],
  [
    'auth plain with bad password, then auth plain',
    async (c) => {
      const u = bed.userOn('B');
      c.send(`AUTH PLAIN ${b64(`\0${u.uid}\0bad`)}\r\n`);
      expect(await c.line()).toMatch(/^-ERR/);
      c.send(`AUTH PLAIN ${b64(`\0${u.uid}\0${u.password}`)}\r\n`);
      expect(await c.line()).toMatch(/^\+OK/);
    },
  ],
  [
    'auth login simple',
    async (c) => {
      const u = bed.userOn('A');
      c.send('AUTH LOGIN\r\n');
      expect(await c.line()).toBe('+ VXNlcm5hbWU6');
      c.send(`${b64(u.uid)}\r\n`);
      expect(await c.line()).toBe('+ UGFzc3dvcmQ6');
      c.send(`${b64(u.password)}\r\n`);
      expect(await c.line()).toMatch(/^\+OK/);
    },
  ],
  [
    'auth login with username',
    async (c) => {
      const u = bed.userOn('A');
      c.send(`AUTH LOGIN ${b64(u.uid)}\r\n`);
      expect(await c.line()).toBe('+ UGFzc3dvcmQ6');
      c.send(`${b64(u.password)}\r\n`);
      expect(await c.line()).toMatch(/^\+OK/);
    },
  ],
  [
    'apop (differs: not offered, no timestamp in the greeting)',
    async (c) => {
      c.send(`APOP ${bed.userOn('A').uid} ${'0'.repeat(32)}\r\n`);
      expect(await c.line()).toMatch(/^-ERR /);
    },
  ],
  [
    'auth cram-md5 (differs: not offered)',
    async (c) => {
      c.send('AUTH CRAM-MD5\r\n');
      expect(await c.line()).toBe('-ERR Unsupported authentication mechanism');
    },
  ],
];

describe('nginx-tests mail_pop3.t, as a routing proxy', () => {
  for (const [nginx, run] of POP3_CASES)
    it(nginx, async () => {
      const c = await greeted(pop);
      try {
        await run(c);
      } finally {
        c.close();
      }
    });
});

describe('nginx-tests mail_max_errors.t', () => {
  it('IMAP: invalid commands end the session (3 in a row, 10 in all), saying why', async () => {
    const c = await greeted(imap);
    c.send('a01 FOO\r\na02 FOO\r\na03 FOO\r\na04 NOOP\r\n');
    expect(await c.rest()).toEqual([
      'a01 BAD Unknown command',
      'a02 BAD Unknown command',
      'a03 BAD Unknown command',
      '* BYE Too many invalid commands',
    ]);
  });

  it('POP3: invalid commands end the session, saying why', async () => {
    const c = await greeted(pop);
    c.send('FOO\r\nFOO\r\nFOO\r\nNOOP\r\n');
    expect(await c.rest()).toEqual([
      '-ERR Unknown command',
      '-ERR Unknown command',
      '-ERR Unknown command',
      '-ERR Too many invalid commands, closing',
    ]);
  });
});
