/** An in-process ImapProxy or PopProxy with a fake directory, for the sessions' tests. */

import {
  type ConfigValues,
  type HostPort,
  type Protocol,
  type Result,
  err,
  ok,
  parseCommandLine,
  resolveConfig,
} from '@mmp/config';
import type { LookupError, SearchBase, UserDirectory, UserEntry } from '../directory.js';
import { startImapSession } from '../imap/dialect.js';
import { type Log, silentLog } from '../log.js';
import { startPopSession } from '../pop3/dialect.js';
import { type ProxyRuntime, type RuntimeSources, buildRuntime } from '../proxyRuntime.js';
import { ProxyServer } from '../server.js';
import { type ProxySettings, settingsFrom } from '../settings.js';

export interface FakeUser {
  uid: string;
  mailHosts: HostPort[];
  replayName?: string;
}

export class FakeDirectory implements UserDirectory {
  down = false;
  filters: string[] = [];
  /** Each lookup's search base (undefined: BaseDN). */
  wheres: (SearchBase | undefined)[] = [];
  /** Filters whose cached answer the login path evicted (`forget`). */
  forgotten: string[] = [];
  constructor(private readonly users: FakeUser[]) {}

  lookup(filter: string, _log: Log, where?: SearchBase): Promise<Result<UserEntry, LookupError>> {
    this.filters.push(filter);
    this.wheres.push(where);
    if (this.down) return Promise.resolve(err({ kind: 'unavailable', detail: 'ECONNREFUSED' }));
    const m = /^\(uid=(.*)\)$/.exec(filter);
    const found = this.users.filter((u) => m !== null && u.uid === m[1]);
    if (found.length === 0) return Promise.resolve(err({ kind: 'no-such-user' }));
    const u = found[0] as FakeUser;
    const entry: UserEntry = { dn: `uid=${u.uid},o=test`, mailHosts: u.mailHosts };
    if (u.replayName !== undefined) entry.replayName = Buffer.from(u.replayName);
    return Promise.resolve(ok(entry));
  }

  forget(filter: string): void {
    this.forgotten.push(filter);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** The parameter table's defaults for a protocol: what an operator gets who configures nothing. */
export function defaultValues(protocol: Protocol = 'imap'): ConfigValues {
  const commandLine = parseCommandLine(protocol, []);
  if (!commandLine.ok) throw new Error(JSON.stringify(commandLine.error));
  const r = resolveConfig({ protocol, commandLine: commandLine.value, env: {} });
  if (!r.ok) throw new Error(JSON.stringify(r.error));
  return r.value.values;
}

/**
 * What these in-process tests change in the defaults: a free port on loopback, a banner to
 * recognise, and no lookup cache (nor negative cache), so that every login asks the fake directory (tests take it down).
 * recognise, no lookup cache, so that every login asks the fake directory (tests take it down),
 * and the per-address protections relaxed for 127.0.0.1.
 */
const TEST_VALUES: Partial<ConfigValues> = {
  ListenPort: { host: '127.0.0.1', port: 0 },
  Banner: 'Test multiplexor ready',
  LdapCacheTTL: 0,
  LdapNegativeCacheTTL: 0,
  // Every test client comes from 127.0.0.1: no failed-login delay, no per-address cap (the
  // protections have tests of their own that set them).
  AuthFailureDelay: 0,
  ConnectionLimitExempt: [{ address: '127.0.0.1', family: 4, prefix: 32 }],
};

/** Settings as `main` makes them, from the defaults, TEST_VALUES and `values`. */
export function testSettings(
  values: Partial<ConfigValues> = {},
  protocol: Protocol = 'imap',
): ProxySettings {
  return settingsFrom({
    protocol,
    values: { ...defaultValues(protocol), ...TEST_VALUES, ...values },
  });
}

/** A runtime as `main` builds it, from the defaults, TEST_VALUES and `values`; every site's
 * directory is `directory`. */
export function testRuntime(
  directory: UserDirectory,
  values: Partial<ConfigValues> = {},
  protocol: Protocol = 'imap',
  sources: Omit<RuntimeSources, 'openDirectory'> = {},
): ProxyRuntime {
  const r = buildRuntime(
    {
      protocol,
      values: { ...defaultValues(protocol), ...TEST_VALUES, ...values },
      vdmap: undefined,
    },
    { ...sources, openDirectory: () => directory },
  );
  if (!r.ok) throw new Error(r.error.join('; '));
  return r.value;
}

/** An in-process proxy of `runtime`'s protocol on a free loopback port. */
export async function startTestProxy(
  runtime: ProxyRuntime,
  log: Log = silentLog,
  graceMs = 1_000,
): Promise<{ server: ProxyServer; port: number }> {
  const { protocol } = runtime;
  const server = new ProxyServer({
    protocol,
    runtime,
    log,
    startSession: protocol === 'imap' ? startImapSession : startPopSession,
    graceMs,
  });
  const { port } = await server.listen();
  return { server, port };
}
