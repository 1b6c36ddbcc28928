/**
 * POP3 before login, as a dialect of the pre-login session (`../session.ts`): the greeting, the
 * line reader (`lineReader.ts`) and parser (`parser.ts`), the command table (`commands/`) and its
 * dispatch, POP3's words (`+OK`, `-ERR` with RFC 2449 / RFC 3206 response codes), and the spoof
 * inbox (SpoofMessageFile, `spoof.ts`) served when no store is reachable.
 */

import type { Socket } from 'node:net';
import type { Dialect, Reader, Refusal, Reply, SessionView, Words } from '../dialect.js';
import {
  MAX_POP3_AUTH_LINE_BYTES,
  MAX_POP3_LINE_BYTES,
  MAX_POP3_SASL_LINE_BYTES,
} from '../limits.js';
import type { SessionContext, SessionHandle } from '../server.js';
import { startSession } from '../session.js';
import { COMMANDS } from './commands/index.js';
import { check } from './commands/types.js';
import { Pop3LineReader } from './lineReader.js';
import { parseCommand } from './parser.js';
import { pop3Replay } from './replay.js';
import { SpoofInbox } from './spoof.js';

/** Dovecot's text for a failed login. An unknown user gets exactly this too, so that user names
 * cannot be probed (RFC 3206 §4: AUTH response code). */
const AUTH_FAILED = '-ERR [AUTH] Authentication failed.';

function refusalText(r: Refusal): string {
  switch (r.kind) {
    case 'text':
      return r.text;
    case 'plaintext':
      // RFC 2449 §8 response code; SYS/PERM: this server will not take it this way.
      return '[SYS/PERM] Plaintext authentication is disabled on this connection; use STLS first';
    case 'external':
      return `[AUTH] ${r.reason}`;
    case 'mechanism':
      return 'Unsupported authentication mechanism';
    case 'tls-unavailable':
      return '[SYS/TEMP] TLS is not available';
    case 'auth-failed':
      return AUTH_FAILED.slice('-ERR '.length);
    case 'directory-down':
      // RFC 3206 §4: SYS/TEMP, a problem on our side that may go away.
      return '[SYS/TEMP] User directory temporarily unavailable, try again later';
    case 'stores-down':
      return `[SYS/TEMP] ${r.alert}`;
  }
}

const GOODBYE = {
  'bad-commands': 'Too many invalid commands, closing',
  'too-many-commands': 'Too many commands, closing',
  'failed-logins': 'Too many failed logins, closing',
  idle: 'Disconnected for inactivity',
  'login-timeout': 'Disconnected: no login in time',
  // RFC 3206 SYS/TEMP: a problem on our side that goes away; not a refused login.
  'server-full': '[SYS/TEMP] Too many connections, try again later',
  'address-full': '[SYS/TEMP] Too many connections from your address, try again later',
  shutdown: '[SYS/TEMP] Server shutting down',
  'internal-error': '[SYS/TEMP] Internal error',
} as const;

const words: Words = {
  ok: (_tag, _verb, text) => (text === undefined ? '+OK' : `+OK ${text}`),
  no: (_tag, refusal) => `-ERR ${refusalText(refusal)}`,
  bad: (_tag, text) => `-ERR ${text}`,
  logout: () => ['+OK Logging out'],
  startTls: () => '+OK Begin TLS negotiation',
  goodbye: (reason) => `-ERR ${typeof reason === 'string' ? GOODBYE[reason] : reason.fatal}`,
  // The store's own `+OK …` or `-ERR …` line, as it said it (RFC 2449 §8: its response code,
  // [IN-USE], [AUTH] …, goes through unchanged).
  storeAnswer: (_tag, answer) => Buffer.concat([answer, Buffer.from('\r\n')]),
};

function reader(view: () => SessionView): Reader<Buffer> {
  // AUTH with an initial response carries a whole SASL message, an OAuth2 token's included.
  const auth = { verb: 'AUTH', limit: MAX_POP3_AUTH_LINE_BYTES };
  const lines = new Pop3LineReader(MAX_POP3_LINE_BYTES, auth);
  let sasl = false;
  return {
    feed(buf, offset) {
      const step = lines.feed(buf, offset);
      const event = step.event;
      if (event === undefined) return { consumed: step.consumed };
      if (event.kind === 'too-long') {
        view().log.at('refusal', 'limits', 'line too long, closing');
        return {
          consumed: step.consumed,
          input: { kind: 'fatal', answer: undefined, text: 'Line too long' },
        };
      }
      return {
        consumed: step.consumed,
        input: sasl
          ? { kind: 'sasl-response', line: event.bytes }
          : { kind: 'command', command: event.bytes },
      };
    },
    expectSaslResponse() {
      sasl = true;
      lines.setLimit(MAX_POP3_SASL_LINE_BYTES);
    },
    expectCommands() {
      sasl = false;
      lines.setLimit(MAX_POP3_LINE_BYTES, auth);
    },
    reset: () => lines.reset(),
  };
}

function dispatch(line: Buffer, view: SessionView): Reply {
  const { log } = view;
  const parsed = parseCommand(line);
  if (!parsed.ok) {
    log.at('command', 'command', 'C: unparsable command', { bytes: line.length });
    return { tag: undefined, verb: '', outcome: { kind: 'bad', text: parsed.error } };
  }
  const { verb, arg } = parsed.value;
  const spec = COMMANDS.get(verb);
  const where = view.inbox === undefined ? 'authorization' : 'transaction';
  if (spec === undefined || !spec.states.includes(where)) {
    // An unknown keyword is neither logged nor echoed: it may be a SASL response sent after a
    // refused AUTH (base64 of a password), and reflected input is what ALPACA needs.
    log.at('command', 'command', 'C:', {
      verb: spec === undefined ? null : verb,
      bytes: line.length,
      refused: true,
    });
    const text =
      spec === undefined
        ? 'Unknown command'
        : `${verb} is not valid ${where === 'authorization' ? 'before' : 'after'} login`;
    return { tag: undefined, verb, outcome: { kind: 'bad', text } };
  }
  if (log.enabled('command')) log.at('command', 'command', 'C:', { verb, ...spec.describe(arg) });
  const checked = check(spec, arg);
  if (!checked.ok) return { tag: undefined, verb, outcome: { kind: 'bad', text: checked.text } };
  // RestrictPlainPasswords before TLS: refused before the password is even looked at.
  if (!view.security.plainAllowed && spec.plaintext(checked.values))
    return { tag: undefined, verb, outcome: { kind: 'no', refusal: { kind: 'plaintext' } } };
  const { security, pendingUser, inbox } = view;
  const { bearerMechanisms } = view.settings;
  return {
    tag: undefined,
    verb,
    outcome: spec.run({ security, pendingUser, inbox, bearerMechanisms }, checked.values),
  };
}

export const pop3Dialect: Dialect<Buffer> = {
  protocol: 'pop3',
  words,
  // RFC 1939 §4. No APOP timestamp: APOP cannot be offered (commands/apop.ts).
  greeting: (view) => `+OK ${view.settings.banner}`,
  reader,
  dispatch,
  replay: (runtime) => pop3Replay(runtime.shared.storeCapabilities),
  // No farewell when the store closes first: a line injected mid-RETR would become part of the
  // message (POP3 has no unsolicited responses, RFC 1939 §3, nothing tells it apart).
  farewell: undefined,
  spoof: {
    inbox: (runtime, user) =>
      runtime.spoof === undefined
        ? undefined
        : new SpoofInbox(runtime.spoof, { outage: new Date(), user }),
    loggedIn: '+OK Logged in (your mailbox is temporarily unavailable)',
  },
};

export function startPopSession(socket: Socket, ctx: SessionContext): SessionHandle {
  return startSession(pop3Dialect, socket, ctx);
}
