// The things under test, each reachable on loopback for IMAP and POP3: Dovecot itself, mmp
// (ImapProxy / PopProxy), perdition (one process per protocol, LDAP popmap), the nginx mail
// proxy (with our auth_http service), socat (a byte relay to one store: the floor a relay
// costs in C) and two mmp behind HAProxy (what the balancer hop of issue 16 costs). Each knows its
// processes, for memory and CPU figures.
import { existsSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NODE_FLAGS } from '@mmp/proxy/runtime';
import { freePort, startHaproxy } from '@mmp/testbed';
import { haproxyGroup } from '../bedProcs.js';
import { Server, childrenOf, waitForPort } from '../procs.js';
import type { Protocol } from '../load/scenarios.js';
import type { TargetGroups } from '../pin.js';

export interface Directory {
  host: string;
  port: number;
  baseDn: string;
  bindDn: string;
  bindPassword: string;
}

export interface Backend {
  ldap: Directory;
  imapPort: number;
  pop3Port: number;
}

export interface Running {
  /** where to connect per protocol, or why that protocol is not available */
  endpoints: Partial<Record<Protocol, { host: string; port: number }>>;
  missing: Partial<Record<Protocol, string>>;
  /** processes whose memory counts as the proxy's (for one protocol's instance) */
  pids(protocol?: Protocol): number[];
  /** a short note for the report (worker count, buffer size …) */
  note?: string;
  /** process groups whose CPU counts as the proxy's, its auth service's (nginx), and its load
   * balancer's (HAProxy in front of several mmp) */
  groups: TargetGroups;
  /** it looks users up in the directory (slapd's CPU is then part of its cost) */
  usesDirectory: boolean;
  /** it can route a login (socat relays to one store only: no login phases) */
  routesLogins: boolean;
  stop(): Promise<void>;
}

const leaders = (servers: readonly Server[]): number[] =>
  servers.filter((s) => s.running).map((s) => s.pid);

const LISTEN = '127.0.0.1';

async function startAll(servers: Server[], checks: [Server, number][]): Promise<void> {
  try {
    await Promise.all(checks.map(([s, port]) => waitForPort(LISTEN, port, s)));
  } catch (error) {
    await Promise.all(servers.map((s) => s.stop()));
    throw error;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- mmp

export function proxyBin(protocol: Protocol): string {
  const main = fileURLToPath(import.meta.resolve('@mmp/proxy'));
  return join(dirname(main), 'bin', protocol === 'imap' ? 'ImapProxy.js' : 'PopProxy.js');
}

/** Node flags for mmp from MMP_BENCH_NODE_ARGS (profiling a run), split at spaces. */
function nodeArgs(): string[] {
  return (process.env.MMP_BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
}

/**
 * ImapProxy and PopProxy with NumThreads = `threads`. A protocol whose executable refuses to
 * run (not implemented yet) is reported missing; NumThreads > 0 that forks no worker likewise.
 * `extraEnv`: more parameters (the PROXY protocol behind a balancer).
 */
export async function startMmp(
  dir: string,
  b: Backend,
  threads: number,
  extraEnv: Record<string, string> = {},
): Promise<Running> {
  const servers: Server[] = [];
  const byProtocol: Partial<Record<Protocol, Server>> = {};
  const endpoints: Running['endpoints'] = {};
  const missing: Running['missing'] = {};
  for (const protocol of ['imap', 'pop3'] as const) {
    const port = await freePort(LISTEN);
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      ListenPort: `${LISTEN}:${port}`,
      LDAPHost: `${b.ldap.host}:${b.ldap.port}`,
      BaseDN: b.ldap.baseDn,
      BindDN: b.ldap.bindDn,
      BindPass: b.ldap.bindPassword,
      BacksidePort: String(protocol === 'imap' ? b.imapPort : b.pop3Port),
      // The operator's defaults (issue 18): LogLevel is mmp's own (1: a record per connection
      // and login), written to a file. MMP_BENCH_LOG_LEVEL sets another, for diagnosis.
      ...(process.env.MMP_BENCH_LOG_LEVEL !== undefined
        ? { LogLevel: process.env.MMP_BENCH_LOG_LEVEL }
        : {}),
      LogDir: dir,
      NumThreads: String(threads),
      // The idle ramp holds up to 50,000 sessions from 16 addresses of 127.0.1.0/24 (bench.ts):
      // capacity, not protection, is measured there. The attack run's clients (127.0.7/8.x) keep
      // the default per-address limits.
      MaxClientConnections: '1000000',
      ConnectionLimitExempt: '127.0.1.0/24',
      // As an installed instance runs (issue 18, point 4): started by root with RunAsUser the
      // package's user, for which nobody stands in here: a root primary that binds the listeners
      // and its workers (one with NumThreads 0) serving as that user.
      ...(process.getuid?.() === 0 ? { RunAsUser: 'nobody' } : {}),
      ...extraEnv,
    };
    const server = Server.start({
      name: `mmp ${protocol} N=${threads}`,
      command: process.execPath,
      // as mmp-setup's start scripts run it
      // MMP_BENCH_NODE_ARGS: more Node flags, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`
      args: [...NODE_FLAGS, ...nodeArgs(), proxyBin(protocol)],
      env,
      logFile: join(dir, `mmp-${protocol}-${threads}.out`),
    });
    servers.push(server);
    try {
      await waitForPort(LISTEN, port, server);
    } catch (error) {
      const text = server.log(3).trim() || String(error);
      missing[protocol] = /not available yet/.test(text)
        ? 'not implemented'
        : `failed: ${text.slice(0, 80)}`;
      await server.stop();
      continue;
    }
    if (threads > 0) {
      // give the workers a moment to fork
      let forked = 0;
      for (let i = 0; i < 40 && forked < threads; i++) {
        forked = childrenOf(server.pid).length;
        if (forked < threads) await sleep(50);
      }
      if (forked === 0) {
        missing[protocol] = 'NumThreads not implemented';
        await server.stop();
        continue;
      }
    }
    endpoints[protocol] = { host: LISTEN, port };
    byProtocol[protocol] = server;
  }
  return {
    endpoints,
    missing,
    pids: (protocol) =>
      (protocol === undefined ? servers : [byProtocol[protocol]])
        .filter((s): s is Server => s !== undefined && s.running)
        .flatMap((s) => s.members()),
    note: threads > 0 ? `NumThreads=${threads}` : undefined,
    groups: { proxy: () => leaders(servers) },
    usesDirectory: true,
    routesLogins: true,
    stop: async () => {
      await Promise.all(servers.map((s) => s.stop()));
    },
  };
}

// ---------------------------------------------------------------- mmp behind HAProxy

/** What each mmp behind the balancer is told (README "Many multiplexors"): the client's address
 * comes in HAProxy's PROXY v2 header, from HAProxy on loopback only. */
export const BEHIND_HAPROXY_ENV: Readonly<Record<string, string>> = {
  ProxyProtocol: 'ListenPort',
  ProxyProtocolTrustedNetworks: LISTEN,
};

/** HAProxy's TCP check interval here: often enough to see a server UP soon after it starts,
 * rare enough that the checks (a connection each to every mmp) cost nothing measurable. */
const HAPROXY_CHECK_MS = 1000;

/**
 * `instances` mmp N=0 (ImapProxy and PopProxy each) behind the test bed's HAProxy (TCP mode,
 * round robin, `send-proxy-v2`, health checks; `startHaproxy` of @mmp/testbed, the configuration
 * the scale-out tests use): the clients connect to HAProxy. The proxy part's CPU is both mmp's,
 * HAProxy's is the balancer part.
 */
export async function startMmpBehindHaproxy(
  dir: string,
  b: Backend,
  instances = 2,
): Promise<Running> {
  const mmps: Running[] = [];
  const stopAll = async (): Promise<void> => {
    await Promise.all(mmps.map((m) => m.stop()));
  };
  try {
    for (let i = 0; i < instances; i++) {
      const sub = join(dir, `mmp${i}`);
      await mkdir(sub, { recursive: true });
      await chmod(sub, 0o777);
      mmps.push(await startMmp(sub, b, 0, BEHIND_HAPROXY_ENV));
    }
    const protocols = (['imap', 'pop3'] as const).filter((p) =>
      mmps.every((m) => m.endpoints[p] !== undefined),
    );
    if (protocols.length === 0) throw new Error('no protocol started on every mmp');
    const haproxy = await startHaproxy({
      dir,
      proxyProtocol: 'v2',
      checkIntervalMs: HAPROXY_CHECK_MS,
      listeners: protocols.map((p) => ({
        name: p,
        host: LISTEN,
        servers: mmps.map((m, i) => {
          const e = m.endpoints[p] ?? { host: LISTEN, port: 0 };
          return { name: `mmp${i}`, host: e.host, port: e.port };
        }),
      })),
    });
    try {
      for (let i = 0; i < instances; i++) await haproxy.waitForServer(`mmp${i}`, 'UP');
    } catch (error) {
      await haproxy.stop();
      throw error;
    }
    const haproxyPids = (): number[] => {
      const group = haproxyGroup(haproxy.configFile);
      return group === undefined ? [] : [group];
    };
    const endpoints: Running['endpoints'] = {};
    for (const l of haproxy.listeners)
      if (l.name === 'imap' || l.name === 'pop3')
        endpoints[l.name] = { host: l.host, port: l.port };
    return {
      endpoints,
      missing: Object.assign({}, ...mmps.map((m) => m.missing)) as Running['missing'],
      pids: (protocol) => [...mmps.flatMap((m) => m.pids(protocol)), ...haproxyPids()],
      note: `${instances} mmp N=0 behind HAProxy (TCP, round robin, send-proxy-v2, nbthread 1, a check every ${HAPROXY_CHECK_MS} ms)`,
      groups: {
        proxy: () => mmps.flatMap((m) => m.groups.proxy()),
        balancer: haproxyPids,
      },
      usesDirectory: true,
      routesLogins: true,
      stop: async () => {
        await haproxy.stop();
        await stopAll();
      },
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

// ---------------------------------------------------------------- perdition

export const PERDITION_LDAP_LIBS = [
  '/usr/lib/x86_64-linux-gnu/libperditiondb_ldap.so.0',
  '/usr/lib/aarch64-linux-gnu/libperditiondb_ldap.so.0',
  '/usr/lib/libperditiondb_ldap.so.0',
];

/**
 * perdition's LDAP popmap URL: LDAPv3 (its default, v2, is refused by slapd 2.5), a subtree
 * search below the base DN for (uid=%s) returning uid and mailHost (no port attribute: the
 * default --outgoing_port applies), bound as the service account (commas in the DN as %2c).
 */
export function perditionLdapUrl(d: Directory): string {
  const bindName = d.bindDn.replace(/%/g, '%25').replace(/,/g, '%2c').replace(/\?/g, '%3f');
  const bindPw = d.bindPassword.replace(/%/g, '%25').replace(/,/g, '%2c');
  return `3:ldap://${d.host}:${d.port}/${d.baseDn}?uid,mailHost?sub?(uid=%s)?!bindname=${bindName},x-bindpw=${bindPw}`;
}

export function perditionArgs(o: {
  protocol: Protocol;
  port: number;
  outgoingPort: number;
  ldapLib: string;
  ldap: Directory;
  configFile: string;
  logFile: string;
  pidFile: string;
}): string[] {
  return [
    '--no_daemon',
    '--config_file',
    o.configFile,
    '--protocol',
    o.protocol === 'imap' ? 'IMAP4' : 'POP3',
    '--bind_address',
    LISTEN,
    '--listen_port',
    String(o.port),
    '--outgoing_port',
    String(o.outgoingPort),
    '--map_library',
    o.ldapLib,
    '--map_library_opt',
    perditionLdapUrl(o.ldap),
    '--no_lookup',
    '--ssl_mode',
    'none',
    '--connection_limit',
    '0',
    '--timeout',
    '0',
    '--authenticate_timeout',
    '120',
    '--quiet',
    '--log_facility',
    o.logFile,
    '--pid_file',
    o.pidFile,
  ];
}

export const PERDITION_NOFILE = 256;

export async function startPerdition(dir: string, b: Backend): Promise<Running> {
  const ldapLib = PERDITION_LDAP_LIBS.find((p) => existsSync(p));
  if (ldapLib === undefined)
    throw new Error('perdition-ldap is not installed (no libperditiondb_ldap)');
  const configFile = join(dir, 'perdition.conf');
  await writeFile(configFile, '# empty: everything is on the command line\n');
  const servers: Server[] = [];
  const byProtocol: Partial<Record<Protocol, Server>> = {};
  const checks: [Server, number][] = [];
  const endpoints: Running['endpoints'] = {};
  for (const protocol of ['imap', 'pop3'] as const) {
    const port = await freePort(LISTEN);
    const logFile = join(dir, `perdition-${protocol}.log`);
    // perdition drops to nobody and then reopens its log: the file and the way to it must allow it
    await writeFile(logFile, '');
    await chmod(logFile, 0o666);
    const server = Server.start({
      name: `perdition ${protocol}`,
      // Each perdition process holds a handful of descriptors, but a session closes every
      // descriptor number up to RLIMIT_NOFILE (20,000 here) on its way: a lower limit spares it.
      command: '/bin/sh',
      args: [
        '-c',
        `ulimit -n ${PERDITION_NOFILE} && exec perdition "$@"`,
        'perdition',
        ...perditionArgs({
          protocol,
          port,
          outgoingPort: protocol === 'imap' ? b.imapPort : b.pop3Port,
          ldapLib,
          ldap: b.ldap,
          configFile,
          logFile,
          pidFile: join(dir, `perdition-${protocol}.pid`),
        }),
      ],
      logFile: join(dir, `perdition-${protocol}.out`),
    });
    servers.push(server);
    byProtocol[protocol] = server;
    checks.push([server, port]);
    endpoints[protocol] = { host: LISTEN, port };
  }
  await startAll(servers, checks);
  return {
    endpoints,
    missing: {},
    pids: (protocol) =>
      (protocol === undefined ? servers : [byProtocol[protocol]]).flatMap(
        (s) => s?.members() ?? [],
      ),
    note: 'process per connection',
    groups: { proxy: () => leaders(servers) },
    usesDirectory: true,
    routesLogins: true,
    stop: async () => {
      await Promise.all(servers.map((s) => s.stop()));
    },
  };
}

// ---------------------------------------------------------------- nginx

export const NGINX_MAIL_MODULES = [
  '/usr/lib/nginx/modules/ngx_mail_module.so',
  '/usr/share/nginx/modules/ngx_mail_module.so',
];

export function nginxConf(o: {
  dir: string;
  module: string;
  workers: number;
  authPort: number;
  imapPort: number;
  pop3Port: number;
  proxyBuffer?: string;
}): string {
  return [
    '# generated by @mmp/bench',
    `load_module ${o.module};`,
    'daemon off;',
    'master_process on;',
    `worker_processes ${o.workers};`,
    // 20,000 open files per process at most; each session holds two (client and store)
    'worker_rlimit_nofile 19500;',
    `pid ${join(o.dir, 'nginx.pid')};`,
    `error_log ${join(o.dir, 'nginx-error.log')} warn;`,
    'events {',
    '  worker_connections 19000;',
    // the mail module's listen has no reuseport (1.22): with the accept mutex on, a worker
    // short of free connections stops accepting and the others take the new sessions
    `  accept_mutex ${o.workers > 2 ? 'on' : 'off'};`,
    '}',
    'mail {',
    `  auth_http 127.0.0.1:${o.authPort}/auth;`,
    '  auth_http_timeout 10s;',
    '  proxy_pass_error_message on;',
    '  imap_auth login plain;',
    '  pop3_auth plain;',
    '  imap_capabilities IMAP4rev1;',
    '  pop3_capabilities USER UIDL TOP;',
    ...(o.proxyBuffer === undefined ? [] : [`  proxy_buffer ${o.proxyBuffer};`]),
    '  proxy_timeout 1h;',
    '  timeout 120s;',
    '  server {',
    `    listen 127.0.0.1:${o.imapPort};`,
    '    protocol imap;',
    '    proxy on;',
    '  }',
    '  server {',
    `    listen 127.0.0.1:${o.pop3Port};`,
    '    protocol pop3;',
    '    proxy on;',
    '  }',
    '}',
    '',
  ].join('\n');
}

export async function startNginx(
  dir: string,
  b: Backend,
  workers: number,
  proxyBuffer: string | undefined,
): Promise<Running> {
  const module = NGINX_MAIL_MODULES.find((p) => existsSync(p));
  if (module === undefined) throw new Error('libnginx-mod-mail is not installed');
  const authPort = await freePort(LISTEN);
  const auth = Server.start({
    name: 'auth_http',
    command: process.execPath,
    args: [
      fileURLToPath(new URL('../authHttpMain.js', import.meta.url)),
      JSON.stringify({
        host: LISTEN,
        port: authPort,
        ldap: {
          url: `ldap://${b.ldap.host}:${b.ldap.port}`,
          baseDn: b.ldap.baseDn,
          bindDn: b.ldap.bindDn,
          bindPassword: b.ldap.bindPassword,
        },
        ports: { imap: b.imapPort, pop3: b.pop3Port },
      }),
    ],
    logFile: join(dir, 'auth-http.out'),
  });
  const imapPort = await freePort(LISTEN);
  const pop3Port = await freePort(LISTEN);
  const nginxDir = join(dir, `nginx-${workers}`);
  await mkdir(nginxDir, { recursive: true });
  const conf = join(nginxDir, 'nginx.conf');
  await writeFile(
    conf,
    nginxConf({ dir: nginxDir, module, workers, authPort, imapPort, pop3Port, proxyBuffer }),
  );
  const nginx = Server.start({
    name: 'nginx',
    command: 'nginx',
    args: ['-c', conf, '-p', nginxDir, '-e', join(nginxDir, 'nginx-error.log')],
    logFile: join(nginxDir, 'nginx.out'),
  });
  await startAll(
    [auth, nginx],
    [
      [auth, authPort],
      [nginx, imapPort],
      [nginx, pop3Port],
    ],
  );
  return {
    endpoints: { imap: { host: LISTEN, port: imapPort }, pop3: { host: LISTEN, port: pop3Port } },
    missing: {},
    // the auth_http service's memory does not grow per session: only nginx's processes count
    pids: () => nginx.members(),
    note: `${workers} workers, proxy_buffer ${proxyBuffer ?? 'default (one page)'}`,
    groups: { proxy: () => leaders([nginx]), auth: () => leaders([auth]) },
    usesDirectory: true,
    routesLogins: true,
    stop: async () => {
      await Promise.all([nginx.stop(), auth.stop()]);
    },
  };
}

// ---------------------------------------------------------------- Dovecot itself

/** Each client connects to its own user's store (host '' = the account's store). */
export function direct(b: Backend): Running {
  return {
    endpoints: {
      imap: { host: '', port: b.imapPort },
      pop3: { host: '', port: b.pop3Port },
    },
    missing: {},
    pids: () => [],
    groups: { proxy: () => [] },
    usesDirectory: false,
    routesLogins: true,
    stop: async () => undefined,
  };
}

// ---------------------------------------------------------------- socat

/** socat's arguments: a forking TCP relay with 64 KiB buffers, Nagle off on both sides. */
export function socatArgs(listenPort: number, storeHost: string, storePort: number): string[] {
  return [
    '-b',
    '65536',
    `TCP-LISTEN:${listenPort},bind=${LISTEN},fork,reuseaddr,nodelay,backlog=1024`,
    `TCP:${storeHost}:${storePort},nodelay`,
  ];
}

/**
 * socat relaying to one store (the one the fetch and NOOP account lives on): one process per
 * connection, as a C relay without a directory costs. Only for the fetch and NOOP phases.
 */
export async function startSocat(dir: string, b: Backend, storeHost: string): Promise<Running> {
  const servers: Server[] = [];
  const byProtocol: Partial<Record<Protocol, Server>> = {};
  const checks: [Server, number][] = [];
  const endpoints: Running['endpoints'] = {};
  for (const protocol of ['imap', 'pop3'] as const) {
    const port = await freePort(LISTEN);
    const server = Server.start({
      name: `socat ${protocol}`,
      command: 'socat',
      args: socatArgs(port, storeHost, protocol === 'imap' ? b.imapPort : b.pop3Port),
      logFile: join(dir, `socat-${protocol}.out`),
    });
    servers.push(server);
    byProtocol[protocol] = server;
    checks.push([server, port]);
    endpoints[protocol] = { host: LISTEN, port };
  }
  await startAll(servers, checks);
  return {
    endpoints,
    missing: {},
    pids: (protocol) =>
      (protocol === undefined ? servers : [byProtocol[protocol]]).flatMap(
        (s) => s?.members() ?? [],
      ),
    note: `-b 65536, one process per connection, to store ${storeHost}`,
    groups: { proxy: () => leaders(servers) },
    usesDirectory: false,
    routesLogins: false,
    stop: async () => {
      await Promise.all(servers.map((s) => s.stop()));
    },
  };
}
