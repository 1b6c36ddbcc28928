/**
 * The status page (issue 16, point 4) as an operator sees it: Debian's headless Chromium, driven
 * by playwright-core (never a browser it downloads), loads MetricsListen's `/` of a built
 * ImapProxy and a built PopProxy in front of the real test bed while IMAP sessions (imapflow) and
 * POP3 sessions are open on known stores, and reads the numbers in the rendered page: sessions
 * per protocol and per store, store and directory-host states, logins, a recent error. A
 * screenshot of each page is kept in packages/proxy/test-artifacts/ (gitignored; README
 * "Watching it").
 */

import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { ImapFlow } from 'imapflow';
import { type Browser, type Page, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEAD_HOSTS, type Testbed, freePort, startTestbed, waitUntil } from '@mmp/testbed';
import {
  IMAP_PROXY,
  POP_PROXY,
  type ProxyProcess,
  startProxyProcess,
  testbedArgs,
} from '../test-support/proxyProcess.js';
import { RawClient } from '../test-support/rawClient.js';
import { STATUS_REFRESH_SECONDS } from './status.js';

/** Debian's package (scripts/install-deps); playwright-core brings no browser of its own. */
const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));

let bed: Testbed;
let browser: Browser;
const running: ProxyProcess[] = [];
const imapClients: ImapFlow[] = [];
const popClients: RawClient[] = [];

beforeAll(async () => {
  bed = await startTestbed();
  browser = await chromium.launch({ executablePath: CHROMIUM });
  await mkdir(ARTIFACTS, { recursive: true });
}, 180_000);

afterAll(async () => {
  for (const c of imapClients) await c.logout().catch(() => undefined);
  for (const c of popClients) c.close();
  for (const p of running) await p.stop();
  await browser?.close();
  await bed?.stop();
});

/**
 * A proxy of `program` with MetricsListen, whose LDAPHost list starts with a dead host (nothing
 * listens on it: the directory marks it down, the live one after it answers).
 */
async function start(
  program: string,
  backsidePort: number,
): Promise<{ base: string; port: number }> {
  const args = testbedArgs(bed, backsidePort);
  const h = args.indexOf('-h');
  args[h + 1] = `${DEAD_HOSTS[0]}:${bed.ldap.port} ${bed.ldap.host}:${bed.ldap.port}`;
  const metricsPort = await freePort('127.0.0.1');
  const proxy = await startProxyProcess(
    args,
    { MetricsListen: `127.0.0.1:${metricsPort}` },
    program,
  );
  running.push(proxy);
  return { base: `http://127.0.0.1:${metricsPort}`, port: proxy.port };
}

async function imapSession(port: number, user: { uid: string; password: string }): Promise<void> {
  const client = new ImapFlow({
    host: '127.0.0.1',
    port,
    secure: false,
    auth: { user: user.uid, pass: user.password },
    logger: false,
    disableAutoIdle: true,
  });
  await client.connect();
  imapClients.push(client);
}

/** A POP3 login; the session is kept open when it succeeds. The last line read. */
async function popSession(
  port: number,
  user: { uid: string; password: string },
): Promise<string | undefined> {
  const c = await RawClient.open(port);
  await c.line();
  c.send(`USER ${user.uid}\r\n`);
  await c.line();
  c.send(`PASS ${user.password}\r\n`);
  const answer = await c.line();
  if (answer?.startsWith('+OK') === true) popClients.push(c);
  else c.close();
  return answer;
}

/** The page's text in `selector` (trimmed). */
async function cell(page: Page, selector: string): Promise<string> {
  return ((await page.locator(selector).textContent()) ?? '').trim();
}

/** The row of `store` in the Stores table: its sessions and state. */
async function storeRow(page: Page, store: string): Promise<{ sessions: string; state: string }> {
  const row = `#stores tr[data-store="${store}"]`;
  return {
    sessions: await cell(page, `${row} [data-cell="sessions"]`),
    state: await cell(page, `${row} [data-cell="state"]`),
  };
}

describe('the status page in headless Chromium', () => {
  it('shows the open IMAP and POP3 sessions per protocol and store, store and directory states and a recent error; screenshots kept', async () => {
    const imapPort = bed.backsidePorts.imap;
    const popPort = bed.backsidePorts.pop3;
    const imapProxy = await start(IMAP_PROXY, imapPort);
    const popProxy = await start(POP_PROXY, popPort);
    const [alice, carol] = bed.usersOfKind('plain').filter((u) => u.store === 'A');
    const [bob, dave] = bed.usersOfKind('plain').filter((u) => u.store === 'B');
    if (!alice || !carol || !bob || !dave) throw new Error('the test bed lacks plain users');
    const nohost = bed.usersOfKind('dead')[0];
    if (!nohost) throw new Error('the test bed lacks a user on dead hosts');

    // IMAP: two sessions on A, one on B, open while the page is read.
    await imapSession(imapProxy.port, alice);
    await imapSession(imapProxy.port, carol);
    await imapSession(imapProxy.port, bob);
    // POP3: one on A, two on B (a POP3 maildrop is locked: two different users).
    expect(await popSession(popProxy.port, alice)).toMatch(/^\+OK/);
    expect(await popSession(popProxy.port, bob)).toMatch(/^\+OK/);
    expect(await popSession(popProxy.port, dave)).toMatch(/^\+OK/);
    // A user whose every mailHost is dead: a refused login and a recent error on the POP3 page.
    expect(await popSession(popProxy.port, nohost)).toMatch(/^-ERR/);

    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });

    // IMAP.
    await page.goto(`${imapProxy.base}/`);
    expect(await page.title()).toBe('ImapProxy status');
    expect(await cell(page, '#health')).toBe('healthy');
    expect(await cell(page, '#sessions tr[data-protocol="imap"] td:first-child')).toBe('imap');
    expect(await cell(page, '#sessions-piped')).toBe('3');
    expect(await cell(page, '#sessions-total')).toBe('3');
    const imapA = `${bed.store('A').host}:${imapPort}`;
    const imapB = `${bed.store('B').host}:${imapPort}`;
    expect(await storeRow(page, imapA)).toEqual({ sessions: '2', state: 'up' });
    expect(await storeRow(page, imapB)).toEqual({ sessions: '1', state: 'up' });
    const live = `${bed.ldap.host}:${bed.ldap.port}`;
    const dead = `${DEAD_HOSTS[0]}:${bed.ldap.port}`;
    expect(await cell(page, `#directory tr[data-host="${live}"] [data-cell="state"]`)).toBe('up');
    expect(await cell(page, `#directory tr[data-host="${dead}"] [data-cell="state"]`)).toBe('down');
    expect(await cell(page, '#logins tr[data-outcome="logged-in"] [data-cell="count"]')).toBe('3');
    expect(await cell(page, '#errors')).toContain('none');
    await page.screenshot({ path: `${ARTIFACTS}status-imap.png`, fullPage: true });

    // POP3.
    await page.goto(`${popProxy.base}/`);
    expect(await page.title()).toBe('PopProxy status');
    expect(await cell(page, '#sessions tr[data-protocol="pop3"] td:first-child')).toBe('pop3');
    expect(await cell(page, '#sessions-piped')).toBe('3');
    const popA = `${bed.store('A').host}:${popPort}`;
    const popB = `${bed.store('B').host}:${popPort}`;
    expect(await storeRow(page, popA)).toEqual({ sessions: '1', state: 'up' });
    expect(await storeRow(page, popB)).toEqual({ sessions: '2', state: 'up' });
    // The dead stores were tried, refused the connection, and hold no session.
    for (const host of DEAD_HOSTS)
      expect((await storeRow(page, `${host}:${popPort}`)).sessions).toBe('0');
    expect(await cell(page, '#logins tr[data-outcome="logged-in"] [data-cell="count"]')).toBe('3');
    expect(await cell(page, '#logins tr[data-outcome="stores-down"] [data-cell="count"]')).toBe(
      '1',
    );
    const errors = await cell(page, '#errors');
    expect(errors).toContain('no store reachable');
    expect(errors).toContain(`store ${DEAD_HOSTS[0]}:${popPort} unreachable`);
    // Never the user's name on the page.
    expect(await page.content()).not.toContain(nohost.uid);
    await page.screenshot({ path: `${ARTIFACTS}status-pop3.png`, fullPage: true });

    // The page refreshes itself (no reload from here): a session that ends leaves it.
    const last = popClients.pop();
    last?.send('QUIT\r\n');
    await last?.closed;
    await waitUntil(
      'the page, refreshing itself, shows two POP3 sessions',
      async () => (await cell(page, '#sessions-piped')) === '2',
      { timeoutMs: 4 * STATUS_REFRESH_SECONDS * 1000 },
    );
    await page.close();
  });
});
