// The load generator's scenarios, each run inside a worker process (see worker.ts): bounded in
// count and in time, and cheap per operation so that the generator is not the bottleneck.
import { Conn } from './conn.js';

export type Protocol = 'imap' | 'pop3';

export interface Endpoint {
  protocol: Protocol;
  host: string;
  port: number;
}

export interface Account {
  user: string;
  pass: string;
  /** the user's own store: used when the endpoint's host is '' (direct access) */
  host?: string;
}

/** Where this account connects: the endpoint, or its own store for direct access. */
export function hostFor(endpoint: Endpoint, account: Account): string {
  return endpoint.host !== '' ? endpoint.host : (account.host ?? '127.0.0.1');
}

/** IMAP quoted string (RFC 3501): backslash and double quote escaped. */
export function imapQuote(s: string): string {
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

export async function login(
  conn: Conn,
  protocol: Protocol,
  account: Account,
  timeoutMs: number,
): Promise<void> {
  await conn.greeting(timeoutMs);
  if (protocol === 'imap') {
    await conn.imap('a', `LOGIN ${imapQuote(account.user)} ${imapQuote(account.pass)}`, timeoutMs);
  } else {
    await conn.pop(`USER ${account.user}`, timeoutMs);
    await conn.pop(`PASS ${account.pass}`, timeoutMs);
  }
}

export async function logout(conn: Conn, protocol: Protocol, timeoutMs: number): Promise<void> {
  if (protocol === 'imap') await conn.imap('z', 'LOGOUT', timeoutMs);
  else await conn.pop('QUIT', timeoutMs);
  await conn.close(timeoutMs);
}

const now = (): number => performance.now();

/**
 * Tells the parent where the measured window of a job begins and ends ('start', 'end'), so that
 * it samples the targets' CPU over the same window as the operations counted. Resolves once the
 * parent has taken its sample: a session awaits it before it logs out, so that a proxy's
 * per-connection process is still there to be read (see cpu.ts).
 */
export type Mark = (name: 'start' | 'end') => Promise<void>;
const noMark: Mark = () => Promise.resolve();

/** One logged-in session for `use` (which logs out itself), destroyed whatever happens. */
async function inSession<R>(
  endpoint: Endpoint,
  account: Account,
  timeoutMs: number,
  use: (conn: Conn) => Promise<R>,
): Promise<R> {
  const conn = await Conn.connect(hostFor(endpoint, account), endpoint.port, undefined, timeoutMs);
  try {
    await login(conn, endpoint.protocol, account, timeoutMs);
    return await use(conn);
  } finally {
    conn.destroy();
  }
}

export interface LoginsJob {
  kind: 'logins';
  endpoint: Endpoint;
  accounts: Account[];
  concurrency: number;
  warmupMs: number;
  durationMs: number;
  localAddresses: string[];
  timeoutMs: number;
  /**
   * Log in with every account once, in order, and stop (durationMs unused): fills a proxy's
   * lookup cache, so that the measured logins that follow are cache hits.
   */
  eachAccountOnce?: boolean;
}

export interface LoginsResult {
  kind: 'logins';
  cycles: number;
  /** cycles that ended between the 'start' and 'end' marks (the CPU window) */
  windowCycles: number;
  errors: number;
  seconds: number;
  perSecond: number;
  sampleErrors: string[];
}

/** `concurrency` loops of connect, greeting, login, logout, close over random accounts. */
export async function runLogins(job: LoginsJob, mark: Mark = noMark): Promise<LoginsResult> {
  const start = now();
  const countFrom = start + job.warmupMs;
  const stopAt = countFrom + job.durationMs;
  // many sessions begin and end around the marks: nothing to wait for
  const startTimer = setTimeout(() => void mark('start'), job.warmupMs);
  const endTimer = setTimeout(() => void mark('end'), job.warmupMs + job.durationMs);
  let cycles = 0;
  let windowCycles = 0;
  let errors = 0;
  let next = 0;
  const sampleErrors: string[] = [];
  let taken = 0;
  const more = job.eachAccountOnce ? () => taken < job.accounts.length : () => now() < stopAt;
  const pick = job.eachAccountOnce
    ? () => job.accounts[taken++]
    : () => job.accounts[Math.floor(Math.random() * job.accounts.length)];
  const loop = async (): Promise<void> => {
    while (more()) {
      const account = pick();
      if (account === undefined) throw new Error('no accounts');
      const local = job.localAddresses[next++ % Math.max(1, job.localAddresses.length)];
      const began = now();
      let conn: Conn | undefined;
      try {
        conn = await Conn.connect(
          hostFor(job.endpoint, account),
          job.endpoint.port,
          local,
          job.timeoutMs,
        );
        await login(conn, job.endpoint.protocol, account, job.timeoutMs);
        await logout(conn, job.endpoint.protocol, job.timeoutMs);
        if (began >= countFrom) cycles++;
        const ended = now();
        if (ended >= countFrom && ended <= stopAt) windowCycles++;
      } catch (error) {
        conn?.destroy();
        if (began >= countFrom) errors++;
        if (sampleErrors.length < 5) sampleErrors.push(String((error as Error).message ?? error));
        // do not spin on a refused port
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  };
  await Promise.all(Array.from({ length: job.concurrency }, loop));
  clearTimeout(startTimer);
  clearTimeout(endTimer);
  const seconds = (now() - countFrom) / 1000;
  return {
    kind: 'logins',
    cycles,
    windowCycles,
    errors,
    seconds,
    perSecond: cycles / seconds,
    sampleErrors,
  };
}

export interface FetchJob {
  kind: 'fetch';
  endpoint: Endpoint;
  account: Account;
  /** IMAP message number / POP3 message number of the 1 MiB message */
  message: number;
  messageSize: number;
  /**
   * Unmeasured fetches in the same session for this long before the window (besides the first):
   * a Node relay's first hundreds of MiB run while V8 still compiles its path, work that does not
   * recur (README, "CPU per MiB"). The same session, so that a worker process is warmed that the
   * measured fetches then go through.
   */
  warmupMs?: number;
  durationMs: number;
  timeoutMs: number;
}

export interface FetchResult {
  kind: 'fetch';
  /** unmeasured fetches before the window (the first included) */
  warmupFetches: number;
  fetches: number;
  bytes: number;
  seconds: number;
  mibPerSecond: number;
}

/** One session fetching the 1 MiB message over and over (IMAP FETCH BODY[], POP3 RETR). */
export async function runFetch(job: FetchJob, mark: Mark = noMark): Promise<FetchResult> {
  const { endpoint, timeoutMs } = job;
  return inSession(endpoint, job.account, timeoutMs, async (conn) => {
    const fetchOnce =
      endpoint.protocol === 'imap'
        ? async (tag: string): Promise<void> => {
            await conn.imap(tag, `FETCH ${job.message} BODY[]`, timeoutMs);
          }
        : async (): Promise<void> => {
            await conn.popMulti(`RETR ${job.message}`, timeoutMs);
          };
    if (endpoint.protocol === 'imap') await conn.imap('s', 'EXAMINE INBOX', timeoutMs);
    // warm-up: caches, buffers, and the relay's compiled code
    let warmupFetches = 0;
    const warmUntil = now() + (job.warmupMs ?? 0);
    do await fetchOnce(`w${++warmupFetches}`);
    while (now() < warmUntil);
    const bytesBefore = conn.bytesIn;
    await mark('start');
    const start = now();
    const stopAt = start + job.durationMs;
    let fetches = 0;
    while (now() < stopAt) await fetchOnce(`f${++fetches}`);
    const seconds = (now() - start) / 1000;
    await mark('end');
    const bytes = conn.bytesIn - bytesBefore;
    if (bytes < fetches * job.messageSize) {
      throw new Error(`received ${bytes} bytes for ${fetches} fetches of ${job.messageSize}`);
    }
    await logout(conn, endpoint.protocol, timeoutMs);
    return {
      kind: 'fetch',
      warmupFetches,
      fetches,
      bytes,
      seconds,
      mibPerSecond: bytes / 1048576 / seconds,
    };
  });
}

export interface NoopJob {
  kind: 'noop';
  endpoint: Endpoint;
  account: Account;
  warmup: number;
  count: number;
  timeoutMs: number;
}

export interface NoopResult {
  kind: 'noop';
  /** round trips in microseconds, in order */
  micros: number[];
}

/** One IMAP session: NOOP after NOOP, each timed from write to the tagged OK. */
export async function runNoop(job: NoopJob, mark: Mark = noMark): Promise<NoopResult> {
  const { endpoint, timeoutMs } = job;
  return inSession(endpoint, job.account, timeoutMs, async (conn) => {
    const one =
      endpoint.protocol === 'imap'
        ? (i: number) => conn.imap(`n${i}`, 'NOOP', timeoutMs)
        : () => conn.pop('NOOP', timeoutMs);
    for (let i = 0; i < job.warmup; i++) await one(i);
    const micros: number[] = [];
    await mark('start');
    for (let i = 0; i < job.count; i++) {
      const t0 = process.hrtime.bigint();
      await one(i);
      micros.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
    await mark('end');
    await logout(conn, endpoint.protocol, timeoutMs);
    return { kind: 'noop', micros };
  });
}

export interface IdleJob {
  kind: 'idle';
  endpoint: Endpoint;
  accounts: Account[];
  /** sessions this worker tries to hold */
  quota: number;
  /** logins in flight at once */
  inFlight: number;
  localAddresses: string[];
  timeoutMs: number;
  /** stop opening after this long */
  maxMs: number;
  /** stop opening after this many failures in a row */
  maxConsecutiveFailures: number;
}

export interface IdleProgress {
  kind: 'idle';
  held: number;
  failed: number;
  /** still opening sessions */
  opening: boolean;
  sampleErrors: string[];
}

/**
 * Open authenticated IMAP sessions and keep them open (idle, no command after LOGIN) until
 * `release()`. `progress()` is polled by the worker and reported to the parent.
 */
export class IdleRamp {
  private readonly conns: Conn[] = [];
  private failed = 0;
  private consecutive = 0;
  private opening = true;
  private stopRequested = false;
  private readonly sampleErrors: string[] = [];
  private next = 0;

  constructor(private readonly job: IdleJob) {}

  progress(): IdleProgress {
    return {
      kind: 'idle',
      held: this.conns.filter((c) => !c.isClosed).length,
      failed: this.failed,
      opening: this.opening,
      sampleErrors: [...this.sampleErrors],
    };
  }

  stopOpening(): void {
    this.stopRequested = true;
  }

  async run(): Promise<void> {
    const { job } = this;
    const stopAt = now() + job.maxMs;
    let started = 0;
    const loop = async (): Promise<void> => {
      while (
        !this.stopRequested &&
        started < job.quota &&
        now() < stopAt &&
        this.consecutive < job.maxConsecutiveFailures
      ) {
        started++;
        const account = job.accounts[this.next % job.accounts.length];
        const local = job.localAddresses[this.next % Math.max(1, job.localAddresses.length)];
        this.next++;
        if (account === undefined) throw new Error('no accounts');
        let conn: Conn | undefined;
        try {
          conn = await Conn.connect(
            hostFor(job.endpoint, account),
            job.endpoint.port,
            local,
            job.timeoutMs,
          );
          await login(conn, job.endpoint.protocol, account, job.timeoutMs);
          this.conns.push(conn);
          this.consecutive = 0;
        } catch (error) {
          conn?.destroy();
          this.failed++;
          this.consecutive++;
          started--;
          if (this.sampleErrors.length < 5) {
            this.sampleErrors.push(String((error as Error).message ?? error));
          }
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    };
    await Promise.all(Array.from({ length: job.inFlight }, loop));
    this.opening = false;
  }

  release(): void {
    for (const c of this.conns) c.destroy();
    this.conns.length = 0;
  }
}

export type Job = LoginsJob | FetchJob | NoopJob;
export type JobResult = LoginsResult | FetchResult | NoopResult;

export function runJob(job: Job, mark: Mark = noMark): Promise<JobResult> {
  switch (job.kind) {
    case 'logins':
      return runLogins(job, mark);
    case 'fetch':
      return runFetch(job, mark);
    case 'noop':
      return runNoop(job, mark);
  }
}
