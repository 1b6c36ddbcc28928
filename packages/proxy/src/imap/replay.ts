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
 *   S: * CAPABILITY …        (untagged lines may come first: never taken as the answer,
 *   S: mmp1 OK [CAPABILITY …] Logged in   passed to the client before it, as nginx does)
 *
 * The answer after our tag is returned as is, so that the client receives the store's own
 * response code and text (RFC 3501 §7.1: `[CAPABILITY …]`, `[AUTHENTICATIONFAILED]`, …).
 *
 * With ForwardClientAddress, an ID command (RFC 2971) carrying the client's address in the
 * fields Dovecot reads from a trusted peer goes first, under a tag of its own; with LITERAL+ in
 * the same write as the LOGIN:
 *
 *   C: mmp0 ID ("x-originating-ip" "192.0.2.7" "x-originating-port" "40000"
 *              "x-connected-ip" "198.51.100.1" "x-connected-port" "143")
 *   C: mmp1 LOGIN {4+} …
 *   S: * ID ("name" "Dovecot")
 *   S: mmp0 OK ID completed.                 (NO or BAD: the store ignores it; the login goes on)
 *   S: mmp1 OK …
 *
 * A certificate login (`login.ts`) is replayed by the store's master user (StoreAdmin) for the
 * user, after the ID when forwarding:
 *
 *   C: mmp1 AUTHENTICATE PLAIN                S: +
 *   C: base64(user NUL StoreAdmin NUL StoreAdminPass)
 *   S: mmp1 OK …
 *
 * An OAuth2 login (XOAUTH2, OAUTHBEARER) goes to the store with the client's mechanism and
 * message, as an initial response when the greeting lists SASL-IR (RFC 4959), else after `+`.
 * A refused token gets RFC 7628 §3.2.2's error challenge: it goes to the client as it is, the
 * client's reply (`^A`, or an empty line for XOAUTH2, or `*`) back to the store as it is, and the
 * store's tagged answer, NO or BAD, is final:
 *
 *   C: mmp1 AUTHENTICATE XOAUTH2 dXNlcj1…      (SASL-IR)
 *   S: + eyJzdGF0dXMiOiI0MDEi…                 ─▶ client, whose reply line ─▶
 *   C: (empty line)
 *   S: mmp1 NO [AUTHENTICATIONFAILED] Authentication failed.
 */

import { type ConnectionAddresses, forwardable } from '../clientAddress.js';
import { MAX_STORE_LINE_BYTES } from '../limits.js';
import type { Log } from '../log.js';
import {
  type Replay,
  type ReplayOptions,
  type ReplayResult,
  type StoreConversation,
  type StoreLogin,
  plainMessage,
} from '../store.js';

/** Our tag towards the store; the client's tag is put back on the answer. */
const REPLAY_TAG = 'mmp1';
/** Our tag for the ID that forwards the client's address; never the login's. */
const ID_TAG = 'mmp0';

const CRLF = Buffer.from('\r\n');

const startsWithWord = (line: Buffer, word: string): boolean =>
  line.length >= word.length &&
  line.toString('latin1', 0, word.length).toUpperCase() === word &&
  (line.length === word.length || line[word.length] === 0x20);

export const imapReplay: Replay = async (conv, login, options, log) => {
  const greeting = await conv.readLine(options.greetingTimeoutMs);
  if (!greeting.ok) return { kind: 'failed', failure: greeting.error };
  log.at('trace', 'store greeting', 'store said', { line: greeting.value.toString('utf8') });
  if (!startsWithWord(greeting.value, '* OK')) {
    // `* BYE` (overloaded, shutting down) or not an IMAP server: another store may do better.
    return { kind: 'failed', failure: { kind: 'broken', detail: 'store greeting is not * OK' } };
  }
  options.greeted?.();
  const timeout = options.replyTimeoutMs;
  const id =
    options.forwardAddress === undefined
      ? undefined
      : idFor(greeting.value, options.forwardAddress);
  if (id !== undefined) log.at('dialogue', 'store login', 'sending client address to store');

  if (
    login.kind === 'user' &&
    takesNonSyncLiterals(greeting.value, [login.name.length, login.password.length])
  ) {
    log.at('dialogue', 'store login', 'sending user name and password to store');
    conv.write(
      Buffer.concat([
        Buffer.from(id ?? ''),
        Buffer.from(`${REPLAY_TAG} LOGIN {${login.name.length}+}\r\n`),
        login.name,
        Buffer.from(` {${login.password.length}+}\r\n`),
        login.password,
        CRLF,
      ]),
    );
    if (id !== undefined) {
      const idDone = await idAnswer(conv, timeout, log);
      if (idDone !== undefined) return idDone;
    }
    return taggedAnswer(conv, timeout, log);
  }

  if (id !== undefined) {
    conv.write(id);
    const idDone = await idAnswer(conv, timeout, log);
    if (idDone !== undefined) return idDone;
  }
  if (login.kind === 'bearer') return bearerLogin(conv, greeting.value, login, options, log);
  if (login.kind === 'master') {
    // RFC 3501 §6.2.2: AUTHENTICATE PLAIN, `+`, the message (RFC 4616 §2).
    log.at('dialogue', 'store login', 'authorizing as the user with StoreAdmin');
    conv.write(`${REPLAY_TAG} AUTHENTICATE PLAIN\r\n`);
    const ready = await continuation(conv, timeout, log);
    if (ready !== undefined) return ready;
    const message = plainMessage(login.user, login.admin, login.password);
    conv.write(`${message.toString('base64')}\r\n`);
    return taggedAnswer(conv, timeout, log);
  }
  log.at('dialogue', 'store login', 'sending user name to store');
  conv.write(`${REPLAY_TAG} LOGIN {${login.name.length}}\r\n`);
  const first = await continuation(conv, timeout, log);
  if (first !== undefined) return first;
  conv.write(Buffer.concat([login.name, Buffer.from(` {${login.password.length}}\r\n`)]));
  const second = await continuation(conv, timeout, log);
  if (second !== undefined) return second;
  log.at('dialogue', 'store login', 'sending password to store');
  conv.write(Buffer.concat([login.password, CRLF]));
  return taggedAnswer(conv, timeout, log);
};

/** Challenges of one bearer login relayed to the client (RFC 7628 needs one). */
const MAX_RELAYED_CHALLENGES = 3;

/** Said when the store fails after the client answered its challenge: no other store may be
 * asked then (the client is in the middle of this store's exchange). */
const UNFINISHED = Buffer.from('NO [UNAVAILABLE] The mail store did not finish the login');

async function bearerLogin(
  conv: StoreConversation,
  greeting: Buffer,
  login: Extract<StoreLogin, { kind: 'bearer' }>,
  options: ReplayOptions,
  log: Log,
): Promise<ReplayResult> {
  const timeout = options.replyTimeoutMs;
  const message = login.message.toString('base64');
  const initialResponse = greetingCapabilities(greeting)?.includes('SASL-IR') === true;
  log.at('dialogue', 'store login', 'sending the bearer token to store', {
    mechanism: login.mechanism,
    initialResponse,
  });
  if (initialResponse) {
    conv.write(`${REPLAY_TAG} AUTHENTICATE ${login.mechanism} ${message}\r\n`);
  } else {
    conv.write(`${REPLAY_TAG} AUTHENTICATE ${login.mechanism}\r\n`);
    const ready = await continuation(conv, timeout, log);
    if (ready !== undefined) return ready;
    conv.write(`${message}\r\n`);
  }
  let relayed = 0;
  for (;;) {
    const line = await conv.readLine(timeout);
    if (!line.ok)
      return relayed === 0
        ? { kind: 'failed', failure: line.error }
        : { kind: 'refused', answer: UNFINISHED };
    const l = line.value;
    if (l[0] === 0x2a /* * */) {
      log.at('trace', 'store login', 'store said (untagged, skipped)', {
        line: l.toString('utf8'),
      });
      continue;
    }
    if (l[0] === 0x2b /* + */) {
      if (options.relay === undefined || relayed >= MAX_RELAYED_CHALLENGES)
        return relayed === 0
          ? { kind: 'failed', failure: { kind: 'broken', detail: 'unexpected challenge' } }
          : { kind: 'refused', answer: UNFINISHED };
      relayed++;
      // The store's error (JSON status, no secret) to the client; the reply is never logged.
      log.at('dialogue', 'store login', 'store challenged the token, asking the client');
      const reply = await options.relay(l);
      if (reply === undefined)
        return { kind: 'failed', failure: { kind: 'broken', detail: 'the client left' } };
      conv.write(Buffer.concat([reply, CRLF]));
      continue;
    }
    const result = judge(l, log);
    // After a challenge the store's BAD (the client's `*`) is its final word too.
    if (relayed > 0 && result.kind === 'failed') {
      const answer = l.subarray(`${REPLAY_TAG} `.length);
      return startsWithWord(answer, 'BAD') ? { kind: 'refused', answer } : result;
    }
    return result;
  }
}

/** RFC 7888's literal limit under LITERAL-. */
const LITERAL_MINUS_MAX = 4096;
const CAPABILITY_CODE = /\[CAPABILITY ([^\]]*)\]/i;

/**
 * Whether the store, by its greeting's CAPABILITY response code, takes non-synchronising
 * literals of these sizes. No code in the greeting: we do not know, so no.
 */
export function takesNonSyncLiterals(greeting: Buffer, sizes: readonly number[]): boolean {
  const names = greetingCapabilities(greeting);
  if (names === undefined) return false;
  if (names.includes('LITERAL+')) return true;
  return names.includes('LITERAL-') && sizes.every((n) => n <= LITERAL_MINUS_MAX);
}

/**
 * The ID command forwarding these addresses, with its CRLF; undefined when it should not be
 * sent: the store's greeting lists its capabilities without ID (it would only answer BAD), or an
 * address is not an IP literal.
 */
function idFor(greeting: Buffer, addresses: ConnectionAddresses): string | undefined {
  const names = greetingCapabilities(greeting);
  if (names !== undefined && !names.includes('ID')) return undefined;
  const a = forwardable(addresses);
  return a === undefined ? undefined : `${idCommand(ID_TAG, a)}\r\n`;
}

/**
 * `TAG ID (…)` with Dovecot's field names (its imap-login believes them from
 * login_trusted_networks only). Undefined when a value cannot be an RFC 3501 quoted string.
 */
export function idCommand(tag: string, a: ConnectionAddresses): string | undefined {
  const fields = [
    ['x-originating-ip', a.clientIp],
    ['x-originating-port', String(a.clientPort)],
    ['x-connected-ip', a.serverIp],
    ['x-connected-port', String(a.serverPort)],
  ].flatMap(([key, value]) => [quoted(key ?? ''), quoted(value ?? '')]);
  if (fields.some((f) => f === undefined)) return undefined;
  return `${tag} ID (${fields.join(' ')})`;
}

/**
 * RFC 3501 §9 `quoted`: 7-bit TEXT-CHARs (no NUL, CR or LF), with `"` and `\` escaped; anything
 * else would need a literal, and no address needs one, so it is refused.
 */
export function quoted(value: string): string | undefined {
  // eslint-disable-next-line no-control-regex
  if (/[^\x01-\x09\x0b\x0c\x0e-\x7f]/.test(value)) return undefined;
  return `"${value.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/**
 * Read until the ID's tagged answer. Any of OK, NO and BAD lets the login go on (the store
 * merely does not take the address: it then logs ours, as without the option); undefined then,
 * else the result that ends the replay.
 */
async function idAnswer(
  conv: StoreConversation,
  timeoutMs: number,
  log: Log,
): Promise<ReplayResult | undefined> {
  const prefix = `${ID_TAG} `;
  for (;;) {
    const line = await conv.readLine(timeoutMs);
    if (!line.ok) return { kind: 'failed', failure: line.error };
    const l = line.value;
    if (l[0] === 0x2a /* * */) {
      log.at('trace', 'store login', 'store said (untagged, skipped)', {
        line: l.toString('utf8'),
      });
      continue;
    }
    if (l.toString('latin1', 0, prefix.length) !== prefix) {
      return { kind: 'failed', failure: { kind: 'broken', detail: 'unexpected line from store' } };
    }
    const answer = l.subarray(prefix.length);
    if (!startsWithWord(answer, 'OK')) {
      log.at('dialogue', 'store login', 'store did not take the client address', {
        line: answer.toString('utf8'),
      });
    }
    return undefined;
  }
}

/** The capability names of the greeting's CAPABILITY code, upper-cased; undefined: none. */
function greetingCapabilities(greeting: Buffer): string[] | undefined {
  const code = CAPABILITY_CODE.exec(greeting.toString('latin1'));
  return code === null ? undefined : (code[1] ?? '').toUpperCase().split(' ');
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

/**
 * Read until our tagged answer. Untagged lines may precede it (RFC 3501 §7: `* CAPABILITY`, an
 * `* OK [ALERT]` the user must see, RFC 3501 §7.1): they reach the client before the answer, as
 * nginx passes them, except `* BYE` (the client's session goes on after a refusal) and beyond
 * MAX_STORE_LINE_BYTES in all (a store cannot make us hold more).
 */
async function taggedAnswer(
  conv: StoreConversation,
  timeoutMs: number,
  log: Log,
): Promise<ReplayResult> {
  const untagged: Buffer[] = [];
  let bytes = 0;
  for (;;) {
    const line = await conv.readLine(timeoutMs);
    if (!line.ok) return { kind: 'failed', failure: line.error };
    const l = line.value;
    if (l[0] === 0x2a /* * */) {
      const pass = !startsWithWord(l, '* BYE') && bytes + l.length <= MAX_STORE_LINE_BYTES;
      log.at(
        'trace',
        'store login',
        pass ? 'store said (untagged)' : 'store said (untagged, skipped)',
        {
          line: l.toString('utf8'),
        },
      );
      if (pass) {
        untagged.push(l, CRLF);
        bytes += l.length;
      }
      continue;
    }
    const result = judge(l, log);
    if (result.kind === 'failed' || untagged.length === 0) return result;
    return { ...result, untagged: Buffer.concat(untagged) };
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
