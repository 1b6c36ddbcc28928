// A private OpenLDAP slapd: classic slapd.conf, back_mdb, entries loaded with slapadd.
import { mkdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { ServerProcess, type ServerControls } from './process.js';
import { canConnect, waitUntil } from './wire.js';
import { BASE_DN, PEOPLE_DN, SERVICES_DN, type TestUser } from './users.js';

export const ROOT_DN = `cn=admin,${BASE_DN}`;
export const ROOT_PASSWORD = 'admin-secret';
export const BIND_DN = `cn=mmp,${SERVICES_DN}`;
export const BIND_PASSWORD = 'mmp-bind-secret';

/** The schema file shipped with this package (defines the multi-valued mailHost). */
export const SCHEMA_FILE = fileURLToPath(new URL('../schema/mmp.schema', import.meta.url));

/** The DNs of a directory whose suffix is `baseDn` (the main one: `o=mmp.test`). */
export interface DirectoryDns {
  baseDn: string;
  peopleDn: string;
  servicesDn: string;
  bindDn: string;
  rootDn: string;
}

/** DNs under another suffix (a hosted domain's own directory): `o=NAME` only. */
export function directoryDns(baseDn: string): DirectoryDns {
  if (!/^o=[^,+=\\]+$/.test(baseDn)) throw new Error(`base DN must be o=NAME: ${baseDn}`);
  const servicesDn = `ou=services,${baseDn}`;
  return {
    baseDn,
    peopleDn: `ou=people,${baseDn}`,
    servicesDn,
    bindDn: `cn=mmp,${servicesDn}`,
    rootDn: `cn=admin,${baseDn}`,
  };
}

const MAIN_DNS: DirectoryDns = {
  baseDn: BASE_DN,
  peopleDn: PEOPLE_DN,
  servicesDn: SERVICES_DN,
  bindDn: BIND_DN,
  rootDn: ROOT_DN,
};

const SYSTEM_SCHEMA_DIR = '/etc/ldap/schema';
const MODULE_PATHS = ['/usr/lib/ldap', '/usr/lib/x86_64-linux-gnu/ldap', '/usr/lib/openldap'];

export interface LdapServer extends ServerControls {
  /** `ldap://127.0.0.1:PORT/` */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** `o=mmp.test` */
  readonly baseDn: string;
  /** `ou=people,o=mmp.test`, where the users are. */
  readonly peopleDn: string;
  /** Non-root service account allowed to search: `cn=mmp,ou=services,o=mmp.test`. */
  readonly bindDn: string;
  readonly bindPassword: string;
  readonly rootDn: string;
  readonly rootPassword: string;
  /** slapd.conf */
  readonly configFile: string;
  /** slapd's stderr (debug output at the chosen level). */
  readonly logPath: string;
  readonly running: boolean;
  /** Stop slapd (connections to the port are then refused). */
  stop(): Promise<void>;
  /** Start it again, on the same port, with the same data. */
  start(): Promise<void>;
  /**
   * The suffix entry's contextCSN values (RFC 4533 replication state; one per server id), read
   * as the root DN. Empty when slapd is down or has none.
   */
  contextCsn(): Promise<string[]>;
}

/** Its part in a replicated pair (see replication.ts). */
export type ReplicationRole =
  | { role: 'provider' }
  /** A read-only syncrepl consumer of `providerUrl`, starting empty. */
  | { role: 'consumer'; providerUrl: string; rid: number };

export interface LdapOptions {
  dir: string;
  host: string;
  port: number;
  users: readonly TestUser[];
  /** Anonymous clients may search (default). If false only bound clients may read. */
  anonymousRead: boolean;
  /** slapd -d level (default `0`: errors only; e.g. `stats` logs every operation). */
  logLevel: string;
  /** Another suffix than `o=mmp.test` (a hosted domain's directory; see directoryDns). */
  baseDn?: string;
  /** Provider (syncprov overlay) or consumer (syncrepl) of a replicated pair. */
  replication?: ReplicationRole;
}

/** RFC 2849: a value that is not a SAFE-STRING is written base64 (`attr:: …`). */
export function ldifLine(attr: string, value: string): string {
  // SAFE-STRING: bytes 1-127 except NUL, LF, CR; not starting with space, ':' or '<'.
  const safe = [...value].every((c) => {
    const code = c.charCodeAt(0);
    return code > 0 && code < 128 && c !== '\n' && c !== '\r';
  });
  const first = value[0];
  const safeStart = first !== ' ' && first !== ':' && first !== '<';
  if (value === '' || (safe && safeStart && !value.endsWith(' '))) return `${attr}: ${value}`;
  return `${attr}:: ${Buffer.from(value, 'utf8').toString('base64')}`;
}

function entry(dn: string, attrs: readonly (readonly [string, string])[]): string {
  return [ldifLine('dn', dn), ...attrs.map(([a, v]) => ldifLine(a, v)), ''].join('\n') + '\n';
}

export function buildLdif(users: readonly TestUser[], dns: DirectoryDns = MAIN_DNS): string {
  const parts = [
    entry(dns.baseDn, [
      ['objectClass', 'organization'],
      ['o', dns.baseDn.slice('o='.length)],
    ]),
    entry(dns.servicesDn, [
      ['objectClass', 'organizationalUnit'],
      ['ou', 'services'],
    ]),
    entry(dns.bindDn, [
      ['objectClass', 'organizationalRole'],
      ['objectClass', 'simpleSecurityObject'],
      ['cn', 'mmp'],
      ['description', 'the multiplexor service account'],
      ['userPassword', BIND_PASSWORD],
    ]),
    entry(dns.peopleDn, [
      ['objectClass', 'organizationalUnit'],
      ['ou', 'people'],
    ]),
  ];
  for (const user of users) {
    const attrs: [string, string][] = [
      ['objectClass', 'inetOrgPerson'],
      ['objectClass', 'mmpMailUser'],
      ['uid', user.uid],
      ['cn', `${user.localPart} (${user.kind})`],
      ['sn', user.localPart],
      ['mail', user.mail],
      ['userPassword', user.password],
    ];
    for (const host of user.mailHosts) attrs.push(['mailHost', host]);
    for (const host of user.altMailHosts) attrs.push(['mmpAltMailHost', host]);
    parts.push(entry(user.dn, attrs));
  }
  return parts.join('');
}

function modulePath(): string {
  for (const dir of MODULE_PATHS) if (existsSync(join(dir, 'back_mdb.la'))) return dir;
  for (const dir of MODULE_PATHS) if (existsSync(dir)) return dir;
  return MODULE_PATHS[0] ?? '/usr/lib/ldap';
}

/** slapd.conf lines of the replication role: global ones, then the database's own. */
function replicationLines(
  replication: ReplicationRole | undefined,
  dns: DirectoryDns,
): { global: string[]; database: string[] } {
  if (replication === undefined) return { global: [], database: [] };
  // RFC 4533 content synchronisation keys on entryUUID and entryCSN. Without an fsync per
  // write, the consumer copies the population in a tenth of the time (a SIGKILL loses
  // nothing: the pages are in the kernel's cache; only a machine crash would).
  const common = ['index entryCSN,entryUUID eq', 'dbnosync'];
  if (replication.role === 'provider') {
    return {
      global: ['moduleload syncprov'],
      // The checkpoint writes contextCSN to the database after every write, so a consumer's
      // catch-up can be seen by comparing the two servers' contextCSN.
      database: [...common, 'overlay syncprov', 'syncprov-checkpoint 1 1'],
    };
  }
  return {
    global: [],
    database: [
      ...common,
      // refreshAndPersist keeps one search open on the provider; when the provider goes away
      // the consumer retries every second for ever and serves what it has meanwhile.
      `syncrepl rid=${String(replication.rid).padStart(3, '0')}`,
      `  provider=${replication.providerUrl}`,
      '  type=refreshAndPersist',
      '  retry="1 +"',
      `  searchbase="${dns.baseDn}"`,
      '  scope=sub',
      '  bindmethod=simple',
      // the root DN reads userPassword too, so users can bind (PreAuth) at the replica
      `  binddn="${dns.rootDn}"`,
      `  credentials=${ROOT_PASSWORD}`,
      // read-only: writes from clients get a referral to the provider
      `updateref ${replication.providerUrl}`,
    ],
  };
}

export function buildSlapdConf(
  dir: string,
  anonymousRead: boolean,
  dns: DirectoryDns = MAIN_DNS,
  replication?: ReplicationRole,
): string {
  const extra = replicationLines(replication, dns);
  const readers = anonymousRead
    ? ['  by * read']
    : [`  by dn.exact="${dns.bindDn}" read`, '  by users read', '  by * none'];
  return [
    '# generated by @mmp/testbed',
    ...['core', 'cosine', 'inetorgperson'].map(
      (name) => `include ${join(SYSTEM_SCHEMA_DIR, `${name}.schema`)}`,
    ),
    `include ${SCHEMA_FILE}`,
    '',
    `pidfile ${join(dir, 'slapd.pid')}`,
    `argsfile ${join(dir, 'slapd.args')}`,
    `modulepath ${modulePath()}`,
    'moduleload back_mdb',
    ...extra.global,
    'sizelimit unlimited',
    '',
    'database mdb',
    `suffix "${dns.baseDn}"`,
    `rootdn "${dns.rootDn}"`,
    `rootpw ${ROOT_PASSWORD}`,
    `directory ${join(dir, 'db')}`,
    'maxsize 268435456',
    'index objectClass eq',
    'index uid eq,sub',
    'index mail eq',
    'index mailHost eq',
    '',
    '# passwords: only for binding (users bind as themselves for pre-authentication)',
    'access to attrs=userPassword',
    '  by self read',
    '  by anonymous auth',
    '  by * none',
    'access to *',
    ...readers,
    '',
    ...extra.database,
    '',
  ].join('\n');
}

/** Write the configuration and load the entries (slapd is not started yet). */
export async function createLdap(options: LdapOptions): Promise<LdapServer> {
  const { dir, host, port } = options;
  const dns = options.baseDn === undefined ? MAIN_DNS : directoryDns(options.baseDn);
  await mkdir(join(dir, 'db'), { recursive: true, mode: 0o700 });
  const configFile = join(dir, 'slapd.conf');
  const ldifFile = join(dir, 'entries.ldif');
  const logPath = join(dir, 'slapd.log');
  const role = options.replication;
  await writeFile(configFile, buildSlapdConf(dir, options.anonymousRead, dns, role), {
    mode: 0o600,
  });
  // A consumer starts empty and gets every entry (with the provider's entryUUID and entryCSN)
  // from the provider.
  if (role?.role !== 'consumer') {
    await writeFile(ldifFile, buildLdif(options.users, dns), { mode: 0o600 });
    // -w writes the contextCSN a provider hands out to its consumers.
    const flags = role?.role === 'provider' ? ['-q', '-w'] : ['-q'];
    const loaded = await execa('slapadd', [...flags, '-f', configFile, '-l', ldifFile], {
      reject: false,
      all: true,
    });
    if (loaded.exitCode !== 0) {
      throw new Error(`slapadd failed (exit ${loaded.exitCode}):\n${loaded.all}`);
    }
  }

  const url = `ldap://${host}:${port}/`;
  let proc: ServerProcess | undefined;
  let paused = false;
  const running = (): ServerProcess => {
    if (proc === undefined || !proc.running) throw new Error(`slapd on ${url} is not running`);
    return proc;
  };

  const server: LdapServer = {
    url,
    host,
    port,
    baseDn: dns.baseDn,
    peopleDn: dns.peopleDn,
    bindDn: dns.bindDn,
    bindPassword: BIND_PASSWORD,
    rootDn: dns.rootDn,
    rootPassword: ROOT_PASSWORD,
    configFile,
    logPath,
    get running(): boolean {
      return proc?.running ?? false;
    },
    get paused(): boolean {
      return paused && (proc?.running ?? false);
    },
    async start(): Promise<void> {
      if (proc?.running) return;
      paused = false;
      const started = ServerProcess.spawn({
        command: 'slapd',
        // -d keeps slapd in the foreground (its debug output goes to the log file)
        args: ['-d', options.logLevel, '-f', configFile, '-h', url],
        logFile: logPath,
        cwd: dir,
      });
      proc = started;
      await waitUntil(`slapd on ${url}`, () => canConnect(host, port, 500), {
        abort: () => {
          const exit = started.exit;
          if (exit === undefined) return undefined;
          return `slapd exited (${exit.error?.message ?? `code ${exit.code}, signal ${exit.signal}`}); see ${logPath}`;
        },
      });
    },
    async stop(): Promise<void> {
      await proc?.stop();
      paused = false;
    },
    pause(): void {
      running().signal('SIGSTOP');
      paused = true;
    },
    resume(): void {
      running().signal('SIGCONT');
      paused = false;
    },
    async kill(): Promise<void> {
      await proc?.kill();
      paused = false;
    },
    async restart(): Promise<void> {
      await server.stop();
      await server.start();
    },
    async contextCsn(): Promise<string[]> {
      const found = await execa(
        'ldapsearch',
        [
          ...['-x', '-LLL', '-o', 'ldif-wrap=no', '-o', 'nettimeout=2', '-l', '2'],
          ...['-H', url, '-D', dns.rootDn, '-w', ROOT_PASSWORD],
          ...['-s', 'base', '-b', dns.baseDn, 'contextCSN'],
        ],
        { reject: false, stdin: 'ignore', timeout: 5000 },
      );
      if (found.exitCode !== 0) return [];
      return found.stdout
        .split('\n')
        .filter((line) => line.startsWith('contextCSN: '))
        .map((line) => line.slice('contextCSN: '.length).trim())
        .sort();
    },
  };
  return server;
}
