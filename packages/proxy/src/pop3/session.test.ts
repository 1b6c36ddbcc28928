/**
 * An in-process PopProxy (the session driver with the POP3 dialect) against a fake directory and
 * a scripted POP3 store: the login and pipelining, the limits that close a session (saying why,
 * as IMAP does), the spoof inbox.
 */

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../test-support/tempDirs.js';
import type { ProxyServer } from '../server.js';
import { MAX_COMMANDS_BEFORE_LOGIN } from '../limits.js';
import { FakeDirectory, startTestProxy, testRuntime } from '../test-support/harness.js';
import { RawClient } from '../test-support/rawClient.js';
import { type ScriptedServer, listenScripted } from '../test-support/scriptedServer.js';

const AUTH_FAILED = '-ERR [AUTH] Authentication failed.';

/** A POP3 store that knows alice/secret, without PIPELINING; after login it answers STAT, QUIT. */
function popStore(socket: Socket): void {
  let user: string | undefined;
  let loggedIn = false;
  let buffered = '';
  socket.write('+OK scripted store ready\r\n');
  socket.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('latin1');
    for (let nl = buffered.indexOf('\r\n'); nl >= 0; nl = buffered.indexOf('\r\n')) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 2);
      if (loggedIn && line === 'STAT') socket.write('+OK 0 0\r\n');
      else if (loggedIn && line === 'QUIT') socket.end('+OK bye\r\n');
      else if (line === 'CAPA') socket.write('+OK\r\nUSER\r\n.\r\n');
      else if (line.startsWith('USER ')) {
        user = line.slice(5);
        socket.write('+OK\r\n');
      } else if (line.startsWith('PASS ')) {
        loggedIn = user === 'alice' && line.slice(5) === 'secret';
        socket.write(loggedIn ? '+OK Logged in.\r\n' : '-ERR [AUTH] Authentication failed.\r\n');
      } else socket.write('-ERR unexpected\r\n');
    }
  });
  socket.on('error', () => undefined);
}

let store: ScriptedServer;
let directory: FakeDirectory;
let proxy: { server: ProxyServer; port: number };
let spoofFile: string;

beforeAll(async () => {
  store = await listenScripted(popStore);
  directory = new FakeDirectory([
    { uid: 'alice', mailHosts: [{ host: '127.0.0.1', port: store.port }] },
    { uid: 'stranded', mailHosts: [{ host: '127.0.0.1', port: 1 }] },
  ]);
  proxy = await startTestProxy(testRuntime(directory, {}, 'pop3'));
  spoofFile = join(await tempDir('mmp-pop3-session-'), 'spoof.txt');
  await writeFile(
    spoofFile,
    'From: postmaster@mmp.test\r\nDate: Mon, 01 Jan 2024 00:00:00 +0000\r\n\r\nback soon\r\n.\r\n',
  );
});

afterAll(async () => {
  await proxy.server.stop();
  await store.close();
});

async function connect(port = proxy.port): Promise<RawClient> {
  const c = await RawClient.open(port);
  expect(await c.line()).toBe('+OK Test multiplexor ready');
  return c;
}

describe('POP3 before login', () => {
  it('logs in through the store, then what the client pipelined reaches it', async () => {
    const c = await connect();
    c.send('USER alice\r\nPASS secret\r\nSTAT\r\nQUIT\r\n');
    expect(await c.rest()).toEqual([
      '+OK password required',
      '+OK Logged in.',
      '+OK 0 0',
      '+OK bye',
    ]);
  });

  it('closes after the third failed login, saying why, as IMAP does', async () => {
    const c = await connect();
    c.send('USER alice\r\nPASS wrong\r\nUSER nobody\r\nPASS x\r\nUSER alice\r\nPASS again\r\n');
    expect(await c.rest()).toEqual([
      '+OK password required',
      AUTH_FAILED,
      '+OK password required',
      AUTH_FAILED,
      '+OK password required',
      AUTH_FAILED,
      '-ERR Too many failed logins, closing',
    ]);
  });

  it('answers each invalid command, and closes after the third in a row saying why', async () => {
    const c = await connect();
    c.send('FROB\r\nNOOP\r\nFROB\r\nSTAT\r\nPASS x\r\n');
    expect(await c.rest()).toEqual([
      '-ERR Unknown command',
      '+OK',
      '-ERR Unknown command',
      '-ERR STAT is not valid before login',
      '-ERR USER first',
      '-ERR Too many invalid commands, closing',
    ]);
  });

  it('answers MAX_COMMANDS_BEFORE_LOGIN pipelined commands, then says goodbye instead of the next', async () => {
    const c = await connect();
    c.send('CAPA\r\n'.repeat(4 * MAX_COMMANDS_BEFORE_LOGIN));
    const said = await c.rest();
    // each CAPA answer ends with a lone '.'
    expect(said.filter((l) => l === '.')).toHaveLength(MAX_COMMANDS_BEFORE_LOGIN);
    expect(said.at(-1)).toBe('-ERR Too many commands, closing');
  });

  it('PASS only right after USER: another command in between forgets the name', async () => {
    const c = await connect();
    c.send('USER alice\r\nCAPA\r\nPASS secret\r\n');
    expect(await c.line()).toBe('+OK password required');
    expect(await c.line()).toBe('+OK Capability list follows');
    while ((await c.line()) !== '.');
    // CAPA changed nothing: the name is kept.
    expect(await c.line()).toBe('+OK Logged in.');
    c.close();
    const d = await connect();
    d.send('USER alice\r\nAUTH CRAM-MD5\r\nPASS secret\r\n');
    expect(await d.line()).toBe('+OK password required');
    expect(await d.line()).toBe('-ERR Unsupported authentication mechanism');
    expect(await d.line()).toBe('-ERR USER first');
    d.close();
  });

  it('says goodbye to a client idle for Timeout', async () => {
    const p = await startTestProxy(testRuntime(directory, { Timeout: 1 }, 'pop3'));
    const c = await connect(p.port);
    expect(await c.rest()).toEqual(['-ERR Disconnected for inactivity']);
    await p.server.stop();
  });

  it('serves the spoof inbox when no store is reachable (SpoofMessageFile)', async () => {
    const p = await startTestProxy(testRuntime(directory, { SpoofMessageFile: spoofFile }, 'pop3'));
    const c = await connect(p.port);
    c.send('USER stranded\r\nPASS x\r\nSTAT\r\nUSER alice\r\nQUIT\r\n');
    expect(await c.rest()).toEqual([
      '+OK password required',
      '+OK Logged in (your mailbox is temporarily unavailable)',
      expect.stringMatching(/^\+OK 1 \d+$/),
      '-ERR USER is not valid after login',
      '+OK Logging out',
    ]);
    await p.server.stop();
  });
});
