/**
 * The log as an operator meets it (issue 12, point 5): the built ImapProxy with its defaults
 * (text records) and ListenPort a bare port, so the listener is dual-stack and the socket reports
 * IPv4 clients as `::ffff:a.b.c.d`. The records, the PreAuth line and UidSearch's `%C` must all
 * see the client in dot-quad, and the file must be the proxy user's alone.
 */

import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Testbed, startTestbed } from '@mmp/testbed';
import {
  IMAP_PROXY,
  type ProxyProcess,
  startProxyProcess,
  testbedArgs,
} from '../test-support/proxyProcess.js';
import { RawClient } from '../test-support/rawClient.js';

/** The client's source address (this helper's loopback range): what every record must name. */
const CLIENT = '127.0.9.10';

let bed: Testbed;
let proxy: ProxyProcess | undefined;

beforeAll(async () => {
  bed = await startTestbed({ tls: false, stores: 1, bulkUsers: 0 });
  proxy = await startProxyProcess(
    [...testbedArgs(bed, bed.backsidePorts.imap, { logLevel: 5 }), '-pre'],
    // %C is the client's address: a filter that names it but matches every user.
    { UidSearch: '(&(uid=%s)(!(description=%C)))' },
    IMAP_PROXY,
    { bareListenPort: true, jsonLogs: false },
  );
}, 180_000);

afterAll(async () => {
  await proxy?.stop();
  await bed?.stop();
});

function running(): ProxyProcess {
  if (proxy === undefined) throw new Error('the proxy did not start');
  return proxy;
}

/** The log once it holds a line matching `re` (records are written asynchronously). */
async function logWith(re: RegExp): Promise<string> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const text = await running().logs();
    if (re.test(text) || Date.now() > deadline) return text;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('the log, with the defaults and a dual-stack ListenPort', () => {
  it('names an IPv4 client in dot-quad: records, the PreAuth line, UidSearch %C', async () => {
    const p = running();
    expect(p.output()).toMatch(new RegExp(`listening on (\\*|::|0\\.0\\.0\\.0):${p.port}`));
    const user = bed.userOn('A');
    const c = await RawClient.open(p.port, '127.0.0.1', CLIENT);
    expect(await c.line()).toMatch(/^\* OK /);
    c.send(`a LOGIN ${user.uid} ${user.password}\r\n`);
    expect(await c.line()).toMatch(/^a OK /);
    c.send('b LOGOUT\r\n');
    await c.rest();

    const preAuth = new RegExp(
      `^\\d{8} \\d{6} \\(sid 0x[0-9a-f]+\\) ${user.uid} pre-authenticated - 127\\.0\\.9\\.10$`,
      'm',
    );
    const log = await logWith(/client disconnected/);
    // The guide's line, exactly, as its own record.
    expect(log).toMatch(preAuth);
    // Text records, one per line, in the guide's shape.
    const lines = log.split('\n').filter((l) => l !== '');
    for (const line of lines) expect(line).toMatch(/^\d{8} \d{6} \(sid (0x[0-9a-f]+|-)\) \S/);
    expect(log).toMatch(
      new RegExp(
        `\\) client connected phase=connect client=127\\.0\\.9\\.10:\\d+ server=127\\.0\\.0\\.1:${p.port} `,
      ),
    );
    // UidSearch's %C was expanded with the dot-quad address.
    expect(log).toMatch(
      /searching the directory .*filter="?\(&\(uid=\w+\)\(!\(description=127\.0\.9\.10\)\)\)/,
    );
    expect(log).not.toContain('::ffff:');
  });

  it('writes the file mode 0600, readable by the proxy user only', async () => {
    const dir = running().logDir;
    const files = (await readdir(dir)).filter((f) => /^MMP_\d{8}\.log$/.test(f));
    expect(files).toHaveLength(1);
    const info = await stat(join(dir, files[0] ?? ''));
    expect(info.mode & 0o777).toBe(0o600);
    expect(await readFile(join(dir, files[0] ?? ''), 'utf8')).not.toContain('"msg"');
  });
});
