/** The directory lookup against the test bed's real slapd: failover, pooling, every outcome. */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEAD_HOSTS, type Testbed, startTestbed } from '@mmp/testbed';
import { Directory, type DirectorySettings } from './directory.js';
import { testSettings } from './test-support/harness.js';
import type { Log, LogFields } from './log.js';

/** A Log that keeps what it is told, to see which LDAP hosts were tried. */
class RecordingLog implements Log {
  readonly verbosity = 10;
  records: { msg: string; fields: LogFields }[] = [];
  enabled(): boolean {
    return true;
  }
  at(_level: string, _phase: string, msg: string, fields: LogFields = {}): void {
    this.records.push({ msg, fields });
  }
  guide(level: string, phase: string, msg: string, fields: LogFields = {}): void {
    this.at(level, phase, msg, fields);
  }
  error(_phase: string, msg: string, fields: LogFields = {}): void {
    this.records.push({ msg, fields });
  }
  child(): Log {
    return this;
  }
  hostsSearched(): unknown[] {
    return this.records
      .filter((r) => r.msg === 'searching the directory')
      .map((r) => r.fields['ldap']);
  }
}

let bed: Testbed;
beforeAll(async () => {
  bed = await startTestbed({ tls: false, bulkUsers: 20 });
}, 180_000);
afterAll(async () => {
  await bed?.stop();
});

/** The test bed's directory, as the settings of a proxy pointed at it (the defaults otherwise). */
function settings(overrides: Partial<DirectorySettings> = {}): DirectorySettings {
  const { directory } = testSettings({
    LDAPHost: [{ host: bed.ldap.host, port: bed.ldap.port }],
    BaseDN: bed.ldap.baseDn,
    BindDN: bed.ldap.bindDn,
    BindPass: bed.ldap.bindPassword,
  });
  return { ...directory, ...overrides };
}

describe('Directory against slapd', () => {
  it('finds a user and its mail hosts in order; no-such-user, ambiguous, no-mail-host', async () => {
    const d = new Directory(settings());
    const log = new RecordingLog();
    const failover = bed.user('failover');
    const r = await d.lookup(`(uid=${failover.uid})`, log);
    expect(r).toEqual({
      ok: true,
      value: {
        dn: expect.stringContaining('uid=failover'),
        mailHosts: failover.mailHosts.map((host) => ({ host })),
      },
    });
    expect(await d.lookup('(uid=nobody-at-all)', log)).toEqual({
      ok: false,
      error: { kind: 'no-such-user' },
    });
    expect(await d.lookup('(|(uid=alice)(uid=bob))', log)).toEqual({
      ok: false,
      error: { kind: 'ambiguous' },
    });
    expect(await d.lookup('(uid=nomailhost)', log)).toEqual({
      ok: false,
      error: { kind: 'no-mail-host' },
    });
    await d.close();
  });

  it('reads UidAttr for the replayed name', async () => {
    const d = new Directory(settings({ uidAttr: 'mail' }));
    const r = await d.lookup('(uid=alice)', new RecordingLog());
    expect(r.ok && r.value.replayName?.toString()).toMatch(/^alice@/);
    await d.close();
  });

  it('fails over past a dead LDAPHost and then skips it for a while', async () => {
    const dead = { host: DEAD_HOSTS[0], port: bed.ldap.port };
    const d = new Directory(
      settings({ hosts: [dead, { host: bed.ldap.host, port: bed.ldap.port }] }),
    );
    const log = new RecordingLog();
    expect((await d.lookup('(uid=alice)', log)).ok).toBe(true);
    expect((await d.lookup('(uid=bob)', log)).ok).toBe(true);
    const live = `${bed.ldap.host}:${bed.ldap.port}`;
    expect(log.hostsSearched()).toEqual([`${dead.host}:${dead.port}`, live, live]);
    await d.close();
  });

  it('a refused bind is unavailable, and the host is not marked dead', async () => {
    const d = new Directory(settings({ bindPassword: 'wrong' }));
    const log = new RecordingLog();
    const r = await d.lookup('(uid=alice)', log);
    expect(r.ok ? 'ok' : r.error.kind).toBe('unavailable');
    await d.lookup('(uid=alice)', log);
    expect(log.hostsSearched()).toHaveLength(2);
    await d.close();
  });

  it('200 lookups at once after the directory restarted all succeed on the shared connections', async () => {
    const d = new Directory(settings());
    const log = new RecordingLog();
    expect((await d.lookup('(uid=alice)', log)).ok).toBe(true);
    await bed.ldap.stop();
    await bed.ldap.start();
    const users = bed.usersOfKind('bulk');
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        d.lookup(`(uid=${users[i % users.length]?.uid ?? ''})`, log),
      ),
    );
    expect(results.filter((r) => !r.ok)).toEqual([]);
    await d.close();
  });
});
