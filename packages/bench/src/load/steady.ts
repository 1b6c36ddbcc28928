// Legitimate clients for the attack and chaos runs: loops of connect, login, EXAMINE, FETCH of a
// small message, LOGOUT (each cycle recorded with its times and outcome), and long sessions that
// log in once and send NOOP at an interval until the end (each recorded with its store, its local
// address and port, and when it was lost, if it was). Times are epoch milliseconds, so that the
// parent can set them against the faults it injected.
import { Conn } from './conn.js';
import { type Account, type Endpoint, hostFor, imapQuote } from './scenarios.js';
import { type CyclePhase, type LoginOutcome, answerIn, classifyFailure } from './outcome.js';

export interface SteadyJob {
  kind: 'steady';
  endpoint: Endpoint;
  accounts: Account[];
  /** concurrent login+fetch loops */
  concurrency: number;
  localAddresses: string[];
  /** start this long after the job (attackers ramp up first) */
  delayMs: number;
  durationMs: number;
  timeoutMs: number;
  /** message fetched in each cycle (a small one) */
  fetchMessage: number;
  /** accounts for long sessions, one session each */
  longAccounts: Account[];
  noopIntervalMs: number;
}

/** One login cycle: [start, end, outcome, store host]. */
export type Attempt = [number, number, LoginOutcome, string];

export interface LongSession {
  store: string;
  /** the client's address and port, as the proxy sees it (`127.0.8.3:40112`) */
  local: string;
  /** logged in (false: its login failed, it never counted) */
  loggedIn: boolean;
  lostAt?: number;
  lostReason?: string;
}

export interface SteadyResult {
  kind: 'steady';
  started: number;
  ended: number;
  attempts: Attempt[];
  longSessions: LongSession[];
  sampleErrors: string[];
  /** CPU this load process spent from `started` to `ended` (µs): the clients' own cost */
  cpuMicros: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function cycle(
  job: SteadyJob,
  account: Account,
  local: string | undefined,
): Promise<{ outcome: LoginOutcome; error?: string }> {
  const t = job.timeoutMs;
  let phase: CyclePhase = 'connect';
  let conn: Conn | undefined;
  try {
    conn = await Conn.connect(hostFor(job.endpoint, account), job.endpoint.port, local, t);
    phase = 'greeting';
    await conn.greeting(t);
    phase = 'login';
    await conn.imap('a', `LOGIN ${imapQuote(account.user)} ${imapQuote(account.pass)}`, t);
    phase = 'session';
    await conn.imap('b', 'EXAMINE INBOX', t);
    await conn.imap('c', `FETCH ${job.fetchMessage} BODY[]`, t);
    await conn.imap('z', 'LOGOUT', t);
    await conn.close(t);
    return { outcome: 'ok' };
  } catch (error) {
    conn?.destroy();
    const text = error instanceof Error ? error.message : String(error);
    return { outcome: classifyFailure(phase, answerIn(text), text), error: text };
  }
}

async function longSession(
  job: SteadyJob,
  account: Account,
  local: string | undefined,
  stopAt: number,
): Promise<LongSession> {
  const t = job.timeoutMs;
  const store = account.host ?? '?';
  let conn: Conn;
  try {
    conn = await Conn.connect(hostFor(job.endpoint, account), job.endpoint.port, local, t);
  } catch (error) {
    return { store, local: '', loggedIn: false, lostReason: String(error) };
  }
  const here = `${conn.socket.localAddress ?? '?'}:${conn.socket.localPort ?? 0}`;
  try {
    await conn.greeting(t);
    await conn.imap('a', `LOGIN ${imapQuote(account.user)} ${imapQuote(account.pass)}`, t);
    await conn.imap('b', 'EXAMINE INBOX', t);
  } catch (error) {
    conn.destroy();
    return { store, local: here, loggedIn: false, lostReason: (error as Error).message };
  }
  let i = 0;
  try {
    while (Date.now() < stopAt) {
      await sleep(Math.min(job.noopIntervalMs, Math.max(0, stopAt - Date.now())));
      await conn.imap(`n${i++}`, 'NOOP', t);
    }
    await conn.imap('z', 'LOGOUT', t);
    await conn.close(t);
    return { store, local: here, loggedIn: true };
  } catch (error) {
    conn.destroy();
    return {
      store,
      local: here,
      loggedIn: true,
      lostAt: Date.now(),
      lostReason: (error as Error).message,
    };
  }
}

export async function runSteady(job: SteadyJob): Promise<SteadyResult> {
  await sleep(job.delayMs);
  const started = Date.now();
  const cpu0 = process.cpuUsage();
  const stopAt = started + job.durationMs;
  const attempts: Attempt[] = [];
  const sampleErrors: string[] = [];
  let next = 0;
  const local = (): string | undefined =>
    job.localAddresses[next++ % Math.max(1, job.localAddresses.length)];
  const loop = async (): Promise<void> => {
    while (Date.now() < stopAt) {
      const account = job.accounts[Math.floor(Math.random() * job.accounts.length)];
      if (account === undefined) throw new Error('no accounts');
      const begin = Date.now();
      const r = await cycle(job, account, local());
      attempts.push([begin, Date.now(), r.outcome, account.host ?? '?']);
      if (r.error !== undefined) {
        if (sampleErrors.length < 8) sampleErrors.push(`${r.outcome}: ${r.error.slice(0, 100)}`);
        // a refused port must not spin a core
        await sleep(20);
      }
    }
  };
  const [longSessions] = await Promise.all([
    Promise.all(job.longAccounts.map((a) => longSession(job, a, local(), stopAt))),
    ...Array.from({ length: job.concurrency }, loop),
  ]);
  const cpu = process.cpuUsage(cpu0);
  return {
    kind: 'steady',
    started,
    ended: Date.now(),
    attempts,
    longSessions,
    sampleErrors,
    cpuMicros: cpu.user + cpu.system,
  };
}
