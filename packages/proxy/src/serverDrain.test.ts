/**
 * A connection the listener accepted is this server's to serve, even when a drain or a stop begins
 * while its admission (an answer from the primary, `clientLimits.ts`) is still on its way: the
 * SIGUSR2 hand-over drains the old process under load, and such connections used to be closed
 * before their greeting.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ok } from '@mmp/config';
import type { WorkerChannel } from './ipc.js';
import { silentLog } from './log.js';
import { ProxyServer } from './server.js';
import { startImapSession } from './imap/dialect.js';
import { FakeDirectory, testRuntime } from './test-support/harness.js';
import { RawClient } from './test-support/rawClient.js';

/** A primary whose admissions wait until `answer()`; then every connection is admitted. */
function slowPrimary(): { fleet: WorkerChannel; asked: () => number; answer: () => void } {
  let asked = 0;
  let answer = (): void => undefined;
  const answered = new Promise<void>((resolve) => (answer = resolve));
  const fleet: WorkerChannel = {
    request: async <_Req, Res>() => {
      asked++;
      await answered;
      return ok({ ok: true, id: asked } as Res);
    },
    notify: () => undefined,
    answer: () => undefined,
  };
  return { fleet, asked: () => asked, answer };
}

let server: ProxyServer | undefined;
afterEach(async () => {
  await server?.stop();
  server = undefined;
});

async function started(): Promise<{ port: number; primary: ReturnType<typeof slowPrimary> }> {
  const primary = slowPrimary();
  server = new ProxyServer({
    protocol: 'imap',
    runtime: testRuntime(new FakeDirectory([]), {}, 'imap', { fleet: primary.fleet }),
    log: silentLog,
    graceMs: 1_000,
    startSession: startImapSession,
  });
  const { port } = await server.listen();
  return { port, primary };
}

async function asked(primary: ReturnType<typeof slowPrimary>): Promise<void> {
  while (primary.asked() === 0) await new Promise((r) => setTimeout(r, 5));
}

describe('a connection admitted while the server begins to end', () => {
  it('a drain serves it: greeting, then commands', async () => {
    const { port, primary } = await started();
    const c = await RawClient.open(port);
    await asked(primary);
    const drained = server?.drain(5_000);
    primary.answer();
    expect(await c.line()).toMatch(/^\* OK /);
    c.send('a CAPABILITY\r\n');
    expect((await c.until('a')).at(-1)).toMatch(/^a OK/);
    c.send('z LOGOUT\r\n');
    await c.rest();
    await drained;
  });

  it('a stop greets it and says goodbye, as it does to the sessions it had', async () => {
    const { port, primary } = await started();
    const c = await RawClient.open(port);
    await asked(primary);
    const stopped = server?.stop();
    primary.answer();
    expect(await c.line()).toMatch(/^\* OK /);
    expect(await c.rest()).toEqual([expect.stringMatching(/^\* BYE /)]);
    await stopped;
  });
});
