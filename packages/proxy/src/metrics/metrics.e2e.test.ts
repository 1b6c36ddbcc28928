/**
 * MetricsListen end to end (issue 16, point 3): the built ImapProxy in front of the real test bed,
 * real logins (right, wrong, unknown; plain, STARTTLS, implicit TLS), then the Prometheus text
 * checked by `promtool check metrics` and read for the numbers those logins must have made;
 * /healthz as a balancer sees it; NumThreads workers counted as one.
 */

import { connect as tlsConnect } from 'node:tls';
import { connect as netConnect } from 'node:net';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Testbed, childrenOf, freePort, startTestbed, waitUntil } from '@mmp/testbed';
import { type ProxyProcess, startProxyProcess, testbedArgs } from '../test-support/proxyProcess.js';
import { RawClient } from '../test-support/rawClient.js';
import { onWorker } from '../test-support/steer.js';
import { sample } from '../test-support/promText.js';
import { MAX_COMMANDS_BEFORE_LOGIN } from '../limits.js';

let bed: Testbed;
const running: ProxyProcess[] = [];

beforeAll(async () => {
  bed = await startTestbed({ bulkUsers: 4 });
}, 180_000);

afterAll(async () => {
  for (const p of running) await p.stop();
  await bed?.stop();
});

async function start(env: Record<string, string>): Promise<ProxyProcess> {
  const proxy = await startProxyProcess(testbedArgs(bed, bed.backsidePorts.imap), env);
  running.push(proxy);
  return proxy;
}

/** Log in on a fresh connection; the client and the tagged answer. */
async function login(port: number, uid: string, password: string): Promise<RawClient> {
  const c = await RawClient.open(port);
  await c.line();
  c.send(`a LOGIN ${uid} ${password}\r\n`);
  const answer = (await c.until('a')).at(-1) ?? '';
  expect(answer).toMatch(/^a (OK|NO)/);
  return c;
}

async function get(url: string): Promise<{ status: number; body: string; type: string }> {
  const r = await fetch(url);
  return { status: r.status, body: await r.text(), type: r.headers.get('content-type') ?? '' };
}

async function promtool(text: string): Promise<{ exitCode: number | undefined; output: string }> {
  const r = await execa('promtool', ['check', 'metrics'], {
    input: text,
    reject: false,
    all: true,
  });
  return { exitCode: r.exitCode, output: r.all ?? '' };
}

/** An implicit-TLS handshake that completes (then the IMAP greeting is read and we leave). */
function goodHandshake(port: number, ca: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ port, host: '127.0.0.1', ca, servername: 'localhost' }, () => {
      s.once('data', () => {
        s.end();
        resolve();
      });
    });
    s.on('error', reject);
  });
}

/** Plain text on the TLS port: the handshake fails. */
function badHandshake(port: number): Promise<void> {
  return new Promise((resolve) => {
    const s = netConnect({ port, host: '127.0.0.1' }, () => s.write('a LOGIN x y\r\n'));
    s.on('error', () => resolve());
    s.on('close', () => resolve());
  });
}

describe('MetricsListen', () => {
  it('counts real logins, sessions, stores, the directory, TLS, limits and bytes; promtool accepts it; /healthz follows the directory and draining', async () => {
    const tls = bed.tls;
    if (tls === undefined) throw new Error('the test bed has no TLS');
    const metricsPort = await freePort('127.0.0.1');
    const tlsPort = await freePort('127.0.0.1');
    const proxy = await start({
      // A bare port: loopback only.
      MetricsListen: String(metricsPort),
      SSLEnable: 'yes',
      SSLListenPort: `127.0.0.1:${tlsPort}`,
      SSLCertFile: tls.certFile,
      SSLKeyFile: tls.keyFile,
    });
    const base = `http://127.0.0.1:${metricsPort}`;
    // Loopback by default: not on the machine's other addresses.
    await expect(fetch(`http://127.0.10.1:${metricsPort}/metrics`)).rejects.toThrow();

    const alice = bed.userOn('A');
    const bob = bed.userOn('B');
    const storeA = `${bed.store('A').host}:${bed.backsidePorts.imap}`;
    const storeB = `${bed.store('B').host}:${bed.backsidePorts.imap}`;
    // Logged in and kept open (piped), twice on A (the second from the lookup cache), once on B.
    const open = [
      await login(proxy.port, alice.uid, alice.password),
      await login(proxy.port, alice.uid, alice.password),
      await login(proxy.port, bob.uid, bob.password),
    ];
    // Refused by the store, and an unknown user.
    (await login(proxy.port, bob.uid, 'wrong')).send('z LOGOUT\r\n');
    (await login(proxy.port, 'nobody-here', 'x')).send('z LOGOUT\r\n');
    // A session closed by MAX_BAD_COMMANDS.
    const bad = await RawClient.open(proxy.port);
    await bad.line();
    bad.send('1 FOO\r\n2 FOO\r\n3 FOO\r\n');
    await bad.closed;
    // A session closed by MAX_COMMANDS_BEFORE_LOGIN.
    const chatty = await RawClient.open(proxy.port);
    await chatty.line();
    const noops = Array.from({ length: MAX_COMMANDS_BEFORE_LOGIN + 1 }, (_, i) => `n${i} NOOP\r\n`);
    chatty.send(noops.join(''));
    await chatty.closed;
    // TLS: one good, one failed handshake.
    await goodHandshake(tlsPort, tls.caPem);
    await badHandshake(tlsPort);

    let text = '';
    await waitUntil('every session but the piped ones ended', async () => {
      text = (await get(`${base}/metrics`)).body;
      return sample(text, 'mmp_sessions', { phase: 'pre-login' }) === 0;
    });
    const r = await get(`${base}/metrics`);
    text = r.body;
    expect(r.status).toBe(200);
    expect(r.type).toContain('text/plain');
    const checked = await promtool(text);
    expect(checked.output).toBe('');
    expect(checked.exitCode).toBe(0);

    const imap = { protocol: 'imap' };
    expect(
      sample(text, 'mmp_logins_total', { ...imap, outcome: 'logged-in', principal: 'password' }),
    ).toBe(3);
    expect(sample(text, 'mmp_logins_total', { outcome: 'refused', principal: 'password' })).toBe(1);
    expect(
      sample(text, 'mmp_logins_total', { outcome: 'unknown-user', principal: 'password' }),
    ).toBe(1);
    expect(sample(text, 'mmp_sessions', { phase: 'piped', store: storeA })).toBe(2);
    expect(sample(text, 'mmp_sessions', { phase: 'piped', store: storeB })).toBe(1);
    expect(sample(text, 'mmp_directory_lookups_total', { result: 'found' })).toBe(4);
    expect(sample(text, 'mmp_directory_lookups_total', { result: 'no-such-user' })).toBe(1);
    // alice's second login and bob's refused one came from the cache.
    expect(sample(text, 'mmp_directory_cache_hits_total')).toBe(2);
    expect(sample(text, 'mmp_store_attempts_total', { store: storeA, result: 'accepted' })).toBe(2);
    expect(sample(text, 'mmp_store_attempts_total', { store: storeB, result: 'accepted' })).toBe(1);
    expect(sample(text, 'mmp_store_attempts_total', { store: storeB, result: 'refused' })).toBe(1);
    expect(sample(text, 'mmp_store_down', { store: storeA })).toBe(0);
    expect(sample(text, 'mmp_login_store_seconds_count')).toBe(4);
    expect(sample(text, 'mmp_login_directory_seconds_count')).toBe(5);
    expect(sample(text, 'mmp_tls_handshakes_total', { kind: 'implicit', result: 'ok' })).toBe(1);
    expect(sample(text, 'mmp_tls_handshakes_total', { kind: 'implicit', result: 'failed' })).toBe(
      1,
    );
    expect(sample(text, 'mmp_limit_refusals_total', { limit: 'bad-commands' })).toBe(1);
    expect(sample(text, 'mmp_limit_refusals_total', { limit: 'idle' })).toBe(0);
    expect(sample(text, 'mmp_limit_refusals_total', { limit: 'too-many-commands' })).toBe(1);
    const host = `${bed.ldap.host}:${bed.ldap.port}`;
    expect(sample(text, 'mmp_directory_host_down', { host })).toBe(0);

    // Bytes: counted when a session ends, from the socket's own counters.
    const before = sample(text, 'mmp_client_bytes_total', { direction: 'to_client' }) ?? 0;
    const first = open.shift();
    first?.send('x LOGOUT\r\n');
    await first?.closed;
    await waitUntil('the ended session counted', async () => {
      text = (await get(`${base}/metrics`)).body;
      return sample(text, 'mmp_sessions', { phase: 'piped', store: storeA }) === 1;
    });
    expect(sample(text, 'mmp_client_bytes_total', { direction: 'to_client' })).toBeGreaterThan(
      before,
    );
    expect(sample(text, 'mmp_client_bytes_total', { direction: 'from_client' })).toBeGreaterThan(0);

    // /healthz: the directory reachable, then not, then again.
    expect(await get(`${base}/healthz`)).toMatchObject({ status: 200 });
    await bed.ldap.stop();
    try {
      const down = await get(`${base}/healthz`);
      expect(down.status).toBe(503);
      expect(down.body).toContain('directory unreachable');
      text = (await get(`${base}/metrics`)).body;
      expect(sample(text, 'mmp_directory_host_down', { host })).toBe(1);
    } finally {
      await bed.ldap.start();
    }
    // The directory's background probe finds it again (directory.ts).
    await waitUntil('healthy again', async () => (await get(`${base}/healthz`)).status === 200);

    // Draining: SIGTERM with sessions open; they finish within the grace period, and meanwhile
    // the balancer's check says 503.
    proxy.signal();
    await waitUntil('draining', async () => (await get(`${base}/healthz`)).status === 503);
    const draining = await get(`${base}/healthz`);
    expect(draining.body).toBe('draining\n');
    text = (await get(`${base}/metrics`)).body;
    expect(sample(text, 'mmp_draining')).toBe(1);
    for (const c of open) c.send('x LOGOUT\r\n');
    expect(await proxy.stop()).toBe(0);
  });

  it('with NumThreads 2, /metrics counts the logins of both workers and the status page says 2 processes', async () => {
    const metricsPort = await freePort('127.0.0.1');
    const proxy = await start({ NumThreads: '2', MetricsListen: `127.0.0.1:${metricsPort}` });
    const base = `http://127.0.0.1:${metricsPort}`;
    const users = bed.usersOfKind('bulk');
    const clients: RawClient[] = [];
    // Half of the logins on each worker (the kernel need not take them in turn).
    const workers = childrenOf(proxy.child.pid ?? 0);
    expect(workers).toHaveLength(2);
    for (const [i, u] of users.entries()) {
      const serving = workers[i % 2] ?? 0;
      clients.push(await onWorker(workers, serving, () => login(proxy.port, u.uid, u.password)));
    }
    const pids = new Set<number>();
    await waitUntil('both workers served logins', async () => {
      const logs = await proxy.logs();
      for (const line of logs.split('\n'))
        if (line.includes('"login succeeded"')) pids.add((JSON.parse(line) as { pid: number }).pid);
      return pids.size === 2;
    });
    for (let i = 0; i < 4; i++) {
      const { body } = await get(`${base}/metrics`);
      expect(
        sample(body, 'mmp_logins_total', { outcome: 'logged-in', principal: 'password' }),
      ).toBe(users.length);
      expect((await promtool(body)).exitCode).toBe(0);
    }
    const page = await get(`${base}/`);
    expect(page.body).toContain('<span id="processes">2</span>');
    expect(page.body).toContain(`<td id="sessions-piped">${users.length}</td>`);
    for (const c of clients) c.send('x LOGOUT\r\n');
    expect(await proxy.stop()).toBe(0);
  });
});
