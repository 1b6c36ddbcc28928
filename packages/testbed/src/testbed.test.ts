import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import {
  BIG_MESSAGE_SIZE,
  canConnect,
  checks,
  findProcesses,
  imapLoginCommand,
  LineClient,
  readGreeting,
  reapOrphans,
  startTestbed,
  waitUntil,
  type Testbed,
} from './index.js';

// Started while the file is collected, so that each check can be its own test.
const testbed: Testbed = await startTestbed();
afterAll(async () => {
  await testbed.stop();
});

describe('the test bed, checked with curl, ldapsearch and raw sockets', () => {
  for (const check of checks(testbed)) {
    it(check.name, () => check.run());
  }
});

describe('the population', () => {
  it('has ordinary users on each store, failover, dead, virtual, special and bulk users', () => {
    expect(testbed.userOn('A').uid).toBe('alice');
    expect(testbed.userOn('B').uid).toBe('bob');
    expect(testbed.user('failover').mailHosts).toEqual(['127.0.0.9', '127.0.0.3']);
    expect(testbed.user('failover').store).toBe('B');
    expect(testbed.user('nohost').mailHosts).toEqual(['127.0.0.9', '127.0.0.10']);
    expect(testbed.user('nohost').store).toBeNull();
    expect(testbed.user('alice+virt.example').dn).toBe(
      'uid=alice\\+virt.example,ou=people,o=mmp.test',
    );
    const special = testbed.user('quoted').password;
    for (const c of ['"', '\\', ' ', 'ü', '€']) expect(special).toContain(c);
    expect(testbed.usersOfKind('bulk')).toHaveLength(200);
    expect(testbed.usersOfKind('bulk')[0]?.uid).toBe('user001');
    expect(testbed.backsidePorts.imap).toBe(testbed.store('A').imapPort);
    expect(testbed.store('B').imapPort).toBe(testbed.store('A').imapPort);
    expect(testbed.store('B').pop3Port).toBe(testbed.store('A').pop3Port);
  });

  it('has a deterministic 1 MiB message', () => {
    const big = testbed.bigMessage;
    expect(big.size).toBe(BIG_MESSAGE_SIZE);
    expect(createHash('sha256').update(big.bytes).digest('hex')).toBe(big.sha256);
    expect(big.bytes.includes('\n.')).toBe(false);
    expect(testbed.describe().bigMessage.sha256).toBe(big.sha256);
  });
});

describe('stopping and starting servers', () => {
  it('a store stops (connections refused) and starts again on the same ports', async () => {
    const store = testbed.store('B');
    const other = testbed.store('A');
    await store.stop();
    expect(store.running).toBe(false);
    expect(await canConnect(store.host, store.imapPort)).toBe(false);
    expect(await canConnect(store.host, store.pop3Port)).toBe(false);
    expect(await readGreeting(other.host, other.imapPort)).toContain(other.greeting);
    await store.start();
    expect(store.running).toBe(true);
    expect(await readGreeting(store.host, store.imapPort)).toContain(store.greeting);
    expect(await readGreeting(store.host, store.pop3Port)).toContain(store.greeting);
  });

  it('the directory stops and starts again on the same port with the same entries', async () => {
    const search = () =>
      execa(
        'ldapsearch',
        ['-x', '-LLL', '-H', testbed.ldap.url, '-b', testbed.ldap.baseDn, '(uid=bob)', 'mailHost'],
        {
          reject: false,
          stdin: 'ignore',
        },
      );
    await testbed.ldap.stop();
    expect(testbed.ldap.running).toBe(false);
    expect((await search()).exitCode).not.toBe(0);
    await testbed.ldap.start();
    const found = await search();
    expect(found.exitCode).toBe(0);
    expect(found.stdout).toContain('mailHost: 127.0.0.3');
  });
});

describe('capacity', () => {
  it('holds 250 concurrent logged-in IMAP sessions on one store', async () => {
    const store = testbed.store('A');
    const users = testbed.usersOfKind('bulk').filter((u) => u.store === 'A');
    const sessions = await Promise.all(
      Array.from({ length: 250 }, async (_, i) => {
        const user = users[i % users.length];
        if (user === undefined) throw new Error('no bulk user');
        const client = await LineClient.connect(store.host, store.imapPort);
        await client.readLine();
        const answer = await client.imap('a1', imapLoginCommand(user.uid, user.password));
        return { client, status: answer.at(-1) ?? '' };
      }),
    );
    try {
      expect(sessions.filter((s) => !s.status.startsWith('a1 OK'))).toEqual([]);
      const selected = await Promise.all(sessions.map((s) => s.client.imap('a2', 'EXAMINE INBOX')));
      expect(selected.every((lines) => lines.includes('* 3 EXISTS'))).toBe(true);
    } finally {
      await Promise.all(sessions.map((s) => s.client.imap('a3', 'LOGOUT').catch(() => [])));
      for (const s of sessions) s.client.close();
    }
  });
});

describe('a second test bed', () => {
  it('runs beside the first and leaves nothing behind when stopped', async () => {
    const second = await startTestbed({
      bulkUsers: 4,
      tls: false,
      stores: 3,
      extraDovecotConfig: ({ name }) => (name === 'C' ? 'imap_capability = +XMMPTEST' : ''),
    });
    expect(second.stores.map((s) => s.host)).toEqual(['127.0.0.2', '127.0.0.3', '127.0.0.4']);
    expect(second.backsidePorts.imap).not.toBe(testbed.backsidePorts.imap);
    expect(second.store('C').imapsPort).toBe(0);
    expect(await readGreeting('127.0.0.4', second.backsidePorts.pop3)).toContain('store C');
    expect(await readGreeting('127.0.0.4', second.backsidePorts.imap)).toContain('XMMPTEST');
    expect(await readGreeting('127.0.0.3', second.backsidePorts.imap)).not.toContain('XMMPTEST');
    const running = findProcesses(second.dir);
    expect(running.length).toBeGreaterThanOrEqual(4); // slapd and three Dovecot masters
    const instance = second.stores[0]?.instanceName ?? 'none';
    expect(findProcesses(instance).length).toBeGreaterThan(1); // the master and its children
    await second.stop();
    expect(findProcesses(second.dir)).toEqual([]);
    for (const store of second.stores) expect(findProcesses(store.instanceName)).toEqual([]);
    expect(existsSync(second.dir)).toBe(false);
    expect(await canConnect(second.ldap.host, second.ldap.port)).toBe(false);
    // the first one is untouched
    expect(await readGreeting('127.0.0.2', testbed.backsidePorts.imap)).toContain('store A');
  });
});

describe('orphans', () => {
  it('a later start kills the servers of a test bed whose process was SIGKILLed', async () => {
    const index = new URL('../dist/index.js', import.meta.url).href;
    const child = execa(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { startTestbed } from ${JSON.stringify(index)};
         const t = await startTestbed({ bulkUsers: 2, tls: false, stores: 1 });
         console.log(t.dir);
         setInterval(() => {}, 1000);`,
      ],
      { reject: false, stdin: 'ignore' },
    );
    const dir = await new Promise<string>((resolve, reject) => {
      child.stdout?.once('data', (chunk: Buffer) => resolve(chunk.toString('utf8').trim()));
      void child.then((result) => reject(new Error(`child ended: ${result.stderr}`)));
    });
    const name = basename(dir);
    expect(findProcesses(name).length).toBeGreaterThan(1);
    child.kill('SIGKILL');
    await child;
    expect(findProcesses(name).length).toBeGreaterThan(1); // its servers outlive it
    const reaped = await reapOrphans(dirname(dir));
    expect(reaped).toContain(dir);
    await waitUntil('orphans gone', async () => findProcesses(name).length === 0, {
      timeoutMs: 5000,
    });
    expect(existsSync(dir)).toBe(false);
  });
});

describe('hosted domains', () => {
  it('give each domain its own directory, with overlapping user ids on different stores', async () => {
    const bed = await startTestbed({
      bulkUsers: 0,
      tls: false,
      domains: [
        { domain: 'one.example', users: { alice: 'B' }, anonymousRead: false },
        { domain: 'two.example', users: { alice: 'A' }, mailHostAttr: 'mmpAltMailHost' },
      ],
    });
    try {
      const [one, two] = bed.domains;
      if (one === undefined || two === undefined) throw new Error('two domains expected');
      expect(one.ldap.baseDn).toBe('o=one.example');
      expect(one.ldap.port).not.toBe(two.ldap.port);
      const search = async (d: typeof one, bind: boolean): Promise<{ stdout: string }> =>
        execa(
          'ldapsearch',
          [
            '-x',
            '-LLL',
            '-H',
            d.ldap.url,
            ...(bind ? ['-D', d.ldap.bindDn, '-w', d.ldap.bindPassword] : []),
            '-b',
            d.ldap.baseDn,
            '(mail=alice@*)',
            'uid',
            'mailHost',
            'mmpAltMailHost',
          ],
          { reject: false },
        );
      // one.example reads only for its bound service account.
      expect((await search(one, false)).stdout).not.toContain('uid:');
      const a1 = await search(one, true);
      expect(a1.stdout).toContain('uid: alice+one.example');
      expect(a1.stdout).toContain('mailHost: 127.0.0.3');
      const a2 = await search(two, false);
      expect(a2.stdout).toContain('uid: alice+two.example');
      expect(a2.stdout).toContain(`mailHost: ${bed.deadHosts[0]}`);
      expect(a2.stdout).toContain('mmpAltMailHost: 127.0.0.2');
      // Neither directory holds the other's users, nor the main population.
      expect(a2.stdout).not.toContain('one.example');
      // The stores know both as distinct accounts with distinct passwords.
      expect(bed.user('alice+one.example').password).not.toBe(
        bed.user('alice+two.example').password,
      );
      for (const [uid, host] of [
        ['alice+one.example', '127.0.0.3'],
        ['alice+two.example', '127.0.0.2'],
      ] as const) {
        const r = await execa(
          'curl',
          [
            '-sS',
            `imap://${host}:${bed.backsidePorts.imap}/`,
            '-u',
            `${uid}:${bed.user(uid).password}`,
          ],
          { reject: false },
        );
        expect(r.exitCode, r.stderr).toBe(0);
        expect(r.stdout).toContain('INBOX');
      }
      await bed.stop();
      expect(await canConnect(one.ldap.host, one.ldap.port)).toBe(false);
    } finally {
      await bed.stop();
    }
  });
});
