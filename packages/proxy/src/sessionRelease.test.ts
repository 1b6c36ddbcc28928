/**
 * Issue 8: once the pipe runs, nothing of the login phase stays reachable — the session object
 * (its framer, capabilities, SASL state, log bindings) is garbage, only the pipe is left.
 * Watched with a FinalizationRegistry after forced collections.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLog } from './log.js';
import { ProxyServer, type SessionHandle } from './server.js';
import { startImapSession } from './imap/dialect.js';
import { type FakeStore, startFakeStore } from './test-support/fakeStore.js';
import { FakeDirectory, testRuntime } from './test-support/harness.js';
import { RawClient } from './test-support/rawClient.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

let store: FakeStore;
let server: ProxyServer;
let port: number;
/** Names of the sessions started, in order; a name is removed when its session is collected. */
const live = new Set<string>();
const registry = new FinalizationRegistry<string>((name) => live.delete(name));
let started = 0;

beforeAll(async () => {
  store = await startFakeStore({ name: 'A', accounts: { alice: 'secret' } });
  const directory = new FakeDirectory([
    { uid: 'alice', mailHosts: [{ host: '127.0.0.1', port: store.port }] },
  ]);
  server = new ProxyServer({
    protocol: 'imap',
    runtime: testRuntime(directory),
    log: silentLog,
    graceMs: 1_000,
    startSession: (socket, ctx): SessionHandle => {
      const session = startImapSession(socket, ctx);
      const name = `session ${++started}`;
      live.add(name);
      registry.register(session, name);
      return session;
    },
  });
  ({ port } = await server.listen());
});

afterAll(async () => {
  await server.stop();
  await store.close();
});

async function collect(): Promise<void> {
  for (let i = 0; i < 5; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('an idle piped session', () => {
  it('keeps no session object once piped, while one still logging in keeps its own', async () => {
    const piped = await RawClient.open(port);
    await piped.line();
    piped.send('a LOGIN alice secret\r\n');
    expect(await piped.until('a')).toEqual(['a OK [CAPABILITY IMAP4rev1 X-STORE-A] Logged in']);

    const waiting = await RawClient.open(port);
    await waiting.line();

    await collect();
    expect([...live]).toEqual(['session 2']);
    expect(server.sessionCount).toBe(2);

    // The pipe still carries the session.
    piped.send('b NOOP\r\n');
    expect(await piped.line()).toBe('b OK NOOP on store A');
    piped.send('z LOGOUT\r\n');
    expect(await piped.rest()).toEqual(['* BYE store A logging out', 'z OK LOGOUT completed']);
    waiting.close();
  });
});
