// startTestbed(): slapd plus N Dovecot stores on loopback, in a fresh temporary directory, on
// free ports, with a generated user population; stop() leaves nothing running.
import { chmod, chown, mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registerDir, unregisterDir } from './cleanup.js';
import { startHangingHost, type HangingHost } from './hang.js';
import { DIR_PREFIX, reapOrphans, writeOwner } from './reap.js';
import { freePort, freePortsOnAll } from './ports.js';
import {
  extraUsers,
  type ExtraUserOptions,
  generateUsers,
  hostedDomainUsers,
  type HostedDomainOptions,
  MAX_STORES,
  type StoreAddress,
  type StoreName,
  type TestUser,
} from './users.js';
import { createLdap, type LdapServer } from './ldap.js';
import { createReplicatedDirectory, type ReplicatedDirectory } from './replication.js';
import { startTokenIssuer, type IssueTokenOptions, type TokenIssuer } from './oauth2.js';
import { startScriptedStore, type ScriptedBehaviour, type ScriptedStore } from './scripted.js';
import {
  createStore,
  dovecotGid,
  mailAccount,
  MASTER_PASSWORD,
  MASTER_SEPARATOR,
  MASTER_USER,
  type BacksidePorts,
  type Store,
} from './dovecot.js';
import { bigMessage, mailboxMessages, type SeededMessage } from './messages.js';
import { createTls, type TestbedTls } from './tls.js';

export interface TestbedOptions {
  /** Number of Dovecot stores, 1 to 7 (default 2): A on 127.0.0.2, B on 127.0.0.3, … */
  stores?: number;
  /** Number of bulk users user001 … (default 200), spread over the stores in turn. */
  bulkUsers?: number;
  /** Keep the temporary directory after stop() (default: env MMP_TESTBED_KEEP=1). */
  keep?: boolean;
  /** Certificates, STARTTLS and imaps/pop3s listeners on the stores (default true). */
  tls?: boolean;
  /** Anonymous LDAP clients may search (default true); if false, only bound clients. */
  ldapAnonymousRead?: boolean;
  /** slapd -d level (default `0`; `stats` logs every operation to ldap/slapd.log). */
  ldapLogLevel?: string;
  /** Dovecot login_trusted_networks (default `127.0.0.0/8`): lets a proxy forward client IPs. */
  trustedNetworks?: string;
  /**
   * Appended to every store's dovecot.conf (a function gets the store's name and address).
   * Later settings win, and a repeated `service imap { … }` block overrides single settings.
   */
  extraDovecotConfig?: string | ((store: { name: StoreName; host: string }) => string);
  /**
   * Hosted domains, each with its own slapd (suffix `o=DOMAIN`, on 127.0.0.1) and users
   * `NAME+DOMAIN` on the shared stores: virtual domains with overlapping user ids.
   */
  domains?: readonly HostedDomainOptions[];
  /**
   * A provider and a read-only syncrepl consumer instead of the single slapd (default false):
   * `testbed.ldap` is the provider, `testbed.replication` has both and the LDAPHost list.
   */
  replicatedDirectory?: boolean;
  /**
   * XOAUTH2 and OAUTHBEARER on the stores, through Dovecot's oauth2 passdb and a token
   * introspection endpoint of the test bed's own (default false); `testbed.issueToken()`.
   */
  oauth2?: boolean;
  /**
   * Scripted stores, one per behaviour given, on 127.0.0.21, 127.0.0.22, … (SCRIPTED_HOSTS) on
   * the back-side IMAP and POP3 ports, so a mailHost naming that address reaches it.
   */
  scriptedStores?: readonly ScriptedBehaviour[];
  /** More users in the main directory, with mailHost values of the test's choice. */
  extraUsers?: readonly ExtraUserOptions[];
}

/** A hosted domain's directory (TestbedOptions.domains). */
export interface HostedDomain {
  domain: string;
  ldap: LdapServer;
  /** Its users, in the order given. */
  users: TestUser[];
}

export interface MasterUser {
  /** `mmpstore`: SASL PLAIN with authzid = user, authcid = mmpstore, the master password. */
  name: string;
  password: string;
  /** `*`: LOGIN `alice*mmpstore` with the master password works too. */
  separator: string;
}

export interface Testbed {
  /** The temporary directory holding everything (removed by stop() unless kept). */
  readonly dir: string;
  /** The directory (the provider when replicated). */
  readonly ldap: LdapServer;
  /** The provider and its consumer (TestbedOptions.replicatedDirectory), else undefined. */
  readonly replication: ReplicatedDirectory | undefined;
  /** LDAPHost for a proxy: `127.0.0.1:PORT`, or `provider consumer` when replicated. */
  readonly ldapHost: string;
  /** The hosted domains' directories, in the order given (TestbedOptions.domains). */
  readonly domains: readonly HostedDomain[];
  readonly stores: readonly Store[];
  /** Ports shared by every store (each on its own address), as the multiplexor's BacksidePort. */
  readonly backsidePorts: BacksidePorts;
  /** Addresses where nothing listens on the back-side ports (mailHost values of dead stores). */
  readonly deadHosts: readonly string[];
  /**
   * An address (127.0.0.11) that accepts connections on the back-side ports and never answers:
   * a store that hangs rather than refuses. It runs inside the process that started the test bed.
   */
  readonly hangingHost: HangingHost;
  readonly users: readonly TestUser[];
  readonly masterUser: MasterUser;
  /** The 1 MiB message, number 3 in every mailbox. */
  readonly bigMessage: SeededMessage;
  /** Certificates (undefined when started with tls: false). */
  readonly tls: TestbedTls | undefined;
  /** The token introspection endpoint (TestbedOptions.oauth2), else undefined. */
  readonly oauth2: TokenIssuer | undefined;
  /**
   * A bearer token the stores accept for `user` (a uid) on XOAUTH2 / OAUTHBEARER; `expired`
   * gives one they refuse. Throws unless started with `oauth2: true`.
   */
  issueToken(user: string, options?: IssueTokenOptions): string;
  /** The scripted stores (TestbedOptions.scriptedStores), in the order given. */
  readonly scriptedStores: readonly ScriptedStore[];
  /** A store by name ('A', 'B', …); throws if unknown. */
  store(name: StoreName): Store;
  /** A user by uid; throws if unknown. */
  user(uid: string): TestUser;
  /** The first ordinary ('plain') user on a store: alice on A, bob on B, grace on C, … */
  userOn(store: StoreName): TestUser;
  /** Every user the mailHost list routes to this store (all kinds). */
  usersOn(store: StoreName): TestUser[];
  /** Users of one kind, in order. */
  usersOfKind(kind: TestUser['kind']): TestUser[];
  /** The messages seeded in the user's INBOX on a store (default: the user's own store). */
  messagesFor(user: TestUser | string, store?: StoreName): SeededMessage[];
  /** A JSON-safe description (what the CLI prints). */
  describe(): TestbedDescription;
  /** Stop every server, remove the directory (unless kept); safe to call twice. */
  stop(): Promise<void>;
}

export interface TestbedDescription {
  dir: string;
  ldapHost: string;
  /** The syncrepl consumer's URL and port when replicated. */
  ldapReplica: { url: string; port: number; logPath: string } | null;
  oauth2: { introspectionUrl: string } | null;
  scriptedStores: { host: string; behaviour: string }[];
  ldap: {
    url: string;
    host: string;
    port: number;
    baseDn: string;
    peopleDn: string;
    bindDn: string;
    bindPassword: string;
    rootDn: string;
    rootPassword: string;
    logPath: string;
  };
  stores: {
    name: string;
    host: string;
    imapPort: number;
    pop3Port: number;
    imapsPort: number;
    pop3sPort: number;
    imapHaproxyPort: number;
    pop3HaproxyPort: number;
    greeting: string;
    logPath: string;
  }[];
  backsidePorts: BacksidePorts;
  deadHosts: string[];
  hangingHost: string;
  masterUser: MasterUser;
  bigMessage: { number: number; subject: string; size: number; sha256: string };
  tls: Omit<TestbedTls, 'caPem' | 'certPem' | 'keyPem'> | null;
  users: TestUser[];
}

const STORE_NAMES = 'ABCDEFG';
export const DEAD_HOSTS = ['127.0.0.9', '127.0.0.10'] as const;
export const HANGING_HOST = '127.0.0.11';
/** Addresses of the scripted stores, in order (TestbedOptions.scriptedStores). */
export const SCRIPTED_HOSTS = [
  '127.0.0.21',
  '127.0.0.22',
  '127.0.0.23',
  '127.0.0.24',
  '127.0.0.25',
  '127.0.0.26',
  '127.0.0.27',
  '127.0.0.28',
] as const;

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

async function tail(file: string, lines = 30): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** Start slapd and the Dovecot stores; see TestbedOptions for the defaults. */
export async function startTestbed(options: TestbedOptions = {}): Promise<Testbed> {
  const attempts = 3;
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options);
    } catch (error) {
      // Another process may grab a port between our probe and the server's bind: try again.
      const message = error instanceof Error ? error.message : String(error);
      if (attempt >= attempts || !/address already in use|EADDRINUSE/i.test(message)) throw error;
    }
  }
}

async function startOnce(options: TestbedOptions): Promise<Testbed> {
  const storeCount = options.stores ?? 2;
  if (!Number.isInteger(storeCount) || storeCount < 1 || storeCount > MAX_STORES) {
    throw new Error(`stores must be an integer from 1 to ${MAX_STORES}`);
  }
  if (!isRoot()) {
    throw new Error(
      '@mmp/testbed must run as root: Dovecot switches to its own users (dovenull, dovecot, mail)',
    );
  }
  const keep = options.keep ?? process.env.MMP_TESTBED_KEEP === '1';
  const useTls = options.tls ?? true;
  const bulkUsers = options.bulkUsers ?? 200;
  const scriptedBehaviours = options.scriptedStores ?? [];
  if (scriptedBehaviours.length > SCRIPTED_HOSTS.length) {
    throw new Error(`at most ${SCRIPTED_HOSTS.length} scripted stores`);
  }
  const scriptedHosts = SCRIPTED_HOSTS.slice(0, scriptedBehaviours.length);

  await reapOrphans(tmpdir()).catch(() => []);
  const dir = await mkdtemp(join(tmpdir(), DIR_PREFIX));
  const registration = registerDir(dir, keep);
  let ldap: LdapServer | undefined;
  let replication: ReplicatedDirectory | undefined;
  let domainLdaps: LdapServer[] = [];
  let stores: Store[] = [];
  let hanging: HangingHost | undefined;
  let oauth2: TokenIssuer | undefined;
  let scripted: ScriptedStore[] = [];
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await Promise.all([
      replication === undefined ? ldap?.stop() : replication.stop(),
      ...domainLdaps.map((d) => d.stop()),
      hanging?.stop(),
      ...stores.map((s) => s.stop()),
      ...scripted.map((s) => s.stop()),
    ]);
    await oauth2?.stop();
    unregisterDir(registration);
    if (!keep) await rm(dir, { recursive: true, force: true });
  };

  try {
    await writeOwner(dir, keep);
    // Dovecot's unprivileged processes must reach their files below it.
    await chmod(dir, 0o755);
    const suffix = dir.slice(dir.lastIndexOf('-') + 1);

    const addresses: StoreAddress[] = [...STORE_NAMES.slice(0, storeCount)].map((name, i) => ({
      name,
      host: `127.0.0.${2 + i}`,
    }));
    const ldapHost = '127.0.0.1';
    const ldapPort = await freePort(ldapHost);
    const replicaPort = options.replicatedDirectory ? await freePort(ldapHost) : 0;
    const portList = await freePortsOnAll(
      [...addresses.map((a) => a.host), ...DEAD_HOSTS, HANGING_HOST, ...scriptedHosts],
      6,
    );
    const port = (i: number): number => portList[i] ?? 0;
    const backsidePorts: BacksidePorts = {
      imap: port(0),
      pop3: port(1),
      imaps: useTls ? port(2) : 0,
      pop3s: useTls ? port(3) : 0,
      imapHaproxy: port(4),
      pop3Haproxy: port(5),
    };
    const mainUsers = generateUsers({
      stores: addresses,
      deadHosts: DEAD_HOSTS,
      hangingHost: HANGING_HOST,
      bulkUsers,
    });
    const storeHost = (name: StoreName): string => {
      const a = addresses.find((x) => x.name === name);
      if (a === undefined) throw new Error(`unknown store ${name}`);
      return a.host;
    };
    const domainOptions = options.domains ?? [];
    const hostedUsers = domainOptions.map((d) => hostedDomainUsers(d, storeHost, DEAD_HOSTS[0]));
    const extra = extraUsers(options.extraUsers ?? [], addresses);
    const taken = new Set(mainUsers.map((u) => u.uid));
    for (const u of extra) {
      if (taken.has(u.uid)) throw new Error(`extra user ${u.uid}: that uid exists already`);
      taken.add(u.uid);
    }
    const directoryUsers = [...mainUsers, ...extra];
    // The stores hold every mailbox, main and hosted alike.
    const users = [...directoryUsers, ...hostedUsers.flat()];
    const domainPorts = await Promise.all(domainOptions.map(() => freePort(ldapHost)));

    const mail = mailAccount();
    const big = bigMessage();
    const bigMessageFile = join(dir, 'one-mebibyte.eml');
    await writeFile(bigMessageFile, big.bytes, { mode: 0o600 });
    await utimes(bigMessageFile, 1704067203, 1704067203);
    await chown(bigMessageFile, mail.uid, mail.gid);

    const tlsDir = join(dir, 'tls');
    const ldapDir = join(dir, 'ldap');
    await Promise.all([mkdir(tlsDir, { mode: 0o755 }), mkdir(ldapDir, { mode: 0o700 })]);
    // Certificates are needed only when Dovecot starts: make them while the files are written.
    const tlsReady = useTls ? createTls(tlsDir) : Promise.resolve(undefined);
    tlsReady.catch(() => undefined);
    const gid = dovecotGid();
    const trustedNetworks = options.trustedNetworks ?? '127.0.0.0/8';
    if (options.oauth2) oauth2 = await startTokenIssuer(ldapHost);
    const storeOAuth2 =
      oauth2 === undefined ? undefined : { introspectionUrl: oauth2.introspectionUrl };
    const directory = {
      host: ldapHost,
      users: directoryUsers,
      anonymousRead: options.ldapAnonymousRead ?? true,
      logLevel: options.ldapLogLevel ?? '0',
    };
    const [createdLdap, ...createdStores] = await Promise.all([
      options.replicatedDirectory
        ? createReplicatedDirectory({
            ...directory,
            dir: ldapDir,
            providerPort: ldapPort,
            consumerPort: replicaPort,
          }).then((pair) => {
            replication = pair;
            return pair.provider;
          })
        : createLdap({ ...directory, dir: ldapDir, port: ldapPort }),
      ...addresses.map(async (address) => {
        const storeDir = join(dir, `store-${address.name}`);
        await mkdir(storeDir, { mode: 0o755 });
        return createStore({
          name: address.name,
          host: address.host,
          dir: storeDir,
          instanceName: `${DIR_PREFIX}${suffix}-${address.name}`,
          ports: backsidePorts,
          users,
          tls: useTls
            ? { certFile: join(tlsDir, 'server.pem'), keyFile: join(tlsDir, 'server.key') }
            : undefined,
          trustedNetworks,
          bigMessageFile,
          mailUid: mail.uid,
          mailGid: mail.gid,
          dovecotGid: gid,
          extraConfig:
            typeof options.extraDovecotConfig === 'function'
              ? options.extraDovecotConfig(address)
              : (options.extraDovecotConfig ?? ''),
          oauth2: storeOAuth2,
        });
      }),
    ]);
    ldap = createdLdap;
    stores = createdStores;
    domainLdaps = await Promise.all(
      domainOptions.map(async (d, i) => {
        const domainDir = join(dir, `ldap-${d.domain}`);
        await mkdir(domainDir, { mode: 0o700 });
        return createLdap({
          dir: domainDir,
          host: ldapHost,
          port: domainPorts[i] ?? 0,
          users: hostedUsers[i] ?? [],
          anonymousRead: d.anonymousRead ?? true,
          logLevel: options.ldapLogLevel ?? '0',
          baseDn: `o=${d.domain}`,
        });
      }),
    );
    const tls = await tlsReady;
    const hangingPorts = [backsidePorts.imap, backsidePorts.pop3];
    if (useTls) hangingPorts.push(backsidePorts.imaps, backsidePorts.pop3s);
    hanging = await startHangingHost(HANGING_HOST, hangingPorts);
    scripted = await Promise.all(
      scriptedHosts.map((host, i) =>
        startScriptedStore({
          host,
          imapPort: backsidePorts.imap,
          pop3Port: backsidePorts.pop3,
          behaviour: scriptedBehaviours[i] ?? 'never-greet',
        }),
      ),
    );
    await Promise.all([
      replication === undefined ? createdLdap.start() : replication.start(),
      ...domainLdaps.map((d) => d.start()),
      ...createdStores.map((s) => s.start()),
    ]);
    return makeTestbed({
      dir,
      ldap: createdLdap,
      replication,
      oauth2,
      scripted,
      domains: domainOptions.map((d, i) => ({
        domain: d.domain,
        ldap: domainLdaps[i] as LdapServer,
        users: hostedUsers[i] ?? [],
      })),
      stores: createdStores,
      backsidePorts,
      users,
      tls,
      hanging,
      stop,
    });
  } catch (error) {
    const logs = await Promise.all([
      ldap === undefined ? '' : tail(ldap.logPath),
      replication === undefined ? '' : tail(replication.consumer.logPath),
      ...stores.map(
        async (s) => `${await tail(s.logPath)}\n${await tail(join(s.dir, 'dovecot.stdio.log'))}`,
      ),
    ]);
    await stop();
    const message = error instanceof Error ? error.message : String(error);
    const logText = logs.filter((l) => l.trim()).join('\n');
    throw new Error(logText ? `${message}\n--- server logs ---\n${logText}` : message, {
      cause: error,
    });
  }
}

interface Parts {
  dir: string;
  ldap: LdapServer;
  replication: ReplicatedDirectory | undefined;
  oauth2: TokenIssuer | undefined;
  scripted: ScriptedStore[];
  domains: HostedDomain[];
  stores: Store[];
  backsidePorts: BacksidePorts;
  users: TestUser[];
  tls: TestbedTls | undefined;
  hanging: HangingHost;
  stop(): Promise<void>;
}

function makeTestbed(parts: Parts): Testbed {
  const { dir, ldap, replication, oauth2, scripted } = parts;
  const { domains, stores, backsidePorts, users, tls, hanging, stop } = parts;
  const ldapHost = replication?.ldapHost ?? `${ldap.host}:${ldap.port}`;
  const big = bigMessage();

  const byName = new Map(stores.map((s) => [s.name, s]));
  const byUid = new Map(users.map((u) => [u.uid, u]));
  const testbed: Testbed = {
    dir,
    ldap,
    replication,
    ldapHost,
    oauth2,
    issueToken(user, options) {
      if (oauth2 === undefined) throw new Error('issueToken: start the test bed with oauth2: true');
      return oauth2.issueToken(user, options);
    },
    scriptedStores: scripted,
    domains,
    stores,
    backsidePorts,
    deadHosts: [...DEAD_HOSTS],
    hangingHost: hanging,
    users,
    masterUser: { name: MASTER_USER, password: MASTER_PASSWORD, separator: MASTER_SEPARATOR },
    bigMessage: big,
    tls,
    store(name) {
      const store = byName.get(name);
      if (store === undefined) throw new Error(`no store ${name}`);
      return store;
    },
    user(uid) {
      const user = byUid.get(uid);
      if (user === undefined) throw new Error(`no user ${uid}`);
      return user;
    },
    userOn(name) {
      const user = users.find((u) => u.kind === 'plain' && u.store === name);
      if (user === undefined) throw new Error(`no ordinary user on store ${name}`);
      return user;
    },
    usersOn(name) {
      return users.filter((u) => u.store === name);
    },
    usersOfKind(kind) {
      return users.filter((u) => u.kind === kind);
    },
    messagesFor(userOrUid, storeName) {
      const user = typeof userOrUid === 'string' ? testbed.user(userOrUid) : userOrUid;
      const name = storeName ?? user.store ?? user.mailboxes[0];
      if (name === undefined || !user.mailboxes.includes(name)) {
        throw new Error(`${user.uid} has no mailbox on store ${name ?? '(none)'}`);
      }
      return mailboxMessages(name, user.uid, user.mail);
    },
    describe() {
      const replica = replication?.consumer;
      return {
        dir,
        ldapHost,
        ldapReplica:
          replica === undefined
            ? null
            : { url: replica.url, port: replica.port, logPath: replica.logPath },
        oauth2: oauth2 === undefined ? null : { introspectionUrl: oauth2.introspectionUrl },
        scriptedStores: scripted.map((s) => ({ host: s.host, behaviour: s.behaviour })),
        ldap: {
          url: ldap.url,
          host: ldap.host,
          port: ldap.port,
          baseDn: ldap.baseDn,
          peopleDn: ldap.peopleDn,
          bindDn: ldap.bindDn,
          bindPassword: ldap.bindPassword,
          rootDn: ldap.rootDn,
          rootPassword: ldap.rootPassword,
          logPath: ldap.logPath,
        },
        stores: stores.map((s) => ({
          name: s.name,
          host: s.host,
          imapPort: s.imapPort,
          pop3Port: s.pop3Port,
          imapsPort: s.imapsPort,
          pop3sPort: s.pop3sPort,
          imapHaproxyPort: s.imapHaproxyPort,
          pop3HaproxyPort: s.pop3HaproxyPort,
          greeting: s.greeting,
          logPath: s.logPath,
        })),
        backsidePorts,
        deadHosts: [...DEAD_HOSTS],
        hangingHost: hanging.host,
        masterUser: testbed.masterUser,
        bigMessage: {
          number: big.number,
          subject: big.subject,
          size: big.size,
          sha256: big.sha256,
        },
        tls:
          tls === undefined
            ? null
            : {
                caFile: tls.caFile,
                certFile: tls.certFile,
                keyFile: tls.keyFile,
                issuer: tls.issuer,
                clientCerts: tls.clientCerts,
                entryDnCerts: tls.entryDnCerts,
              },
        users: [...users],
      };
    },
    stop,
  };
  return testbed;
}
