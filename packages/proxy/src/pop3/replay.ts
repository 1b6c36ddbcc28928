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
 * A store whose CAPA lists PIPELINING (RFC 2449 §6.6; Dovecot does) gets USER and PASS in one
 * write, saving a round trip per login. Which stores do is learned by one CAPA at the first
 * login to each store (remembered by the runtime), and again after STORE_CAPA_TTL_MS:
 *
 *   C: CAPA                    S: +OK … PIPELINING … .     (first login to this store only)
 *   C: USER alice CRLF PASS secret
 *                              S: +OK   S: +OK Logged in.
 *
 * A name or password holding CR or LF cannot travel in a USER/PASS line; such credentials go by
 * AUTH PLAIN, which carries any octet but NUL. The store's `-ERR` line is returned whole, so its
 * RFC 2449 response code (`[IN-USE]`, `[AUTH]`, `[SYS/TEMP]`) reaches the client.
 *
 * With ForwardClientAddress, a store that offers XCLIENT gets the client's address first, by
 * either path. Dovecot's pop3-login offers it to the peers of login_trusted_networks in its
 * greeting's `[XCLIENT]` code (2.3 does not list it in CAPA); a CAPA listing XCLIENT counts too,
 * and when the greeting does not say, CAPA is asked (once per store, as above):
 *
 *   S: +OK [XCLIENT] mmp-test store A ready
 *   C: XCLIENT ADDR=192.0.2.7 PORT=40000     S: +OK Updated
 *   C: USER alice …
 *
 * A `-ERR` to XCLIENT is not the user's fault: the login goes on and the store sees the proxy's
 * address, as without the option.
 *
 * An OAuth2 login (XOAUTH2, OAUTHBEARER) goes with the client's mechanism and message, its
 * refusal challenge relayed to the client and back (`bearerAuth` below).
 *
 * A certificate login (`login.ts`) is replayed by the store's master user (StoreAdmin) for the
 * user, after XCLIENT when forwarding (RFC 5034 §4, RFC 4616 §2):
 *
 *   C: AUTH PLAIN              S: +
 *   C: base64(user NUL StoreAdmin NUL StoreAdminPass)
 */

import { type ConnectionAddresses, forwardable } from '../clientAddress.js';
import type { Log } from '../log.js';
import {
  type ChallengeRelay,
  type Replay,
  type ReplayResult,
  type StoreConversation,
  type StoreLogin,
  plainMessage,
} from '../store.js';
import type { StoreCapa, StoreCapabilities } from './storeCapa.js';

/** A CAPA answer longer than this is not a POP3 store's. */
const MAX_CAPA_LINES = 64;

/** The text sent when credentials cannot be replayed at all (a NUL in a UidAttr value). */
const CANNOT_REPLAY = '-ERR [AUTH] Authentication failed.';

const isOk = (line: Buffer): boolean =>
  line.length >= 3 &&
  line.toString('latin1', 0, 3) === '+OK' &&
  (line.length === 3 || line[3] === 0x20);
const isErr = (line: Buffer): boolean =>
  line.length >= 4 &&
  line.toString('latin1', 0, 4) === '-ERR' &&
  (line.length === 4 || line[4] === 0x20);
const USER = Buffer.from('USER ');
const PASS = Buffer.from('PASS ');
const CRLF = Buffer.from('\r\n');
const hasLineBreak = (b: Buffer): boolean => b.includes(0x0d) || b.includes(0x0a);

/** The POP3 replay, with what the runtime knows of the stores' CAPA. */
export function pop3Replay(stores: StoreCapabilities): Replay {
  return async (conv, login, options, log) => {
    const greeting = await conv.readLine(options.greetingTimeoutMs);
    if (!greeting.ok) return { kind: 'failed', failure: greeting.error };
    log.at('trace', 'store greeting', 'store said', { line: greeting.value.toString('utf8') });
    if (!isOk(greeting.value)) {
      return { kind: 'failed', failure: { kind: 'broken', detail: 'store greeting is not +OK' } };
    }
    options.greeted?.();
    const timeout = options.replyTimeoutMs;
    // SASL PLAIN: authorization identity (the master user's login only), name, password.
    const [authzid, name, password] =
      login.kind === 'user'
        ? [Buffer.alloc(0), login.name, login.password]
        : login.kind === 'master'
          ? [login.user, login.admin, login.password]
          : [Buffer.alloc(0), Buffer.alloc(0), Buffer.alloc(0)];
    if ([authzid, name, password].some((b) => b.includes(0x00))) {
      return { kind: 'refused', answer: Buffer.from(CANNOT_REPLAY) };
    }
    const byUser =
      login.kind === 'user' && !login.sasl && !hasLineBreak(name) && !hasLineBreak(password);
    const forward =
      options.forwardAddress === undefined ? undefined : forwardable(options.forwardAddress);
    const xclientInGreeting = XCLIENT_CODE.test(greeting.value.toString('latin1'));
    // CAPA only when its answer is used: for PIPELINING (USER/PASS), or to learn of XCLIENT.
    let capa: StoreCapa | undefined;
    if (byUser || (forward !== undefined && !xclientInGreeting)) {
      const store = `${conv.socket.remoteAddress ?? ''}:${conv.socket.remotePort ?? 0}`;
      capa = stores.get(store);
      if (capa === undefined) {
        const asked = await askCapa(conv, timeout, log);
        if ('kind' in asked) return asked;
        stores.set(store, asked);
        capa = asked;
      }
    }
    if (forward !== undefined && (xclientInGreeting || capa?.xclient === true)) {
      const sent = await xclient(conv, forward, timeout, log);
      if (sent !== undefined) return sent;
    }
    if (login.kind === 'bearer') return bearerAuth(conv, login, timeout, options.relay, log);
    if (byUser) return userPass(conv, name, password, capa?.pipelining === true, timeout, log);
    if (login.kind === 'master')
      log.at('dialogue', 'store login', 'authorizing as the user with StoreAdmin');
    return authPlain(conv, plainMessage(authzid, name, password), timeout, log);
  };
}

/** Dovecot's greeting response code for a peer that may send XCLIENT. */
const XCLIENT_CODE = /^\+OK \[XCLIENT\]/i;

/** CAPA (RFC 2449 §5): what the store lists of what we use; a store without CAPA lists nothing. */
async function askCapa(
  conv: StoreConversation,
  timeoutMs: number,
  log: Log,
): Promise<StoreCapa | ReplayResult> {
  conv.write('CAPA\r\n');
  const first = await conv.readLine(timeoutMs);
  if (!first.ok) return { kind: 'failed', failure: first.error };
  const capa: StoreCapa = { pipelining: false, xclient: false };
  if (isErr(first.value)) return capa;
  if (!isOk(first.value)) return unexpected();
  for (let lines = 0; lines < MAX_CAPA_LINES; lines++) {
    const line = await conv.readLine(timeoutMs);
    if (!line.ok) return { kind: 'failed', failure: line.error };
    const text = line.value.toString('latin1');
    if (text === '.') {
      log.at('trace', 'store login', 'store capabilities', { ...capa });
      return capa;
    }
    const word = text.split(' ')[0]?.toUpperCase();
    if (word === 'PIPELINING') capa.pipelining = true;
    if (word === 'XCLIENT') capa.xclient = true;
  }
  return unexpected();
}

/** `XCLIENT ADDR=… PORT=…`, the form Dovecot's pop3-login reads (IPv6 without a prefix). */
export function xclientCommand(a: ConnectionAddresses): string {
  return `XCLIENT ADDR=${a.clientIp} PORT=${a.clientPort}`;
}

/**
 * Tell the store the client's address. Undefined when the login may go on (`+OK`, or `-ERR`:
 * the store then sees our address, as without the option), else the result that ends it.
 */
async function xclient(
  conv: StoreConversation,
  addresses: ConnectionAddresses,
  timeoutMs: number,
  log: Log,
): Promise<ReplayResult | undefined> {
  log.at('dialogue', 'store login', 'sending client address to store');
  conv.write(`${xclientCommand(addresses)}\r\n`);
  const answer = await conv.readLine(timeoutMs);
  if (!answer.ok) return { kind: 'failed', failure: answer.error };
  if (isOk(answer.value)) return undefined;
  if (isErr(answer.value)) {
    log.at('dialogue', 'store login', 'store did not take the client address', {
      line: answer.value.toString('utf8'),
    });
    return undefined;
  }
  return unexpected();
}

async function userPass(
  conv: StoreConversation,
  name: Buffer,
  password: Buffer,
  pipelining: boolean,
  timeoutMs: number,
  log: Log,
): Promise<ReplayResult> {
  const user = Buffer.concat([USER, name, CRLF]);
  const pass = Buffer.concat([PASS, password, CRLF]);
  if (pipelining) {
    log.at('dialogue', 'store login', 'sending user name and password to store');
    conv.write(Buffer.concat([user, pass]));
  } else {
    log.at('dialogue', 'store login', 'sending user name to store');
    conv.write(user);
  }
  const first = await conv.readLine(timeoutMs);
  if (!first.ok) return { kind: 'failed', failure: first.error };
  log.at('trace', 'store login', 'store answered', { line: first.value.toString('utf8') });
  // Pipelined, the PASS that follows a refused USER is refused too; the connection is dropped.
  if (isErr(first.value)) return { kind: 'refused', answer: first.value };
  if (!isOk(first.value)) return unexpected();
  if (!pipelining) {
    log.at('dialogue', 'store login', 'sending password to store');
    conv.write(pass);
  }
  return judge(conv, timeoutMs, log);
}

async function authPlain(
  conv: StoreConversation,
  message: Buffer,
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
  conv.write(`${message.toString('base64')}\r\n`);
  return judge(conv, timeoutMs, log);
}

/** RFC 5034 §4: an AUTH command line, CRLF included, is at most 255 octets. */
const MAX_AUTH_LINE = 255;
/** Challenges of one bearer login relayed to the client (RFC 7628 needs one). */
const MAX_RELAYED_CHALLENGES = 3;
/** Said when the store fails after the client answered its challenge: no other store may be
 * asked then (the client is in the middle of this store's exchange). */
const UNFINISHED = Buffer.from('-ERR [SYS/TEMP] The mail store did not finish the login');

/**
 * OAuth2 (XOAUTH2, OAUTHBEARER): the client's mechanism and message, as an initial response when
 * the AUTH line fits RFC 5034's 255 octets, else after the store's `+`. A refused token gets the
 * store's RFC 7628 error challenge, which goes to the client, and its reply back, unchanged; the
 * store's next line is final:
 *
 *   C: AUTH XOAUTH2 dXNlcj1…
 *   S: + eyJzdGF0dXMiOiI0MDEi…      ─▶ client, whose reply line ─▶
 *   C: (empty line)
 *   S: -ERR [AUTH] Authentication failed.
 */
async function bearerAuth(
  conv: StoreConversation,
  login: Extract<StoreLogin, { kind: 'bearer' }>,
  timeoutMs: number,
  relay: ChallengeRelay | undefined,
  log: Log,
): Promise<ReplayResult> {
  const message = login.message.toString('base64');
  const withResponse = `AUTH ${login.mechanism} ${message}\r\n`;
  const initialResponse = withResponse.length <= MAX_AUTH_LINE;
  log.at('dialogue', 'store login', 'sending the bearer token to store', {
    mechanism: login.mechanism,
    initialResponse,
  });
  if (initialResponse) conv.write(withResponse);
  else {
    conv.write(`AUTH ${login.mechanism}\r\n`);
    const ready = await conv.readLine(timeoutMs);
    if (!ready.ok) return { kind: 'failed', failure: ready.error };
    if (isErr(ready.value)) return { kind: 'refused', answer: ready.value };
    if (ready.value[0] !== 0x2b /* + */ || isOk(ready.value)) return unexpected();
    conv.write(`${message}\r\n`);
  }
  for (let relayed = 0; ; relayed++) {
    const line = await conv.readLine(timeoutMs);
    if (!line.ok)
      return relayed === 0
        ? { kind: 'failed', failure: line.error }
        : { kind: 'refused', answer: UNFINISHED };
    const l = line.value;
    log.at('trace', 'store login', 'store answered', { line: l.toString('utf8') });
    if (isOk(l)) return { kind: 'accepted', answer: l };
    if (isErr(l)) return { kind: 'refused', answer: l };
    if (l[0] !== 0x2b || relay === undefined || relayed >= MAX_RELAYED_CHALLENGES)
      return relayed === 0 ? unexpected() : { kind: 'refused', answer: UNFINISHED };
    // The store's error (JSON status, no secret) to the client; the reply is never logged.
    log.at('dialogue', 'store login', 'store challenged the token, asking the client');
    const reply = await relay(l);
    if (reply === undefined)
      return { kind: 'failed', failure: { kind: 'broken', detail: 'the client left' } };
    conv.write(Buffer.concat([reply, CRLF]));
  }
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
