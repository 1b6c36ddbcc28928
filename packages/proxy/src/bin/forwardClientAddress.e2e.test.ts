/**
 * ForwardClientAddress end to end: the built ImapProxy and PopProxy in front of a real Dovecot
 * that trusts the proxy's address (the test bed's login_trusted_networks is 127.0.0.0/8). The
 * client connects from its own loopback address; Dovecot's login line (`rip=`) must name it when
 * the option is on, and the proxy's address when it is off.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Testbed, startTestbed } from '@mmp/testbed';
import {
  IMAP_PROXY,
  POP_PROXY,
  type ProxyProcess,
  startProxyProcess,
  testbedArgs,
} from '../test-support/proxyProcess.js';
import { RawClient } from '../test-support/rawClient.js';
import { storeLoginLine as loggedByStore } from '../test-support/storeLog.js';

/** Client source addresses no other part of the test bed uses. */
const CLIENT_ON = '127.0.1.77';
const CLIENT_OFF = '127.0.1.78';

let bed: Testbed;
const proxies: Record<'imapOn' | 'imapOff' | 'popOn' | 'popOff', ProxyProcess | undefined> = {
  imapOn: undefined,
  imapOff: undefined,
  popOn: undefined,
  popOff: undefined,
};

function proxy(name: keyof typeof proxies): ProxyProcess {
  const p = proxies[name];
  if (p === undefined) throw new Error(`${name} did not start`);
  return p;
}

beforeAll(async () => {
  bed = await startTestbed({ tls: false, stores: 1, bulkUsers: 0 });
  const imap = testbedArgs(bed, bed.backsidePorts.imap, { logLevel: 10 });
  const pop = testbedArgs(bed, bed.backsidePorts.pop3, { logLevel: 10 });
  const on = { ForwardClientAddress: 'yes' };
  [proxies.imapOn, proxies.imapOff, proxies.popOn, proxies.popOff] = await Promise.all([
    startProxyProcess(imap, on, IMAP_PROXY),
    startProxyProcess(imap, {}, IMAP_PROXY),
    startProxyProcess(pop, on, POP_PROXY),
    startProxyProcess(pop, {}, POP_PROXY),
  ]);
}, 180_000);

afterAll(async () => {
  await Promise.all(Object.values(proxies).map((p) => p?.stop()));
  await bed?.stop();
});

/** The store's Login line that `login` caused. */
function storeLoginLine(proto: 'imap' | 'pop3', login: () => Promise<void>): Promise<string> {
  return loggedByStore(bed.store('A').logPath, proto, login);
}

async function imapLogin(p: ProxyProcess, from: string): Promise<void> {
  const user = bed.userOn('A');
  const c = await RawClient.open(p.port, '127.0.0.1', from);
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

async function popLogin(p: ProxyProcess, from: string, by: 'user' | 'auth-plain'): Promise<void> {
  const user = bed.userOn('A');
  const c = await RawClient.open(p.port, '127.0.0.1', from);
  try {
    expect(await c.line()).toMatch(/^\+OK /);
    if (by === 'user') {
      c.send(`USER ${user.uid}\r\n`);
      expect(await c.line()).toMatch(/^\+OK/);
      c.send(`PASS ${user.password}\r\n`);
    } else {
      const response = Buffer.from(`\0${user.uid}\0${user.password}`).toString('base64');
      c.send(`AUTH PLAIN ${response}\r\n`);
    }
    expect(await c.line()).toMatch(/^\+OK/);
    c.send('QUIT\r\n');
    expect(await c.line()).toMatch(/^\+OK/);
  } finally {
    c.close();
  }
}

describe('IMAP: ID with x-originating-ip', () => {
  it('on: the store logs the client address, and the proxy address it connected to', async () => {
    const line = await storeLoginLine('imap', () => imapLogin(proxy('imapOn'), CLIENT_ON));
    expect(line).toContain(`user=<${bed.userOn('A').uid}>`);
    expect(line).toContain(`rip=${CLIENT_ON},`);
    // x-connected-ip: the proxy's listening address, not the store's own
    expect(line).toContain('lip=127.0.0.1,');
  });

  it('off: the store logs the proxy address, as before', async () => {
    const line = await storeLoginLine('imap', () => imapLogin(proxy('imapOff'), CLIENT_OFF));
    expect(line).toContain('rip=127.0.0.1,');
    expect(line).toContain(`lip=${bed.store('A').host},`);
  });
});

describe('POP3: XCLIENT', () => {
  it('on: the store logs the client address, by USER/PASS and by AUTH PLAIN', async () => {
    for (const by of ['user', 'auth-plain'] as const) {
      const line = await storeLoginLine('pop3', () => popLogin(proxy('popOn'), CLIENT_ON, by));
      expect(line).toContain(`user=<${bed.userOn('A').uid}>`);
      expect(line).toContain(`rip=${CLIENT_ON},`);
    }
  });

  it('off: the store logs the proxy address, as before', async () => {
    for (const by of ['user', 'auth-plain'] as const) {
      const line = await storeLoginLine('pop3', () => popLogin(proxy('popOff'), CLIENT_OFF, by));
      expect(line).toContain('rip=127.0.0.1,');
    }
  });
});
