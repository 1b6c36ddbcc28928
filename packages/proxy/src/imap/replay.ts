/**
 * Replay of an IMAP login to the store with literals for both the name and the password
 * (RFC 3501 §7.5), so that no byte of either can break out of the command, whatever it is — no
 * quoting to get wrong.
 *
 * When the store's greeting announces LITERAL+ (RFC 7888 §3; Dovecot, Cyrus …), or LITERAL- and
 * both fit in 4096 bytes (§4), the literals are non-synchronising and the whole command goes in
 * one write: one round trip to the store instead of three, which is most of what a login through
 * the proxy costs beyond a direct one. Otherwise, as nginx's mail proxy does, synchronising
 * literals, each after the store's `+`:
 *
 *   S: * OK [CAPABILITY … LITERAL+ …] ready  (greeting; `* BYE` means try another store)
 *   C: mmp1 LOGIN {4+}                       (LITERAL+: no wait)
 *   C: user {6+}
 *   C: secret
 *
 *   S: * OK [CAPABILITY IMAP4rev1] ready     (no LITERAL+)
 *   C: mmp1 LOGIN {4}        S: + OK
 *   C: user {6}              S: + OK
 *   C: secret
 *
 *   S: * CAPABILITY …        (untagged lines may come first: skipped, never taken as the answer)
 *   S: mmp1 OK [CAPABILITY …] Logged in
 *
 * The answer after our tag is returned as is, so that the client receives the store's own
 * response code and text (RFC 3501 §7.1: `[CAPABILITY …]`, `[AUTHENTICATIONFAILED]`, …).
 */

import type { Log } from '../log.js';
import type { Replay, ReplayResult } from '../login.js';
import { STORE_REPLY_TIMEOUT_MS } from '../limits.js';
import type { StoreConversation } from '../store.js';

/** Our tag towards the store; the client's tag is put back on the answer. */
export const REPLAY_TAG = 'mmp1';

const CRLF = Buffer.from('\r\n');

const startsWithWord = (line: Buffer, word: string): boolean =>
  line.length >= word.length &&
  line.toString('latin1', 0, word.length).toUpperCase() === word &&
  (line.length === word.length || line[word.length] === 0x20);

export interface ImapReplayOptions {
  /** Time for the store's greeting (StoreConnectTimeout). */
  greetingTimeoutMs: number;
  /** Time for each later answer. */
  replyTimeoutMs?: number;
}

export function imapReplay(options: ImapReplayOptions): Replay {
  const replyTimeout = options.replyTimeoutMs ?? STORE_REPLY_TIMEOUT_MS;
  return async (conv: StoreConversation, name: Buffer, password: Buffer, log: Log) => {
    const greeting = await conv.readLine(options.greetingTimeoutMs);
    if (!greeting.ok) return { kind: 'failed', failure: greeting.error };
    log.at('trace', 'store greeting', 'store said', { line: greeting.value.toString('utf8') });
    if (!startsWithWord(greeting.value, '* OK')) {
      // `* BYE` (overloaded, shutting down) or not an IMAP server: another store may do better.
      return {
        kind: 'failed',
        failure: { kind: 'broken', detail: 'store greeting is not * OK' },
      };
    }

    if (takesNonSyncLiterals(greeting.value, [name.length, password.length])) {
      log.at('dialogue', 'store login', 'sending user name and password to store');
      conv.write(
        Buffer.concat([
          Buffer.from(`${REPLAY_TAG} LOGIN {${name.length}+}\r\n`),
          name,
          Buffer.from(` {${password.length}+}\r\n`),
          password,
          CRLF,
        ]),
      );
      return taggedAnswer(conv, replyTimeout, log);
    }

    log.at('dialogue', 'store login', 'sending user name to store');
    conv.write(`${REPLAY_TAG} LOGIN {${name.length}}\r\n`);
    const first = await continuation(conv, replyTimeout, log);
    if (first !== undefined) return first;
    conv.write(Buffer.concat([name, Buffer.from(` {${password.length}}\r\n`)]));
    const second = await continuation(conv, replyTimeout, log);
    if (second !== undefined) return second;
    log.at('dialogue', 'store login', 'sending password to store');
    conv.write(Buffer.concat([password, CRLF]));
    return taggedAnswer(conv, replyTimeout, log);
  };
}

/** RFC 7888's literal limit under LITERAL-. */
const LITERAL_MINUS_MAX = 4096;
const CAPABILITY_CODE = /\[CAPABILITY ([^\]]*)\]/i;

/**
 * Whether the store, by its greeting's CAPABILITY response code, takes non-synchronising
 * literals of these sizes. No code in the greeting: we do not know, so no.
 */
export function takesNonSyncLiterals(greeting: Buffer, sizes: readonly number[]): boolean {
  const code = CAPABILITY_CODE.exec(greeting.toString('latin1'));
  if (code === null) return false;
  const names = (code[1] ?? '').toUpperCase().split(' ');
  if (names.includes('LITERAL+')) return true;
  return names.includes('LITERAL-') && sizes.every((n) => n <= LITERAL_MINUS_MAX);
}

/** Wait for `+`; undefined when it came, else the result that ends the replay. */
async function continuation(
  conv: StoreConversation,
  timeoutMs: number,
  log: Log,
): Promise<ReplayResult | undefined> {
  for (;;) {
    const line = await conv.readLine(timeoutMs);
    if (!line.ok) return { kind: 'failed', failure: line.error };
    const l = line.value;
    if (l[0] === 0x2b /* + */) return undefined;
    if (l[0] === 0x2a /* * */) {
      log.at('trace', 'store login', 'store said (untagged, skipped)', {
        line: l.toString('utf8'),
      });
      continue;
    }
    // A tagged answer instead of `+`: the store refused the literal or the command.
    return judge(l, log);
  }
}

/** Read until our tagged answer, skipping untagged lines (RFC 3501 §7: may precede it). */
async function taggedAnswer(
  conv: StoreConversation,
  timeoutMs: number,
  log: Log,
): Promise<ReplayResult> {
  for (;;) {
    const line = await conv.readLine(timeoutMs);
    if (!line.ok) return { kind: 'failed', failure: line.error };
    if (line.value[0] === 0x2a) {
      log.at('trace', 'store login', 'store said (untagged, skipped)', {
        line: line.value.toString('utf8'),
      });
      continue;
    }
    return judge(line.value, log);
  }
}

function judge(line: Buffer, log: Log): ReplayResult {
  const prefix = `${REPLAY_TAG} `;
  if (line.toString('latin1', 0, prefix.length) !== prefix) {
    return { kind: 'failed', failure: { kind: 'broken', detail: 'unexpected line from store' } };
  }
  const answer = line.subarray(prefix.length);
  log.at('trace', 'store login', 'store answered', { line: answer.toString('utf8') });
  if (startsWithWord(answer, 'OK')) return { kind: 'accepted', answer };
  if (startsWithWord(answer, 'NO')) return { kind: 'refused', answer };
  // BAD: the store did not understand our replay; not the user's fault, try another store.
  return { kind: 'failed', failure: { kind: 'broken', detail: 'store answered BAD to the login' } };
}
