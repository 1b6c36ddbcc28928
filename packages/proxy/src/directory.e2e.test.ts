/** The directory lookup against the test bed's real slapd: failover, pooling, every outcome. */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEAD_HOSTS, type Testbed, startTestbed } from '@mmp/testbed';
import { Directory, type DirectorySettings } from './directory.js';
import { DIRECTORY_MAX_SEARCHES, DIRECTORY_MAX_WAITING_SEARCHES } from './limits.js';
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

  // Issue 14: a directory that dies or hangs costs each login at most LdapTimeout once; while every
  // host is known dead, logins fail at once, and a probe brings the directory back.
  const until = async (what: () => Promise<boolean>): Promise<void> => {
    for (let i = 0; i < 200 && !(await what()); i++) await new Promise((r) => setTimeout(r, 50));
  };

  it('slapd killed: unavailable, then fail-fast without a search; restarted, a probe brings it back', async () => {
    const d = new Directory(settings({ timeoutMs: 1_000 }));
    const log = new RecordingLog();
    expect((await d.lookup('(uid=alice)', log)).ok).toBe(true);
    await bed.ldap.kill();
    try {
      const first = await d.lookup('(uid=bob)', log);
      expect(first.ok ? 'ok' : first.error.kind).toBe('unavailable');
      expect(log.records.map((r) => r.msg)).toContain('directory host marked dead');
      const searched = log.hostsSearched().length;
      const second = await d.lookup('(uid=bob)', log);
      expect(second).toEqual({
        ok: false,
        error: { kind: 'unavailable', detail: 'every directory host is marked dead' },
      });
      // Not even tried: the answer came from the mark.
      expect(log.hostsSearched()).toHaveLength(searched);
    } finally {
      await bed.ldap.start();
    }
    await until(async () => (await d.lookup('(uid=bob)', log)).ok);
    expect((await d.lookup('(uid=carol)', log)).ok).toBe(true);
    expect(log.records.map((r) => r.msg)).toContain('directory host answers again');
    await d.close();
  });

  it('slapd SIGSTOPped: a search times out after LdapTimeout, the next fail at once; SIGCONT, back', async () => {
    const d = new Directory(settings({ timeoutMs: 1_000 }));
    const log = new RecordingLog();
    expect((await d.lookup('(uid=alice)', log)).ok).toBe(true);
    bed.ldap.pause();
    try {
      const first = await d.lookup('(uid=bob)', log);
      expect(first.ok ? 'ok' : first.error).toEqual({
        kind: 'unavailable',
        detail: expect.stringMatching(/timed out|timeout/i),
      });
      // One search, not a retry on a second connection of the hung server.
      expect(log.hostsSearched()).toHaveLength(2);
      const second = await d.lookup('(uid=bob)', log);
      expect(second).toEqual({
        ok: false,
        error: { kind: 'unavailable', detail: 'every directory host is marked dead' },
      });
    } finally {
      bed.ldap.resume();
    }
    await until(async () => (await d.lookup('(uid=bob)', log)).ok);
    expect((await d.lookup('(uid=carol)', log)).ok).toBe(true);
    await d.close();
  });

  it('searches in flight are capped: beyond the queue a lookup is refused at once', async () => {
    const d = new Directory(settings({ timeoutMs: 2_000 }));
    const log = new RecordingLog();
    expect((await d.lookup('(uid=alice)', log)).ok).toBe(true);
    bed.ldap.pause();
    try {
      const total = DIRECTORY_MAX_SEARCHES + DIRECTORY_MAX_WAITING_SEARCHES + 1;
      const lookups = Array.from({ length: total }, () => d.lookup('(uid=bob)', log));
      // The last one is refused before any search has ended (the others wait on the hung server).
      const last = await lookups[total - 1];
      expect(last).toEqual({
        ok: false,
        error: {
          kind: 'unavailable',
          detail: expect.stringMatching(/^too many directory searches/),
        },
      });
      const all = await Promise.all(lookups);
      expect(all.filter((r) => r.ok)).toEqual([]);
      // Only the first DIRECTORY_MAX_SEARCHES reached the server.
      expect(log.hostsSearched()).toHaveLength(1 + DIRECTORY_MAX_SEARCHES);
    } finally {
      bed.ldap.resume();
    }
    await d.close();
  });
});
