/**
 * The POP3 replay against a scripted store on loopback: USER and PASS in one write to a store
 * whose CAPA lists PIPELINING (the store below answers nothing until it has both lines, so a
 * replay that waited for USER's answer would time out), one at a time otherwise, and CAPA asked
 * once per store.
 */
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLog } from '../log.js';
import type { ReplayResult, StoreLogin } from '../store.js';
import { type ConnectionAddresses, forwardable } from '../clientAddress.js';
import { StoreConversation } from '../store.js';
import { listenScripted } from '../test-support/scriptedServer.js';
import { pop3Replay, xclientCommand } from './replay.js';
import { StoreCapabilities } from './storeCapa.js';

interface ScriptedStore {
  port: number;
  /** Every line received, per connection. */
  sessions: string[][];
  close(): Promise<void>;
}

const open: ScriptedStore[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

/**
 * A store that lists `capa` (null: CAPA unknown), greets with `greeting`, answers XCLIENT with
 * `xclient`, and accepts alice/secret by USER/PASS or AUTH PLAIN (or the master user admin for
 * alice, by AUTH PLAIN).
 */
async function scriptedStore(
  capa: string[] | null,
  opts: { greeting?: string; xclient?: string } = {},
): Promise<ScriptedStore> {
  const sessions: string[][] = [];
  const server = await listenScripted((socket) => {
    const lines: string[] = [];
    sessions.push(lines);
    let buffered = '';
    let user: string | undefined;
    let chunks = 0;
    let userChunk = -1;
    let authPlain = false;
    socket.write(`${opts.greeting ?? '+OK scripted store ready'}\r\n`);
    socket.on('data', (chunk) => {
      chunks++;
      buffered += chunk.toString('latin1');
      for (let nl = buffered.indexOf('\r\n'); nl >= 0; nl = buffered.indexOf('\r\n')) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 2);
        lines.push(line);
        if (authPlain) {
          authPlain = false;
          const message = Buffer.from(line, 'base64').toString();
          const ok = message === '\0alice\0secret' || message === 'alice\0admin\0admin-secret';
          socket.write(ok ? '+OK Logged in.\r\n' : '-ERR [AUTH] Authentication failed.\r\n');
        } else if (line === 'AUTH PLAIN') {
          authPlain = true;
          socket.write('+ \r\n');
        } else if (line.startsWith('XCLIENT ')) {
          socket.write(`${opts.xclient ?? '+OK Updated'}\r\n`);
        } else if (line === 'CAPA') {
          socket.write(
            capa === null
              ? '-ERR no CAPA\r\n'
              : `+OK\r\n${capa.map((c) => `${c}\r\n`).join('')}.\r\n`,
          );
        } else if (line.startsWith('USER ')) {
          user = line.slice(5);
          userChunk = chunks;
          // A pipelining store under test: it answers USER only once PASS is in too.
          if (capa?.includes('PIPELINING') === true) continue;
          socket.write('+OK\r\n');
        } else if (line.startsWith('PASS ')) {
          if (capa?.includes('PIPELINING') === true) socket.write('+OK\r\n');
          else if (userChunk === chunks) {
            // PASS came with USER, before USER's answer: not allowed without PIPELINING.
            socket.write('-ERR pipelined without PIPELINING\r\n');
            continue;
          }
          const ok = user === 'alice' && line.slice(5) === 'secret';
          socket.write(ok ? '+OK Logged in.\r\n' : '-ERR [AUTH] Authentication failed.\r\n');
        }
      }
    });
  });
  const store: ScriptedStore = { ...server, sessions };

  open.push(store);
  return store;
}

async function login(
  store: ScriptedStore,
  stores: StoreCapabilities,
  password = 'secret',
  more: {
    sasl?: boolean;
    forwardAddress?: ConnectionAddresses;
    as?: StoreLogin;
    greeted?: () => void;
  } = {},
): Promise<ReplayResult> {
  const socket = connect(store.port, '127.0.0.1');
  await new Promise((r) => socket.once('connect', r));
  const conv = new StoreConversation(socket);
  const user: StoreLogin = {
    kind: 'user',
    name: Buffer.from('alice'),
    password: Buffer.from(password),
    sasl: more.sasl ?? false,
  };
  const options = {
    greetingTimeoutMs: 2_000,
    replyTimeoutMs: 1_000,
    forwardAddress: more.forwardAddress,
    greeted: more.greeted,
  };
  try {
    return await pop3Replay(stores)(conv, more.as ?? user, options, silentLog);
  } finally {
    socket.destroy();
  }
}

describe('POP3 replay: the store greeted (the attempt limiter frees its slot then)', () => {
  it('is told once, after a +OK greeting and before the store answers the login', async () => {
    const store = await scriptedStore(['USER']);
    const seen: number[] = [];
    const result = await login(store, new StoreCapabilities(), 'wrong', {
      greeted: () => seen.push(store.sessions[0]?.length ?? -1),
    });
    expect(result.kind).toBe('refused');
    expect(seen).toEqual([0]);
  });
  it('is not told when the store greets with -ERR', async () => {
    const store = await scriptedStore(['USER'], { greeting: '-ERR too busy' });
    let greeted = 0;
    const result = await login(store, new StoreCapabilities(), 'secret', {
      greeted: () => greeted++,
    });
    expect(result.kind).toBe('failed');
    expect(greeted).toBe(0);
  });
});

describe('POP3 replay and the store’s PIPELINING', () => {
  it('sends USER and PASS together to a store that lists PIPELINING, asking CAPA only once', async () => {
    const store = await scriptedStore(['TOP', 'USER', 'PIPELINING', 'UIDL']);
    const stores = new StoreCapabilities();
    const first = await login(store, stores);
    expect(first.kind).toBe('accepted');
    const second = await login(store, stores);
    expect(second.kind).toBe('accepted');
    expect(store.sessions).toEqual([
      ['CAPA', 'USER alice', 'PASS secret'],
      ['USER alice', 'PASS secret'],
    ]);
  });

  it('passes a refusal through when pipelined', async () => {
    const store = await scriptedStore(['PIPELINING']);
    const result = await login(store, new StoreCapabilities(), 'wrong');
    expect(result.kind).toBe('refused');
    expect(result.kind === 'refused' && result.answer.toString()).toBe(
      '-ERR [AUTH] Authentication failed.',
    );
  });

  it('waits for USER’s answer when the store does not list PIPELINING or has no CAPA', async () => {
    for (const capa of [['TOP', 'USER'], null]) {
      const store = await scriptedStore(capa);
      const result = await login(store, new StoreCapabilities());
      expect(result.kind).toBe('accepted');
      expect(store.sessions[0]).toEqual(['CAPA', 'USER alice', 'PASS secret']);
    }
  });

  it('asks again once what the store said is older than the TTL', async () => {
    let now = 0;
    const stores = new StoreCapabilities(1_000, () => now);
    stores.set('127.0.0.1:110', { pipelining: true, xclient: false });
    expect(stores.get('127.0.0.1:110')?.pipelining).toBe(true);
    now = 999;
    expect(stores.get('127.0.0.1:110')?.pipelining).toBe(true);
    now = 1_000;
    expect(stores.get('127.0.0.1:110')).toBeUndefined();
  });
});

const client: ConnectionAddresses = {
  clientIp: '2001:db8::7',
  clientPort: 40000,
  serverIp: '198.51.100.1',
  serverPort: 110,
};
const XCLIENT = 'XCLIENT ADDR=2001:db8::7 PORT=40000';
const DOVECOT_TRUSTED = '+OK [XCLIENT] scripted store ready';

describe('POP3 replay with ForwardClientAddress (XCLIENT)', () => {
  const PLAIN_RESPONSE = Buffer.from('\0alice\0secret').toString('base64');

  it('xclientCommand names the client, an IPv4-mapped address as plain IPv4', () => {
    expect(xclientCommand(client)).toBe(XCLIENT);
    const mapped = { ...client, clientIp: '::ffff:192.0.2.7' };
    expect(xclientCommand(forwardable(mapped) ?? mapped)).toBe('XCLIENT ADDR=192.0.2.7 PORT=40000');
  });

  it('sends XCLIENT before USER to a store whose greeting offers it (Dovecot)', async () => {
    const store = await scriptedStore(['USER', 'PIPELINING'], { greeting: DOVECOT_TRUSTED });
    const stores = new StoreCapabilities();
    const result = await login(store, stores, 'secret', { forwardAddress: client });
    expect(result.kind).toBe('accepted');
    expect(store.sessions[0]).toEqual(['CAPA', XCLIENT, 'USER alice', 'PASS secret']);
  });

  it('sends XCLIENT to a store whose CAPA lists it, by AUTH PLAIN too', async () => {
    const store = await scriptedStore(['USER', 'XCLIENT']);
    const stores = new StoreCapabilities();
    const forwardAddress = client;
    expect((await login(store, stores, 'secret', { forwardAddress })).kind).toBe('accepted');
    const plain = await login(store, stores, 'secret', { forwardAddress, sasl: true });
    expect(plain.kind).toBe('accepted');
    expect(store.sessions).toEqual([
      ['CAPA', XCLIENT, 'USER alice', 'PASS secret'],
      [XCLIENT, 'AUTH PLAIN', PLAIN_RESPONSE],
    ]);
  });

  it('AUTH PLAIN asks CAPA when the greeting does not say, and sends no XCLIENT if not listed', async () => {
    const store = await scriptedStore(['USER']);
    const forwardAddress = client;
    const result = await login(store, new StoreCapabilities(), 'secret', {
      forwardAddress,
      sasl: true,
    });
    expect(result.kind).toBe('accepted');
    expect(store.sessions[0]).toEqual(['CAPA', 'AUTH PLAIN', PLAIN_RESPONSE]);
  });

  it('goes on with the login when the store answers -ERR to XCLIENT', async () => {
    const store = await scriptedStore(['USER'], {
      greeting: DOVECOT_TRUSTED,
      xclient: '-ERR You are not from trusted IP',
    });
    const result = await login(store, new StoreCapabilities(), 'secret', {
      forwardAddress: client,
    });
    expect(result.kind).toBe('accepted');
    expect(store.sessions[0]).toEqual(['CAPA', XCLIENT, 'USER alice', 'PASS secret']);
  });

  it('off: no XCLIENT, and AUTH PLAIN asks no CAPA, as before', async () => {
    const store = await scriptedStore(['USER', 'XCLIENT'], { greeting: DOVECOT_TRUSTED });
    const stores = new StoreCapabilities();
    expect((await login(store, stores)).kind).toBe('accepted');
    expect((await login(store, stores, 'secret', { sasl: true })).kind).toBe('accepted');
    expect(store.sessions).toEqual([
      ['CAPA', 'USER alice', 'PASS secret'],
      ['AUTH PLAIN', PLAIN_RESPONSE],
    ]);
  });
});

describe('POP3 replay by the master user (StoreAdmin, certificate login)', () => {
  const MASTER: StoreLogin = {
    kind: 'master',
    user: Buffer.from('alice'),
    admin: Buffer.from('admin'),
    password: Buffer.from('admin-secret'),
  };
  const MASTER_PLAIN = Buffer.from('alice\0admin\0admin-secret').toString('base64');

  it('authenticates PLAIN with the user as authorization identity, after XCLIENT when forwarding', async () => {
    const store = await scriptedStore(['USER'], { greeting: DOVECOT_TRUSTED });
    const stores = new StoreCapabilities();
    expect((await login(store, stores, '', { as: MASTER })).kind).toBe('accepted');
    const forwarded = await login(store, stores, '', { as: MASTER, forwardAddress: client });
    expect(forwarded.kind).toBe('accepted');
    expect(store.sessions).toEqual([
      ['AUTH PLAIN', MASTER_PLAIN],
      [XCLIENT, 'AUTH PLAIN', MASTER_PLAIN],
    ]);
  });

  it('refuses credentials holding a NUL, which PLAIN cannot carry', async () => {
    const store = await scriptedStore(['USER']);
    const nul = { ...MASTER, user: Buffer.from('al\0ice') };
    const result = await login(store, new StoreCapabilities(), '', { as: nul });
    expect(result.kind).toBe('refused');
    expect(store.sessions).toEqual([[]]);
  });
});
