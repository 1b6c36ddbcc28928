// Server processes the benchmark starts (mmp, perdition, nginx, the auth_http service): each in
// a process group of its own, output to a log file, stopped by SIGTERM then SIGKILL of the whole
// group, and killed at exit whatever happens. Memory is read from /proc.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, readdirSync } from 'node:fs';
import { processGroupMembers } from '@mmp/testbed';

const live = new Set<Server>();
let hooked = false;

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const s of live) s.killNow();
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface ServerOptions {
  name: string;
  command: string;
  args: readonly string[];
  env?: Record<string, string>;
  logFile: string;
  cwd?: string;
}

export class Server {
  readonly pid: number;
  exitCode: number | null = null;
  exitSignal: string | null = null;
  private constructor(
    readonly name: string,
    readonly logFile: string,
    private readonly child: ChildProcess,
  ) {
    this.pid = child.pid ?? -1;
    child.once('exit', (code, signal) => {
      this.exitCode = code ?? -1;
      this.exitSignal = signal;
    });
    child.once('error', () => {
      this.exitCode = -1;
    });
  }

  static start(o: ServerOptions): Server {
    hook();
    const fd = openSync(o.logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(o.command, [...o.args], {
        cwd: o.cwd,
        env: o.env ?? (process.env as Record<string, string>),
        detached: true,
        stdio: ['ignore', fd, fd],
      });
    } finally {
      closeSync(fd);
    }
    const server = new Server(o.name, o.logFile, child);
    live.add(server);
    return server;
  }

  get running(): boolean {
    return this.exitCode === null;
  }

  /** Every live process of the group (the leader and what it forked). */
  members(): number[] {
    return this.pid > 0 ? processGroupMembers(this.pid) : [];
  }

  log(lines = 20): string {
    try {
      return readFileSync(this.logFile, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }

  async stop(timeoutMs = 5000): Promise<void> {
    if (this.pid <= 0) return;
    try {
      process.kill(-this.pid, 'SIGTERM');
    } catch {
      // gone
    }
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && this.members().length > 0) await sleep(20);
    if (this.members().length > 0) {
      try {
        process.kill(-this.pid, 'SIGKILL');
      } catch {
        // gone
      }
      const killDeadline = Date.now() + 5000;
      while (Date.now() < killDeadline && this.members().length > 0) await sleep(20);
    }
    live.delete(this);
  }

  killNow(): void {
    if (this.pid > 0) {
      try {
        process.kill(-this.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    live.delete(this);
  }
}

/** Kill every server started here (for signal handlers). */
export function killAllServers(): void {
  for (const s of [...live]) s.killNow();
}

function statusField(pid: number, field: string): number {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'latin1');
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
    return m === null ? 0 : Number(m[1]) * 1024;
  } catch {
    return 0;
  }
}

/** Resident set size of the processes, summed (bytes, from /proc/PID/status VmRSS). */
export function rssBytes(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + statusField(pid, 'VmRSS'), 0);
}

/** Proportional set size (shared pages split among sharers) summed, from smaps_rollup. */
export function pssBytes(pids: readonly number[]): number {
  let sum = 0;
  for (const pid of pids) {
    try {
      const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'latin1');
      const m = /^Pss:\s+(\d+) kB/m.exec(text);
      if (m !== null) sum += Number(m[1]) * 1024;
    } catch {
      // gone
    }
  }
  return sum;
}

/** Direct children of a process (from /proc/PID/task/PID/children, else a /proc scan). */
export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'latin1')
      .trim()
      .split(/\s+/)
      .filter((s) => s !== '')
      .map(Number);
  } catch {
    const out: number[] = [];
    for (const e of readdirSync('/proc')) {
      if (!/^\d+$/.test(e)) continue;
      try {
        const stat = readFileSync(`/proc/${e}/stat`, 'latin1');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        if (ppid === pid) out.push(Number(e));
      } catch {
        // gone
      }
    }
    return out;
  }
}

/** MemAvailable of the machine, bytes. */
export function memAvailable(): number {
  try {
    const m = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'latin1'));
    return m === null ? Number.POSITIVE_INFINITY : Number(m[1]) * 1024;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}

export async function waitForPort(
  host: string,
  port: number,
  server: Server | undefined,
  timeoutMs = 15_000,
): Promise<void> {
  const { connect } = await import('node:net');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host, port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (server !== undefined && !server.running) {
      throw new Error(`${server.name} exited (${server.exitCode}):\n${server.log()}`);
    }
    if (Date.now() > deadline) {
      throw new Error(
        `${server?.name ?? 'server'} not listening on ${host}:${port}:\n${server?.log() ?? ''}`,
      );
    }
    await sleep(50);
  }
}
