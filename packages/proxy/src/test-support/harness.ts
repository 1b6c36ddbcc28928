/** An in-process ImapProxy with a fake directory, for the session's unit tests. */

import { type HostPort, type Result, err, ok } from '@mmp/config';
import type { LookupError, UserDirectory, UserEntry } from '../directory.js';
import { startImapSession } from '../imap/session.js';
import { type Log, silentLog } from '../log.js';
import { ProxyServer } from '../server.js';
import type { ProxySettings } from '../settings.js';

export interface FakeUser {
  uid: string;
  mailHosts: HostPort[];
  replayName?: string;
}

export class FakeDirectory implements UserDirectory {
  down = false;
  filters: string[] = [];
  constructor(private readonly users: FakeUser[]) {}

  lookup(filter: string, _log: Log): Promise<Result<UserEntry, LookupError>> {
    this.filters.push(filter);
    if (this.down) return Promise.resolve(err({ kind: 'unavailable', detail: 'ECONNREFUSED' }));
    const m = /^\(uid=(.*)\)$/.exec(filter);
    const found = this.users.filter((u) => m !== null && u.uid === m[1]);
    if (found.length === 0) return Promise.resolve(err({ kind: 'no-such-user' }));
    const u = found[0] as FakeUser;
    const entry: UserEntry = { dn: `uid=${u.uid},o=test`, mailHosts: u.mailHosts };
    if (u.replayName !== undefined) entry.replayName = Buffer.from(u.replayName);
    return Promise.resolve(ok(entry));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

export function testSettings(overrides: Partial<ProxySettings> = {}): ProxySettings {
  return {
    protocol: 'imap',
    listen: { host: '127.0.0.1', port: 0 },
    banner: 'Test multiplexor ready',
    capability: 'IMAP4rev1 LITERAL+ SASL-IR ID AUTH=PLAIN AUTH=LOGIN',
    serverDownAlert: 'Your IMAP server appears to be temporarily out of service.',
    searchFormat: {
      text: '(uid=%s)',
      parts: [
        { kind: 'text', text: '(uid=' },
        { kind: 'escape', name: 's' },
        { kind: 'text', text: ')' },
      ],
    },
    directory: { hosts: [], baseDn: 'o=test', mailHostAttrs: ['mailHost'] },
    backsidePort: 143,
    idleTimeoutMs: 60_000,
    storeConnectTimeoutMs: 2_000,
    logDir: '/nonexistent',
    logLevel: 0,
    ...overrides,
  };
}

export async function startTestProxy(
  directory: UserDirectory,
  settings: ProxySettings = testSettings(),
  log: Log = silentLog,
  graceMs = 1_000,
): Promise<{ server: ProxyServer; port: number }> {
  const server = new ProxyServer({
    protocol: 'imap',
    settings,
    directory,
    log,
    startSession: startImapSession,
    graceMs,
  });
  const { port } = await server.listen();
  return { server, port };
}
