// A private HAProxy (Debian `haproxy`, 2.6) in TCP mode: its own configuration in a temporary
// directory, in the foreground (`-db`, no system service), logging to stdout captured in a file,
// one frontend per listener, each with a backend of the given servers, the PROXY protocol towards
// them, TCP health checks, and an admin stats socket from which the tests read UP/DOWN.
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import * as net from 'node:net';
import { join } from 'node:path';
import { privateDir, type PrivateDir } from './cleanup.js';
import { freePort } from './ports.js';
import { ServerProcess } from './process.js';
import { waitUntil } from './wire.js';

/** What the backend servers receive first on every connection. */
export type ProxyProtocolVersion = 'v1' | 'v2' | 'none';
export type BalanceAlgorithm = 'roundrobin' | 'leastconn';

export interface HaproxyServer {
  /** `s0`, `s1`, … by default (letters, digits, `-`, `_`). */
  name?: string;
  host: string;
  port: number;
}

export interface HaproxyListenerOptions {
  /** Frontend and backend name (default `l0`, `l1`, …; letters, digits, `-`, `_`). */
  name?: string;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default: a free port. */
  port?: number;
  /** The servers behind this listener (default: HaproxyOptions.servers). */
  servers?: readonly HaproxyServer[];
}

export interface HaproxyOptions {
  listeners: readonly HaproxyListenerOptions[];
  /** The servers of every listener that names none. */
  servers?: readonly HaproxyServer[];
  /** `send-proxy-v2` (default), `send-proxy` (v1), or nothing. */
  proxyProtocol?: ProxyProtocolVersion;
  /** `check inter`: ms between TCP health checks (default 500). */
  checkIntervalMs?: number;
  /** Failed checks before a server is DOWN (default 1). */
  fall?: number;
  /** Good checks before a DOWN server is UP again (default 1). */
  rise?: number;
  /**
   * `check-send-proxy`: health checks carry a PROXY header even when the traffic does not.
   * (HAProxy already sends one on checks when the traffic has one; see README.)
   */
  checkSendProxy?: boolean;
  /** Default roundrobin. */
  balance?: BalanceAlgorithm;
  /**
   * `option redispatch` with one retry: a connection whose server refuses goes to another one
   * at once, before the checks have marked it DOWN (default false: the checks alone decide).
   */
  redispatch?: boolean;
  /** `timeout client` / `timeout server` (default 30 minutes: idle IMAP sessions stay). */
  idleTimeoutMs?: number;
  /** Live in this directory (a test bed's, say); default a private one of its own. */
  dir?: string;
  /** Keep a private directory after stop() (default: env MMP_TESTBED_KEEP=1). */
  keep?: boolean;
}

export interface HaproxyListener {
  name: string;
  host: string;
  port: number;
  servers: { name: string; host: string; port: number }[];
}

/** One server as the stats socket reports it (`show stat`). */
export interface HaproxyServerState {
  /** The backend, named after its listener. */
  backend: string;
  server: string;
  /** `host:port` */
  address: string;
  /** `UP`, `DOWN`, `MAINT`, `NOLB`, `DRAIN` or `no check`: the first word of HAProxy's status. */
  state: string;
  /** HAProxy's whole status (`UP`, `DOWN 1/2` while going down, …). */
  status: string;
  /** The last check's result (`L4OK`, `L4CON`, …). */
  checkStatus: string;
  /** Sessions now / in total. */
  current: number;
  total: number;
}

export interface Haproxy {
  readonly dir: string;
  readonly configFile: string;
  /** HAProxy's stdout and stderr: start-up warnings, one line per connection, check results. */
  readonly logPath: string;
  /** The admin stats socket (a Unix socket). */
  readonly statsSocket: string;
  readonly listeners: readonly HaproxyListener[];
  /** A listener by name; throws if unknown. */
  listener(name: string): HaproxyListener;
  readonly running: boolean;
  /** Every backend server's state, read from the stats socket. */
  serverStates(): Promise<HaproxyServerState[]>;
  /**
   * Wait until `server` (in every backend that has it, or only in `backend`) is in `state`
   * (`UP`, `DOWN`, …); the timeout (default 10 s) throws with the states last seen.
   */
  waitForServer(
    server: string,
    state: string,
    options?: { backend?: string; timeoutMs?: number },
  ): Promise<void>;
  /** One command on the admin socket (`show info`, `disable server l0/s1`, …); its answer. */
  command(command: string): Promise<string>;
  /** Stop HAProxy and remove a private directory (unless kept); safe to call twice. */
  stop(): Promise<void>;
}

const NAME = /^[A-Za-z0-9_-]+$/;

function checkName(kind: string, name: string): string {
  if (!NAME.test(name))
    throw new Error(`haproxy ${kind} name ${JSON.stringify(name)}: use [A-Za-z0-9_-]`);
  return name;
}

/** `ip:port`, IPv6 in brackets. */
function hostPort(host: string, port: number): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

export function buildHaproxyConf(
  options: HaproxyOptions,
  listeners: readonly HaproxyListener[],
  statsSocket: string,
): string {
  const inter = options.checkIntervalMs ?? 500;
  const proxy = options.proxyProtocol ?? 'v2';
  const idle = options.idleTimeoutMs ?? 30 * 60_000;
  const serverFlags = [
    `check inter ${inter} fall ${options.fall ?? 1} rise ${options.rise ?? 1}`,
    ...(proxy === 'v2' ? ['send-proxy-v2'] : proxy === 'v1' ? ['send-proxy'] : []),
    ...(options.checkSendProxy ? ['check-send-proxy'] : []),
  ].join(' ');
  const lines = [
    '# generated by @mmp/testbed',
    'global',
    '  log stdout format raw local0 info',
    `  stats socket ${statsSocket} mode 600 level admin`,
    '  stats timeout 10s',
    '  maxconn 4096',
    '  nbthread 1',
    '',
    'defaults',
    '  mode tcp',
    '  log global',
    '  option tcplog',
    '  timeout connect 2s',
    // a check that gets no connection within one interval counts as failed
    `  timeout check ${inter}ms`,
    `  timeout client ${idle}ms`,
    `  timeout server ${idle}ms`,
    ...(options.redispatch ? ['  option redispatch', '  retries 1'] : ['  retries 0']),
    '',
  ];
  for (const l of listeners) {
    lines.push(
      `frontend ${l.name}`,
      `  bind ${hostPort(l.host, l.port)}`,
      `  default_backend ${l.name}`,
      '',
      `backend ${l.name}`,
      `  balance ${options.balance ?? 'roundrobin'}`,
      `  default-server ${serverFlags}`,
      ...l.servers.map((s) => `  server ${s.name} ${hostPort(s.host, s.port)}`),
      '',
    );
  }
  return lines.join('\n');
}

/** Send one command to a stats socket, return everything it answers. */
export function statsCommand(
  socketPath: string,
  command: string,
  timeoutMs = 5000,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ path: socketPath });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`haproxy stats socket: no answer to ${command} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('connect', () => socket.write(`${command}\n`));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    // Without `prompt`, HAProxy answers one command and closes.
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
  });
}

/** `show stat` CSV → the servers' rows (not the FRONTEND/BACKEND summaries). */
export function parseShowStat(csv: string): HaproxyServerState[] {
  const [header, ...rows] = csv.split('\n').filter((line) => line.trim() !== '');
  if (header === undefined || !header.startsWith('# ')) {
    throw new Error(`haproxy: unexpected show stat answer: ${csv.slice(0, 200)}`);
  }
  const columns = header.slice(2).split(',');
  const at = (name: string): number => {
    const i = columns.indexOf(name);
    if (i < 0) throw new Error(`haproxy: show stat has no ${name} column`);
    return i;
  };
  const [px, sv, status, check, addr, scur, stot] = [
    at('pxname'),
    at('svname'),
    at('status'),
    at('check_status'),
    at('addr'),
    at('scur'),
    at('stot'),
  ];
  return rows
    .map((row) => row.split(','))
    .filter((f) => f[sv] !== 'FRONTEND' && f[sv] !== 'BACKEND')
    .map((f) => {
      const whole = f[status] ?? '';
      return {
        backend: f[px] ?? '',
        server: f[sv] ?? '',
        address: f[addr] ?? '',
        state: whole === 'no check' ? whole : (whole.split(' ')[0] ?? ''),
        status: whole,
        checkStatus: (f[check] ?? '').replace(/^\* ?/, ''),
        current: Number(f[scur] ?? 0),
        total: Number(f[stot] ?? 0),
      };
    });
}

async function tail(file: string, lines = 20): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** Start a private HAProxy; see HaproxyOptions for the defaults. */
export async function startHaproxy(options: HaproxyOptions): Promise<Haproxy> {
  if (options.listeners.length === 0) throw new Error('haproxy: at least one listener');
  const attempts = options.listeners.every((l) => l.port !== undefined) ? 1 : 3;
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options);
    } catch (error) {
      // A free port may be taken between our probe and HAProxy's bind: try other ones.
      const message = error instanceof Error ? error.message : String(error);
      if (attempt >= attempts || !/cannot bind|address already in use/i.test(message)) throw error;
    }
  }
}

async function startOnce(options: HaproxyOptions): Promise<Haproxy> {
  const listeners: HaproxyListener[] = [];
  for (const [i, l] of options.listeners.entries()) {
    const name = checkName('listener', l.name ?? `l${i}`);
    if (listeners.some((x) => x.name === name)) throw new Error(`haproxy: two listeners ${name}`);
    const servers = l.servers ?? options.servers ?? [];
    if (servers.length === 0) throw new Error(`haproxy: listener ${name} has no servers`);
    const host = l.host ?? '127.0.0.1';
    listeners.push({
      name,
      host,
      port: l.port ?? (await freePort(host)),
      servers: servers.map((s, j) => ({
        name: checkName('server', s.name ?? `s${j}`),
        host: s.host,
        port: s.port,
      })),
    });
  }

  let own: PrivateDir | undefined;
  let dir: string;
  if (options.dir === undefined) {
    own = await privateDir(options.keep);
    dir = own.dir;
  } else {
    dir = await mkdtemp(join(options.dir, 'haproxy-'));
  }
  const configFile = join(dir, 'haproxy.cfg');
  const logPath = join(dir, 'haproxy.log');
  const statsSocket = join(dir, 'stats.sock');
  await writeFile(configFile, buildHaproxyConf(options, listeners, statsSocket), { mode: 0o600 });

  // -db: foreground, no daemon; the configuration path names the directory, so reap.ts finds
  // this process if its owner dies.
  const proc = ServerProcess.spawn({
    command: 'haproxy',
    args: ['-db', '-f', configFile],
    logFile: logPath,
    cwd: dir,
  });
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await proc.stop();
    await own?.remove();
  };

  const states = async (): Promise<HaproxyServerState[]> =>
    parseShowStat(await statsCommand(statsSocket, 'show stat'));

  try {
    // The stats socket is bound after the listeners: once it answers, they accept.
    await waitUntil(
      `haproxy (${configFile})`,
      async () => {
        try {
          return (await statsCommand(statsSocket, 'show info', 1000)).includes('Name: HAProxy');
        } catch {
          return false;
        }
      },
      {
        abort: () => {
          const exit = proc.exit;
          if (exit === undefined) return undefined;
          return `haproxy exited (${exit.error?.message ?? `code ${exit.code}, signal ${exit.signal}`}); see ${logPath}`;
        },
      },
    );
  } catch (error) {
    const log = await tail(logPath);
    await stop();
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(log ? `${message}\n--- haproxy log ---\n${log}` : message, { cause: error });
  }

  return {
    dir,
    configFile,
    logPath,
    statsSocket,
    listeners,
    listener(name) {
      const found = listeners.find((l) => l.name === name);
      if (found === undefined) throw new Error(`haproxy: no listener ${name}`);
      return found;
    },
    get running(): boolean {
      return proc.running;
    },
    serverStates: states,
    async waitForServer(server, state, waitOptions = {}) {
      let last: HaproxyServerState[] = [];
      const matching = (): HaproxyServerState[] =>
        last.filter(
          (s) =>
            s.server === server &&
            (waitOptions.backend === undefined || s.backend === waitOptions.backend),
        );
      try {
        await waitUntil(
          `haproxy server ${server} ${state}`,
          async () => {
            last = await states();
            const found = matching();
            return found.length > 0 && found.every((s) => s.state === state);
          },
          { timeoutMs: waitOptions.timeoutMs ?? 10_000 },
        );
      } catch (error) {
        const seen = matching()
          .map((s) => `${s.backend}/${s.server} ${s.status} (${s.checkStatus})`)
          .join(', ');
        const message = error instanceof Error ? error.message : String(error);
        throw new Error(`${message}; last seen: ${seen || 'no such server'}`, { cause: error });
      }
    },
    command: (command) => statsCommand(statsSocket, command),
    stop,
  };
}
