// A replicated directory: an OpenLDAP provider (syncprov overlay) and a read-only syncrepl
// consumer (refreshAndPersist, RFC 4533), both classic slapd.conf like the single slapd, with
// the same schema and population. The consumer starts empty and copies everything.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createLdap, type LdapServer } from './ldap.js';
import type { TestUser } from './users.js';
import { waitUntil } from './wire.js';

export interface ReplicatedDirectory {
  /** Takes the writes; the consumer follows it. */
  readonly provider: LdapServer;
  /** Read-only replica (writes get a referral to the provider). */
  readonly consumer: LdapServer;
  /** LDAPHost failover list, provider first: `127.0.0.1:P 127.0.0.1:C`. */
  readonly ldapHost: string;
  /** LdapUrl failover list, provider first: `ldap://127.0.0.1:P/o=mmp.test ldap://…`. */
  readonly ldapUrl: string;
  /**
   * Wait until the consumer has caught up: both servers report the same contextCSN (RFC 4533
   * section 3.5), read as the root DN. Throws after `timeoutMs` (default 10 s) with both values.
   */
  waitForSync(timeoutMs?: number): Promise<void>;
  /** Start the provider, then the consumer, and wait until the consumer has every entry. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface ReplicatedDirectoryOptions {
  /** Holds `provider/` and `consumer/`. */
  dir: string;
  host: string;
  providerPort: number;
  consumerPort: number;
  users: readonly TestUser[];
  anonymousRead: boolean;
  logLevel: string;
}

/** Write both configurations and load the provider (nothing is started yet). */
export async function createReplicatedDirectory(
  options: ReplicatedDirectoryOptions,
): Promise<ReplicatedDirectory> {
  const { dir, host, providerPort, consumerPort } = options;
  const providerDir = join(dir, 'provider');
  const consumerDir = join(dir, 'consumer');
  await Promise.all([mkdir(providerDir, { mode: 0o700 }), mkdir(consumerDir, { mode: 0o700 })]);
  const common = {
    host,
    users: options.users,
    anonymousRead: options.anonymousRead,
    logLevel: options.logLevel,
  };
  const [provider, consumer] = await Promise.all([
    createLdap({
      ...common,
      dir: providerDir,
      port: providerPort,
      replication: { role: 'provider' },
    }),
    createLdap({
      ...common,
      dir: consumerDir,
      port: consumerPort,
      replication: { role: 'consumer', providerUrl: `ldap://${host}:${providerPort}/`, rid: 1 },
    }),
  ]);

  const waitForSync = async (timeoutMs = 10_000): Promise<void> => {
    let last: [string[], string[]] = [[], []];
    try {
      await waitUntil(
        'the syncrepl consumer catching up',
        async () => {
          last = await Promise.all([provider.contextCsn(), consumer.contextCsn()]);
          const [p, c] = last;
          return p.length > 0 && p.join(' ') === c.join(' ');
        },
        { timeoutMs },
      );
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      throw new Error(
        `${message}: provider contextCSN [${last[0].join(', ')}], consumer [${last[1].join(', ')}]`,
        { cause: error },
      );
    }
  };

  return {
    provider,
    consumer,
    ldapHost: `${host}:${providerPort} ${host}:${consumerPort}`,
    ldapUrl: [provider, consumer].map((s) => `${s.url}${s.baseDn}`).join(' '),
    waitForSync,
    async start(): Promise<void> {
      // The consumer retries once a second: starting it after the provider saves that second.
      await provider.start();
      await consumer.start();
      await waitForSync();
    },
    async stop(): Promise<void> {
      await Promise.all([consumer.stop(), provider.stop()]);
    },
  };
}
