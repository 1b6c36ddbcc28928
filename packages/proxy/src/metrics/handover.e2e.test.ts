/**
 * MetricsListen across a SIGUSR2 hand-over (issue 16, points 3 and 5), on the built ImapProxy,
 * serving in its own process (NumThreads 0) and in workers (NumThreads 2: the workers share the
 * listener through node:cluster, as a root primary's run-as workers do): the new process takes
 * MetricsListen too, so a balancer's check and Prometheus keep an answer from the process that
 * accepts the logins, while the old one drains its piped session. Before, the new process could
 * not bind the address the old one held and the hand-over failed. The metrics port is on
 * 127.0.21.0/24 (this task's loopback range).
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Testbed, freePort, startTestbed, waitUntil } from '@mmp/testbed';
import { type ProxyProcess, startProxyProcess, testbedArgs } from '../test-support/proxyProcess.js';
import { sample } from '../test-support/promText.js';
import { RawClient } from '../test-support/rawClient.js';

const METRICS_HOST = '127.0.21.1';

let bed: Testbed;
/** The proxies started, and the processes that replaced them (SIGUSR2). */
const proxies: ProxyProcess[] = [];
const successors: number[] = [];

beforeAll(async () => {
  bed = await startTestbed({ tls: false, bulkUsers: 0 });
}, 180_000);

afterAll(async () => {
  for (const pid of successors) if (alive(pid)) process.kill(pid, 'SIGKILL');
  await Promise.all(proxies.map((p) => p.stop()));
  await bed?.stop();
});

async function get(url: string): Promise<{ status: number; body: string }> {
  const r = await fetch(url);
  return { status: r.status, body: await r.text() };
}

/** Logged in, piped, kept open. */
async function piped(port: number, uid: string, password: string): Promise<RawClient> {
  const c = await RawClient.open(port);
  await c.line();
  c.send(`a LOGIN ${uid} ${password}\r\n`);
  expect((await c.until('a')).at(-1)).toMatch(/^a OK/);
  return c;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const loggedIn = (text: string): number | undefined =>
  sample(text, 'mmp_logins_total', { outcome: 'logged-in', principal: 'password' });

describe.each(['0', '2'])('MetricsListen and SIGUSR2, NumThreads %s', (threads) => {
  it('the new process answers /metrics and /healthz on the same address while the old one drains', async () => {
    const metricsPort = await freePort(METRICS_HOST);
    const base = `http://${METRICS_HOST}:${metricsPort}`;
    const proxy: ProxyProcess = await startProxyProcess(testbedArgs(bed, bed.backsidePorts.imap), {
      MetricsListen: `${METRICS_HOST}:${metricsPort}`,
      NumThreads: threads,
    });
    proxies.push(proxy);
    const alice = bed.userOn('A');
    const bob = bed.userOn('B');
    // Two logins counted by the old process; one session stays piped there, so that it drains.
    const kept = await piped(proxy.port, alice.uid, alice.password);
    (await piped(proxy.port, bob.uid, bob.password)).send('z LOGOUT\r\n');
    expect((await get(`${base}/healthz`)).status).toBe(200);
    expect(loggedIn((await get(`${base}/metrics`)).body)).toBe(2);

    const old = proxy.child.pid ?? 0;
    process.kill(old, 'SIGUSR2');
    await waitUntil('the hand-over', () =>
      Promise.resolve(/handed over to pid \d+/.test(proxy.output())),
    );
    const successor = Number(/handed over to pid (\d+)/.exec(proxy.output())?.[1]);
    successors.push(successor);
    expect(proxy.output()).not.toMatch(/new process ended/);

    // The address is the new process's: it has counted no login yet, and it is healthy.
    await waitUntil('MetricsListen served by the new process', async () => {
      const r = await get(`${base}/metrics`).catch(() => undefined);
      return r?.status === 200 && loggedIn(r.body) === 0;
    });
    expect(alive(old)).toBe(true);
    for (let i = 0; i < 5; i++) {
      const health = await get(`${base}/healthz`);
      expect(health.status).toBe(200);
      expect(health.body).toMatch(/^ok/);
      const text = (await get(`${base}/metrics`)).body;
      expect(loggedIn(text)).toBe(0);
      expect(sample(text, 'mmp_draining')).toBe(0);
    }
    // A login now goes to the new process, and its metrics count it.
    (await piped(proxy.port, bob.uid, bob.password)).send('z LOGOUT\r\n');
    expect(loggedIn((await get(`${base}/metrics`)).body)).toBe(1);

    // The old process still serves its piped session, then ends; the address stays answered.
    kept.send('b NOOP\r\n');
    expect((await kept.until('b')).at(-1)).toMatch(/^b OK/);
    kept.send('z LOGOUT\r\n');
    await waitUntil('the old process gone', () => Promise.resolve(proxy.child.exitCode !== null));
    expect(proxy.child.exitCode).toBe(0);
    expect((await get(`${base}/healthz`)).status).toBe(200);
    process.kill(successor, 'SIGTERM');
    await waitUntil('the new process gone', () => Promise.resolve(!alive(successor)));
  });
});
