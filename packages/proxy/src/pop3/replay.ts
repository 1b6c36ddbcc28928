/**
 * Replay of a POP3 login to the store, the way the client gave it:
 *
 *   S: +OK mmp-test store A ready          (greeting; anything else: try the next store)
 *   C: USER alice              S: +OK
 *   C: PASS secret             S: +OK Logged in.   |  -ERR [AUTH] …  |  -ERR [IN-USE] …
 *
 * or, when the client used AUTH PLAIN (RFC 5034 §4, without initial response so that no line
 * length limit of the store can bite):
 *
 *   C: AUTH PLAIN              S: +
 *   C: base64(NUL name NUL password)
 *
 * A name or password holding CR or LF cannot travel in a USER/PASS line; such credentials go by
 * AUTH PLAIN, which carries any octet but NUL. The store's `-ERR` line is returned whole, so its
 * RFC 2449 response code (`[IN-USE]`, `[AUTH]`, `[SYS/TEMP]`) reaches the client.
 */

import { STORE_REPLY_TIMEOUT_MS } from '../limits.js';
import type { Log } from '../log.js';
import type { Replay, ReplayResult } from '../login.js';
import type { StoreConversation } from '../store.js';
import type { LoginMethod } from './commands/types.js';

export interface Pop3ReplayOptions {
  method: LoginMethod;
  /** Time for the store's greeting (StoreConnectTimeout). */
  greetingTimeoutMs: number;
  /** Time for each later answer. */
  replyTimeoutMs?: number;
}

/** The text sent when credentials cannot be replayed at all (a NUL in a UidAttr value). */
export const CANNOT_REPLAY = '-ERR [AUTH] Authentication failed.';

const isOk = (line: Buffer): boolean =>
  line.length >= 3 &&
  line.toString('latin1', 0, 3) === '+OK' &&
  (line.length === 3 || line[3] === 0x20);
const isErr = (line: Buffer): boolean =>
  line.length >= 4 &&
  line.toString('latin1', 0, 4) === '-ERR' &&
  (line.length === 4 || line[4] === 0x20);
const hasLineBreak = (b: Buffer): boolean => b.includes(0x0d) || b.includes(0x0a);

export function pop3Replay(options: Pop3ReplayOptions): Replay {
  const replyTimeout = options.replyTimeoutMs ?? STORE_REPLY_TIMEOUT_MS;
  return async (conv: StoreConversation, name: Buffer, password: Buffer, log: Log) => {
    const greeting = await conv.readLine(options.greetingTimeoutMs);
    if (!greeting.ok) return { kind: 'failed', failure: greeting.error };
    log.at('trace', 'store greeting', 'store said', { line: greeting.value.toString('utf8') });
    if (!isOk(greeting.value)) {
      return { kind: 'failed', failure: { kind: 'broken', detail: 'store greeting is not +OK' } };
    }
    if (name.includes(0x00) || password.includes(0x00)) {
      return { kind: 'refused', answer: Buffer.from(CANNOT_REPLAY) };
    }
    const byUser = options.method === 'user-pass' && !hasLineBreak(name) && !hasLineBreak(password);
    return byUser
      ? userPass(conv, name, password, replyTimeout, log)
      : authPlain(conv, name, password, replyTimeout, log);
  };
}

async function userPass(
  conv: StoreConversation,
  name: Buffer,
  password: Buffer,
  timeoutMs: number,
  log: Log,
): Promise<ReplayResult> {
  log.at('dialogue', 'store login', 'sending user name to store');
  conv.write(Buffer.concat([Buffer.from('USER '), name, Buffer.from('\r\n')]));
  const first = await conv.readLine(timeoutMs);
  if (!first.ok) return { kind: 'failed', failure: first.error };
  log.at('trace', 'store login', 'store answered', { line: first.value.toString('utf8') });
  if (isErr(first.value)) return { kind: 'refused', answer: first.value };
  if (!isOk(first.value)) return unexpected();
  log.at('dialogue', 'store login', 'sending password to store');
  conv.write(Buffer.concat([Buffer.from('PASS '), password, Buffer.from('\r\n')]));
  return judge(conv, timeoutMs, log);
}

async function authPlain(
  conv: StoreConversation,
  name: Buffer,
  password: Buffer,
  timeoutMs: number,
  log: Log,
): Promise<ReplayResult> {
  log.at('dialogue', 'store login', 'sending AUTH PLAIN to store');
  conv.write('AUTH PLAIN\r\n');
  const challenge = await conv.readLine(timeoutMs);
  if (!challenge.ok) return { kind: 'failed', failure: challenge.error };
  if (challenge.value[0] !== 0x2b /* + */ || isOk(challenge.value)) {
    // The store does not offer PLAIN: not the user's fault, another store may.
    return {
      kind: 'failed',
      failure: { kind: 'broken', detail: 'store refused AUTH PLAIN' },
    };
  }
  log.at('dialogue', 'store login', 'sending credentials to store');
  const message = Buffer.concat([Buffer.from([0]), name, Buffer.from([0]), password]);
  conv.write(`${message.toString('base64')}\r\n`);
  return judge(conv, timeoutMs, log);
}

async function judge(conv: StoreConversation, timeoutMs: number, log: Log): Promise<ReplayResult> {
  const line = await conv.readLine(timeoutMs);
  if (!line.ok) return { kind: 'failed', failure: line.error };
  log.at('trace', 'store login', 'store answered', { line: line.value.toString('utf8') });
  if (isOk(line.value)) return { kind: 'accepted', answer: line.value };
  if (isErr(line.value)) return { kind: 'refused', answer: line.value };
  return unexpected();
}

function unexpected(): ReplayResult {
  return { kind: 'failed', failure: { kind: 'broken', detail: 'unexpected line from store' } };
}
