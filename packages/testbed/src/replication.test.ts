// The replicated directory: a provider and a syncrepl consumer, checked with ldapsearch,
// ldapadd and ldapwhoami.
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { canConnect, findProcesses, startTestbed, type LdapServer, type Testbed } from './index.js';

const testbed: Testbed = await startTestbed({
  replicatedDirectory: true,
  bulkUsers: 20,
  tls: false,
});
afterAll(async () => {
  await testbed.stop();
});

const pair = (): NonNullable<Testbed['replication']> => {
  if (testbed.replication === undefined) throw new Error('not replicated');
  return testbed.replication;
};

async function search(server: LdapServer, filter: string, ...attrs: string[]): Promise<string> {
  const found = await execa(
    'ldapsearch',
    ['-x', '-LLL', '-o', 'ldif-wrap=no', '-H', server.url, '-b', server.baseDn, filter, ...attrs],
    { reject: false, stdin: 'ignore', timeout: 10_000 },
  );
  if (found.exitCode !== 0) throw new Error(`ldapsearch on ${server.url}: ${found.stderr}`);
  return found.stdout;
}

async function modify(server: LdapServer, ldif: string, tool = 'ldapmodify') {
  return execa(tool, ['-x', '-H', server.url, '-D', server.rootDn, '-w', server.rootPassword], {
    input: ldif,
    reject: false,
    timeout: 10_000,
  });
}

const uids = (ldif: string): string[] =>
  ldif
    .split('\n')
    .filter((l) => l.startsWith('uid: '))
    .map((l) => l.slice(5))
    .sort();

let added = 0;
const newUser = (host: string): { uid: string; ldif: string } => {
  added++;
  const uid = `replicated${added}`;
  return {
    uid,
    ldif: [
      `dn: uid=${uid},${testbed.ldap.peopleDn}`,
      'objectClass: inetOrgPerson',
      'objectClass: mmpMailUser',
      `uid: ${uid}`,
      `cn: ${uid}`,
      `sn: ${uid}`,
      `userPassword: secret-${uid}`,
      `mailHost: ${host}`,
      '',
    ].join('\n'),
  };
};

describe('a provider and a syncrepl consumer', () => {
  it('serve the same population; testbed.ldap is the provider, ldapHost lists both', async () => {
    const { provider, consumer } = pair();
    expect(testbed.ldap).toBe(provider);
    expect(consumer.port).not.toBe(provider.port);
    expect(testbed.ldapHost).toBe(`127.0.0.1:${provider.port} 127.0.0.1:${consumer.port}`);
    expect(pair().ldapUrl).toBe(
      `ldap://127.0.0.1:${provider.port}/o=mmp.test ldap://127.0.0.1:${consumer.port}/o=mmp.test`,
    );
    expect(testbed.describe().ldapReplica?.port).toBe(consumer.port);
    const [p, c] = await Promise.all([provider, consumer].map((s) => search(s, '(uid=*)', 'uid')));
    expect(uids(c ?? '')).toEqual(uids(p ?? ''));
    expect(uids(c ?? '')).toContain('alice');
    expect(uids(c ?? '')).toContain('user020');
    expect(await search(consumer, '(uid=failover)', 'mailHost')).toContain(
      'mailHost: 127.0.0.9\nmailHost: 127.0.0.3',
    );
  });

  it('an entry added on the provider appears on the consumer, contextCSN equal again', async () => {
    const { provider, consumer } = pair();
    const before = await consumer.contextCsn();
    const { uid, ldif } = newUser('127.0.0.2');
    const result = await modify(provider, ldif, 'ldapadd');
    expect(result.exitCode, result.stderr).toBe(0);
    await pair().waitForSync();
    expect(await consumer.contextCsn()).not.toEqual(before);
    expect(await consumer.contextCsn()).toEqual(await provider.contextCsn());
    expect(await search(consumer, `(uid=${uid})`, 'mailHost')).toContain('mailHost: 127.0.0.2');
  });

  it('a change of mailHost on the provider reaches the consumer', async () => {
    const { provider, consumer } = pair();
    const result = await modify(
      provider,
      `dn: ${testbed.user('carol').dn}\nchangetype: modify\nreplace: mailHost\nmailHost: 127.0.0.3\n`,
    );
    expect(result.exitCode, result.stderr).toBe(0);
    await pair().waitForSync();
    expect(await search(consumer, '(uid=carol)', 'mailHost')).toContain('mailHost: 127.0.0.3');
  });

  it('the consumer is read-only: a write gets a referral to the provider', async () => {
    const { provider, consumer } = pair();
    const result = await modify(consumer, newUser('127.0.0.2').ldif, 'ldapadd');
    expect(result.exitCode).toBe(10); // LDAP referral
    expect(result.stderr).toContain(`ldap://127.0.0.1:${provider.port}/`);
  });

  it('users bind at the consumer with their own password (pre-authentication)', async () => {
    const alice = testbed.user('alice');
    const bind = await execa(
      'ldapwhoami',
      ['-x', '-H', pair().consumer.url, '-D', alice.dn, '-w', alice.password],
      { reject: false },
    );
    expect(bind.exitCode, bind.stderr).toBe(0);
    expect(bind.stdout).toBe(`dn:${alice.dn.replace('\\+', '\\2B')}`);
  });

  it('with the provider stopped, the consumer still finds users; started again, it follows', async () => {
    const { provider, consumer } = pair();
    await provider.stop();
    try {
      expect(await canConnect(provider.host, provider.port)).toBe(false);
      expect(await search(consumer, '(uid=bob)', 'mailHost')).toContain('mailHost: 127.0.0.3');
      expect(await provider.contextCsn()).toEqual([]);
    } finally {
      await provider.start();
    }
    const { uid, ldif } = newUser('127.0.0.3');
    expect((await modify(provider, ldif, 'ldapadd')).exitCode).toBe(0);
    // the consumer retries every second
    await pair().waitForSync(15_000);
    expect(await search(consumer, `(uid=${uid})`, 'uid')).toContain(`uid: ${uid}`);
  });

  it('with the provider SIGSTOPped, the consumer still answers', async () => {
    const { provider, consumer } = pair();
    provider.pause();
    try {
      expect(provider.paused).toBe(true);
      expect(await search(consumer, '(uid=alice)', 'mailHost')).toContain('mailHost: 127.0.0.2');
    } finally {
      provider.resume();
    }
    expect(await search(provider, '(uid=alice)', 'uid')).toContain('uid: alice');
  });

  it('stop() stops both', async () => {
    const bed = await startTestbed({
      replicatedDirectory: true,
      bulkUsers: 0,
      tls: false,
      stores: 1,
    });
    const replica = bed.replication?.consumer;
    await bed.stop();
    expect(findProcesses(bed.dir)).toEqual([]);
    expect(await canConnect('127.0.0.1', replica?.port ?? 0)).toBe(false);
  });
});
