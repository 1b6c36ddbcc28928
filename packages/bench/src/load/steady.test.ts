// The legitimate clients against a fake IMAP server that answers by user name: every cycle and
// every long session must be recorded with the outcome the server chose.
import { afterEach, describe, expect, it } from 'vitest';
import { type FakeImap, startFakeImap } from '../test-support/fakeImap.js';
import { runSteady, type SteadyJob } from './steady.js';

let fake: FakeImap | undefined;
afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

/** good: OK; temp: NO [UNAVAILABLE]; bad: NO [AUTHENTICATIONFAILED]; drop: OK then closed at EXAMINE. */
async function fakeImap(): Promise<number> {
  fake = await startFakeImap(() => {
    let user = '';
    return ({ tag, verb, arg }, socket) => {
      if (verb === 'LOGIN') {
        user = arg;
        if (user === 'temp') socket.write(`${tag} NO [UNAVAILABLE] try again later\r\n`);
        else if (user === 'bad') socket.write(`${tag} NO [AUTHENTICATIONFAILED] no\r\n`);
        else socket.write(`${tag} OK logged in\r\n`);
      } else if (verb === 'EXAMINE' && user === 'drop') socket.destroy();
      else if (verb === 'FETCH') socket.write(`* 1 FETCH (BODY[] {2}\r\nhi)\r\n${tag} OK\r\n`);
      else if (verb === 'NOOP' && user === 'shortlived') socket.destroy();
      else if (verb === 'LOGOUT') socket.end(`* BYE\r\n${tag} OK\r\n`);
      else socket.write(`${tag} OK\r\n`);
    };
  });
  return fake.port;
}

describe('runSteady', () => {
  it('records each cycle’s outcome and each long session’s fate', async () => {
    const port = await fakeImap();
    const account = (user: string, host: string) => ({ user, pass: 'p', host });
    const job: SteadyJob = {
      kind: 'steady',
      endpoint: { protocol: 'imap', host: '127.0.0.1', port },
      accounts: ['good', 'temp', 'bad', 'drop'].map((u) => account(u, `store-of-${u}`)),
      concurrency: 2,
      localAddresses: ['127.0.8.1'],
      delayMs: 0,
      durationMs: 1000,
      timeoutMs: 5000,
      fetchMessage: 1,
      longAccounts: [account('good', 'A'), account('shortlived', 'B')],
      noopIntervalMs: 100,
    };
    const r = await runSteady(job);
    const byStore = new Map<string, Set<string>>();
    for (const [start, end, outcome, store] of r.attempts) {
      expect(end).toBeGreaterThanOrEqual(start);
      byStore.set(store, (byStore.get(store) ?? new Set()).add(outcome));
    }
    expect(byStore.get('store-of-good')).toEqual(new Set(['ok']));
    expect(byStore.get('store-of-temp')).toEqual(new Set(['temporary']));
    expect(byStore.get('store-of-bad')).toEqual(new Set(['auth']));
    expect(byStore.get('store-of-drop')).toEqual(new Set(['dropped']));
    const [kept, lost] = r.longSessions;
    expect(kept).toMatchObject({ store: 'A', loggedIn: true });
    expect(kept?.lostAt).toBeUndefined();
    expect(kept?.local).toMatch(/^127\.0\.8\.1:\d+$/);
    expect(lost).toMatchObject({ store: 'B', loggedIn: true });
    expect(lost?.lostAt).toBeGreaterThan(0);
  });
});
