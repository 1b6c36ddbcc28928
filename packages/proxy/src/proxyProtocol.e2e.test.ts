/**
 * PROXY protocol listeners end to end (issue 16, point 1): the built ImapProxy behind the test
 * bed's real HAProxy (`send-proxy-v2`, and `send-proxy` for v1), clients connecting to HAProxy
 * from their own loopback addresses. The real client address must reach the proxy's records,
 * UidSearch `%C` (seen in slapd's `stats` log) and the store (Dovecot's `rip=`, through
 * ForwardClientAddress); on SSLListenPort the header comes before the TLS handshake; anything
 * else on such a listener, and any connection from outside ProxyProtocolTrustedNetworks, is
 * refused and logged. A vdmap entry's own value holds on its address.
 */

import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from './test-support/tempDirs.js';
import {
  type Haproxy,
  type Testbed,
  freePort,
  startHaproxy,
  startTestbed,
  waitUntil,
} from '@mmp/testbed';
import { type ProxyProcess, startProxyProcess, testbedArgs } from './test-support/proxyProcess.js';
import { RawClient } from './test-support/rawClient.js';
import { storeLoginLine } from './test-support/storeLog.js';
import { TlsLineClient } from './test-support/tlsClient.js';

/** Client addresses in this helper's loopback range, each used by one test. */
const VIA_V2 = '127.0.9.7';
const VIA_V1 = '127.0.9.8';
const VIA_TLS = '127.0.9.9';
const UNTRUSTED = '127.0.9.10';
const DIRECT = '127.0.9.11';
/** A vdmap entry's address, whose own ProxyProtocol leaves ListenPort out: clients come directly. */
const VDMAP_ADDRESS = '127.0.9.20';

let bed: Testbed;
let proxy: ProxyProcess;
let tlsPort: number;
let haproxy: Haproxy;
let haproxyV1: Haproxy;

type LogRecord = Record<string, unknown>;

async function records(p: ProxyProcess): Promise<LogRecord[]> {
  return (await p.logs())
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogRecord);
}

/** Waits for a record with these fields and returns it. */
async function recordWith(p: ProxyProcess, fields: LogRecord): Promise<LogRecord> {
  let found: LogRecord | undefined;
  await waitUntil(`a record with ${JSON.stringify(fields)}`, async () => {
    found = (await records(p)).find((r) =>
      Object.entries(fields).every(([k, v]) =>
        v instanceof RegExp ? v.test(String(r[k])) : r[k] === v,
      ),
    );
    return found !== undefined;
  });
  return found ?? {};
}

beforeAll(async () => {
  bed = await startTestbed({ tls: true, stores: 1, bulkUsers: 0, ldapLogLevel: 'stats' });
  const tls = bed.tls;
  if (tls === undefined) throw new Error('the test bed has no TLS');
  const dir = await tempDir('mmp-pp-');
  const vdmap = join(dir, 'vdmap.conf');
  await writeFile(vdmap, `vdmap direct ${VDMAP_ADDRESS}\ndirect:ProxyProtocol SSLListenPort\n`);
  tlsPort = await freePort('127.0.0.1');
  proxy = await startProxyProcess(testbedArgs(bed, bed.backsidePorts.imap, { logLevel: 5 }), {
    ProxyProtocol: 'ListenPort,SSLListenPort',
    ProxyProtocolTrustedNetworks: '127.0.0.1/32',
    ForwardClientAddress: 'yes',
    // %C reaches the directory: the search names the client's address (slapd logs the filter).
    UidSearch: '(&(uid=%s)(|(objectClass=*)(description=client-%C)))',
    SSLEnable: 'yes',
    SSLListenPort: `127.0.0.1:${tlsPort}`,
    SSLCertFile: tls.certFile,
    SSLKeyFile: tls.keyFile,
    VirtualDomainFile: vdmap,
  });
  const servers = (port: number): { name: string; host: string; port: number }[] => [
    { name: 'mmp1', host: '127.0.0.1', port },
  ];
  haproxy = await startHaproxy({
    listeners: [
      { name: 'imap', servers: servers(proxy.port) },
      { name: 'imaps', servers: servers(tlsPort) },
    ],
    servers: servers(proxy.port),
    proxyProtocol: 'v2',
    checkIntervalMs: 500,
  });
  haproxyV1 = await startHaproxy({
    listeners: [{ name: 'imap' }],
    servers: servers(proxy.port),
    proxyProtocol: 'v1',
    checkIntervalMs: 500,
  });
}, 180_000);

afterAll(async () => {
  await Promise.all([haproxy?.stop(), haproxyV1?.stop()]);
  await proxy?.stop();
  await bed?.stop();
});

/** Log in as a store A user through `port` from `from`, and log out. */
async function imapLogin(port: number, from: string, host = '127.0.0.1'): Promise<void> {
  const user = bed.userOn('A');
  const c = await RawClient.open(port, host, from);
  try {
    expect(await c.line()).toMatch(/^\* OK /);
    c.send(`a LOGIN "${user.uid}" "${user.password}"\r\n`);
    expect((await c.until('a')).at(-1)).toMatch(/^a OK /);
    c.send('b LOGOUT\r\n');
    expect((await c.until('b')).at(-1)).toMatch(/^b OK /);
  } finally {
    c.close();
  }
}

describe('a ListenPort that expects a PROXY header, behind HAProxy', () => {
  it("HAProxy's send-proxy-v2 health checks (LOCAL) keep the server UP", async () => {
    await haproxy.waitForServer('mmp1', 'UP');
    const states = await haproxy.serverStates();
    expect(states.filter((s) => s.server === 'mmp1').map((s) => s.state)).toEqual(['UP', 'UP']);
  });

  it('v2: the client address reaches the records, %C in UidSearch and the store (rip=)', async () => {
    const line = await storeLoginLine(bed.store('A').logPath, 'imap', () =>
      imapLogin(haproxy.listener('imap').port, VIA_V2),
    );
    expect(line).toContain(`rip=${VIA_V2},`);
    const connected = await recordWith(proxy, {
      msg: 'client connected',
      client: new RegExp(`^${VIA_V2.replaceAll('.', '\\.')}:\\d+$`),
    });
    // Where it really came from, for whoever reads the record: HAProxy's end.
    expect(connected['via']).toMatch(/^127\.0\.0\.1:\d+$/);
    const slapd = await readFile(bed.ldap.logPath, 'utf8');
    expect(slapd).toContain(`(description=client-${VIA_V2})`);
  });

  it('v1: the same, from the text header', async () => {
    const line = await storeLoginLine(bed.store('A').logPath, 'imap', () =>
      imapLogin(haproxyV1.listener('imap').port, VIA_V1),
    );
    expect(line).toContain(`rip=${VIA_V1},`);
  });

  it('a client that connects directly (no header) is refused, without a greeting, and logged', async () => {
    const c = await RawClient.open(proxy.port, '127.0.0.1');
    const from = `127.0.0.1:${c.socket.localPort}`;
    c.send('a CAPABILITY\r\n');
    expect(await c.line()).toBeUndefined();
    await c.closed;
    await recordWith(proxy, {
      msg: 'connection refused on a PROXY protocol listener',
      peer: from,
      error: 'no PROXY protocol header',
    });
  });

  it('a valid header from outside ProxyProtocolTrustedNetworks is refused and logged', async () => {
    const c = await RawClient.open(proxy.port, '127.0.0.1', UNTRUSTED);
    c.send(`PROXY TCP4 192.0.2.1 127.0.0.1 1234 ${proxy.port}\r\n`);
    expect(await c.line()).toBeUndefined();
    await recordWith(proxy, {
      msg: 'connection refused on a PROXY protocol listener',
      peer: new RegExp(`^${UNTRUSTED.replaceAll('.', '\\.')}:`),
      error: 'not from ProxyProtocolTrustedNetworks',
    });
    const logs = await proxy.logs();
    expect(logs).not.toContain('192.0.2.1');
  });
});

describe('SSLListenPort behind HAProxy', () => {
  it('the header comes before the TLS handshake; the session sees the client address', async () => {
    const user = bed.userOn('A');
    const ca = await readFile(bed.tls?.caFile ?? '', 'utf8');
    const line = await storeLoginLine(bed.store('A').logPath, 'imap', async () => {
      const c = await TlsLineClient.implicit(haproxy.listener('imaps').port, {
        ca,
        servername: 'localhost',
        localAddress: VIA_TLS,
      });
      try {
        expect(await c.line()).toMatch(/^\* OK /);
        c.send(`a LOGIN "${user.uid}" "${user.password}"\r\n`);
        expect((await c.until('a')).at(-1)).toMatch(/^a OK /);
      } finally {
        c.close();
      }
    });
    expect(line).toContain(`rip=${VIA_TLS},`);
    await recordWith(proxy, {
      msg: 'client connected',
      client: new RegExp(`^${VIA_TLS.replaceAll('.', '\\.')}:`),
      server: `127.0.0.1:${tlsPort}`,
    });
  });

  it('a TLS client without a header is refused before its handshake', async () => {
    const ca = await readFile(bed.tls?.caFile ?? '', 'utf8');
    await expect(
      TlsLineClient.implicit(tlsPort, { ca, servername: 'localhost' }),
    ).rejects.toThrow();
    await recordWith(proxy, {
      msg: 'connection refused on a PROXY protocol listener',
      error: 'no PROXY protocol header',
    });
  });
});

describe('a vdmap address with its own ProxyProtocol', () => {
  it('serves direct clients on its address (the same port) while the global address refuses them', async () => {
    // The vdmap entry is served on the same port of its own address.
    const line = await storeLoginLine(bed.store('A').logPath, 'imap', () =>
      imapLogin(proxy.port, DIRECT, VDMAP_ADDRESS),
    );
    expect(line).toContain(`rip=${DIRECT},`);
    const global = await RawClient.open(proxy.port, '127.0.0.1', DIRECT);
    expect(await global.line()).toBeUndefined();
  });
});
