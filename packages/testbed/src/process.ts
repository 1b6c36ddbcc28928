// Long-running server processes (slapd, the Dovecot master), each in a process group of its
// own, stdio on files, stopped with SIGTERM then SIGKILL, and killed on process exit.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { waitUntil } from './wire.js';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
}

export interface SpawnOptions {
  command: string;
  args: readonly string[];
  /** stdout and stderr are appended to this file; stdin is /dev/null. */
  logFile: string;
  cwd?: string;
}

const live = new Set<ServerProcess>();

/** Fault injection on a server of the test bed (slapd, a Dovecot store). */
export interface ServerControls {
  /**
   * SIGSTOP every process of the server: the kernel still completes TCP handshakes on its
   * listening sockets, but nothing reads or answers (a hung server). Throws if not running.
   */
  pause(): void;
  /** SIGCONT: carries on where it stopped; queued connections are then served. */
  resume(): void;
  /** Paused and not resumed yet. */
  readonly paused: boolean;
  /** SIGKILL every process of the server (a crash); start() brings it back. */
  kill(): Promise<void>;
  /** stop() then start(): back on the same address and ports, with the same data. */
  restart(): Promise<void>;
}

/** Processes (not zombies) whose process group is `pgid`, read from /proc (Linux). */
export function processGroupMembers(pgid: number): number[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return groupAlive(pgid) ? [pgid] : [];
  }
  const members: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'latin1');
    } catch {
      continue;
    }
    // pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const state = rest[0];
    const pgrp = Number(rest[2]);
    if (pgrp === pgid && state !== 'Z' && state !== 'X') members.push(Number(entry));
  }
  return members;
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // already gone
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class ServerProcess {
  readonly pid: number;
  readonly command: string;
  readonly logFile: string;
  readonly exited: Promise<ExitInfo>;
  private exitInfo: ExitInfo | undefined;
  private readonly child: ChildProcess;

  private constructor(child: ChildProcess, command: string, logFile: string) {
    this.child = child;
    this.command = command;
    this.logFile = logFile;
    this.pid = child.pid ?? -1;
    this.exited = new Promise<ExitInfo>((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
      });
      child.once('error', (error) => {
        this.exitInfo = { code: null, signal: null, error };
        resolve(this.exitInfo);
      });
    });
    void this.exited.then(() => {
      if (!this.groupRunning()) live.delete(this);
    });
  }

  static spawn(options: SpawnOptions): ServerProcess {
    const fd = openSync(options.logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(options.command, [...options.args], {
        cwd: options.cwd,
        detached: true,
        stdio: ['ignore', fd, fd],
      });
    } finally {
      closeSync(fd);
    }
    child.unref();
    const server = new ServerProcess(child, options.command, options.logFile);
    if (server.pid > 0) live.add(server);
    return server;
  }

  /** The leader has not exited yet. */
  get running(): boolean {
    return this.exitInfo === undefined;
  }

  get exit(): ExitInfo | undefined {
    return this.exitInfo;
  }

  /** Any process of the group (the leader or its children) still alive. */
  groupRunning(): boolean {
    if (this.pid <= 0) return false;
    return this.running || processGroupMembers(this.pid).length > 0;
  }

  /**
   * SIGTERM to the whole process group (the Dovecot master alone takes a second to shut its
   * children down; all at once takes a few milliseconds), then wait up to `timeoutMs` for every
   * process of the group to be gone; SIGKILL the group after that.
   */
  async stop(timeoutMs = 5000): Promise<void> {
    if (this.pid <= 0 || !this.groupRunning()) {
      live.delete(this);
      return;
    }
    killGroup(this.pid, 'SIGTERM');
    // A paused (SIGSTOPped) group keeps SIGTERM pending until it runs again.
    killGroup(this.pid, 'SIGCONT');
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && this.groupRunning()) await sleep(10);
    if (this.groupRunning()) {
      killGroup(this.pid, 'SIGKILL');
      const killDeadline = Date.now() + 2000;
      while (Date.now() < killDeadline && this.groupRunning()) await sleep(10);
    }
    if (this.running) await Promise.race([this.exited, sleep(1000)]);
    live.delete(this);
  }

  /**
   * Send `signal` to every process of the group: SIGSTOP freezes a server whose kernel listen
   * queue still accepts connections (a hung server), SIGCONT thaws it.
   */
  signal(signal: NodeJS.Signals): void {
    if (this.pid > 0 && this.groupRunning()) killGroup(this.pid, signal);
  }

  /** SIGKILL the whole group (a crash: no clean-up by the server) and wait until it is gone. */
  async kill(): Promise<void> {
    if (this.pid > 0 && this.groupRunning()) {
      killGroup(this.pid, 'SIGKILL');
      const deadline = Date.now() + 5000;
      while (Date.now() < deadline && this.groupRunning()) await sleep(10);
    }
    if (this.running) await Promise.race([this.exited, sleep(1000)]);
    live.delete(this);
  }

  /** Synchronous last resort, for process exit handlers. */
  killNow(): void {
    if (this.pid > 0 && this.groupRunning()) killGroup(this.pid, 'SIGKILL');
    live.delete(this);
  }
}

/** SIGKILL every server process group started by this process and not yet stopped. */
export function killAllServerProcesses(): void {
  for (const server of [...live]) server.killNow();
}

/** Live processes (not zombies) whose command line contains `needle`, read from /proc. */
export function findProcesses(needle: string): { pid: number; cmdline: string }[] {
  const found: { pid: number; cmdline: string }[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return found;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'latin1').replace(/\0/g, ' ').trim();
      const stat = readFileSync(`/proc/${entry}/stat`, 'latin1');
      const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
      if (state !== 'Z' && state !== 'X' && cmdline.includes(needle)) {
        found.push({ pid: Number(entry), cmdline });
      }
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** Live (not zombie) children of `pid`, by the parent field of /proc/N/stat (Linux). */
export function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'latin1');
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(ppid) === pid && state !== 'Z' && state !== 'X') children.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return children;
}

/** Who a process runs as: real, effective, saved and filesystem uids and gids, and its
 * supplementary groups (/proc/PID/status). */
export function credentialsOf(pid: number): { uids: number[]; gids: number[]; groups: number[] } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number[] =>
    (new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(status)?.[1] ?? '')
      .trim()
      .split(/\s+/)
      .filter((x) => x !== '')
      .map(Number);
  return { uids: field('Uid'), gids: field('Gid'), groups: field('Groups') };
}

/** The workers of an ImapProxy/PopProxy primary (its children), once it has started them. */
export async function workersOf(primary: number, timeoutMs = 10_000): Promise<number[]> {
  await waitUntil(`workers of ${primary}`, () => Promise.resolve(childrenOf(primary).length > 0), {
    timeoutMs,
  });
  return childrenOf(primary);
}
