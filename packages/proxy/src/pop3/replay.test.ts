/**
 * The POP3 replay against a scripted store on loopback: USER and PASS in one write to a store
 * whose CAPA lists PIPELINING (the store below answers nothing until it has both lines, so a
 * replay that waited for USER's answer would time out), one at a time otherwise, and CAPA asked
 * once per store.
 */
import { type AddressInfo, type Socket, createServer, connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLog } from '../log.js';
import type { ReplayResult } from '../login.js';
import { StoreConversation } from '../store.js';
import { StorePipelining, pop3Replay } from './replay.js';

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

/** A store that lists `capa` (null: CAPA unknown) and accepts alice/secret. */
async function scriptedStore(capa: string[] | null): Promise<ScriptedStore> {
  const sockets = new Set<Socket>();
  const sessions: string[][] = [];
  const server = createServer((socket) => {
    sockets.add(socket);
    const lines: string[] = [];
    sessions.push(lines);
    let buffered = '';
    let user: string | undefined;
    let chunks = 0;
    let userChunk = -1;
    socket.write('+OK scripted store ready\r\n');
    socket.on('data', (chunk) => {
      chunks++;
      buffered += chunk.toString('latin1');
      for (let nl = buffered.indexOf('\r\n'); nl >= 0; nl = buffered.indexOf('\r\n')) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 2);
        lines.push(line);
        if (line === 'CAPA') {
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
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const store: ScriptedStore = {
    port: (server.address() as AddressInfo).port,
    sessions,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  open.push(store);
  return store;
}

async function login(
  store: ScriptedStore,
  stores: StorePipelining,
  password = 'secret',
): Promise<ReplayResult> {
  const socket = connect(store.port, '127.0.0.1');
  await new Promise((r) => socket.once('connect', r));
  const conv = new StoreConversation(socket);
  const replay = pop3Replay({
    method: 'user-pass',
    stores,
    greetingTimeoutMs: 2_000,
    replyTimeoutMs: 1_000,
  });
  try {
    return await replay(conv, Buffer.from('alice'), Buffer.from(password), silentLog);
  } finally {
    socket.destroy();
  }
}

describe('POP3 replay and the store’s PIPELINING', () => {
  it('sends USER and PASS together to a store that lists PIPELINING, asking CAPA only once', async () => {
    const store = await scriptedStore(['TOP', 'USER', 'PIPELINING', 'UIDL']);
    const stores = new StorePipelining();
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
    const result = await login(store, new StorePipelining(), 'wrong');
    expect(result.kind).toBe('refused');
    expect(result.kind === 'refused' && result.answer.toString()).toBe(
      '-ERR [AUTH] Authentication failed.',
    );
  });

  it('waits for USER’s answer when the store does not list PIPELINING or has no CAPA', async () => {
    for (const capa of [['TOP', 'USER'], null]) {
      const store = await scriptedStore(capa);
      const result = await login(store, new StorePipelining());
      expect(result.kind).toBe('accepted');
      expect(store.sessions[0]).toEqual(['CAPA', 'USER alice', 'PASS secret']);
    }
  });

  it('asks again once what the store said is older than the TTL', async () => {
    let now = 0;
    const stores = new StorePipelining(1_000, () => now);
    stores.set('127.0.0.1:110', true);
    expect(stores.get('127.0.0.1:110')).toBe(true);
    now = 999;
    expect(stores.get('127.0.0.1:110')).toBe(true);
    now = 1_000;
    expect(stores.get('127.0.0.1:110')).toBeUndefined();
  });
});
