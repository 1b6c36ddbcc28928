/**
 * IMAP before login, as a dialect of the pre-login session (`../session.ts`): the greeting with
 * its CAPABILITY code, the framer (`framer.ts`) and parser (`parser.ts`), the command table
 * (`commands/`) and its dispatch, and IMAP's words: tagged OK / NO / BAD with RFC 5530 response
 * codes, untagged BYE.
 *
 * Before login every byte goes through the framer and the parser; literals are accepted only for
 * commands that take them (RFC 3501 §7.5: a refused literal is answered instead of `+`, so its
 * bytes are never read as a command — nginx's "literal after an invalid command" case).
 */

import type { Socket } from 'node:net';
import type { Dialect, Input, Reader, Refusal, Reply, SessionView, Words } from '../dialect.js';
import type { Farewell } from '../pipe.js';
import type { SessionContext, SessionHandle } from '../server.js';
import type { ProxySettings } from '../settings.js';
import { startSession } from '../session.js';
import { Capabilities, imapCapabilityText } from './capabilities.js';
import { AFTER_LOGIN_COMMANDS, COMMANDS } from './commands/index.js';
import { check } from './commands/types.js';
import { type FramePart, ImapFramer } from './framer.js';
import { parseCommand, tagOf, verbOf } from './parser.js';
import { imapReplay } from './replay.js';

/** Dovecot's text for a failed login: an unknown user must look exactly like a wrong password,
 * so that user names cannot be probed (RFC 5530 AUTHENTICATIONFAILED). */
const AUTH_FAILED = 'NO [AUTHENTICATIONFAILED] Authentication failed.';

/** RFC 3501 §7.1.5: when the store closes first, the client hears BYE unless the store said it. */
const STORE_CLOSED_FAREWELL: Farewell = {
  bytes: Buffer.from('* BYE Connection to the mail store was closed\r\n'),
  alreadySaid: (tail: Buffer) =>
    /(^|\n)\* BYE [^\n]*\r?\n(?:[^\n]*\r?\n)?$/.test(tail.toString('latin1')),
};

/**
 * Lists already made, per site's settings (immutable, one object per runtime and site: a reload
 * brings new ones) and the session's TLS state: a connection asks for its list for the greeting,
 * the framer and every command (issue 18: parsing the configured list each time was a tenth of
 * the login's own JavaScript). A memo of a pure function, as `inNetworks`'s matchers.
 */
const madeCapabilities = new WeakMap<ProxySettings, Map<string, Capabilities>>();

/** The CAPABILITY list for this connection (recomputed after STARTTLS). */
function capabilities(view: SessionView): Capabilities {
  const { settings, security } = view;
  let made = madeCapabilities.get(settings);
  if (made === undefined) {
    made = new Map();
    madeCapabilities.set(settings, made);
  }
  const key = `${+security.startTls}${+security.plainAllowed}${+security.external}`;
  let caps = made.get(key);
  if (caps === undefined) {
    caps = new Capabilities(
      imapCapabilityText(settings.capability, security, settings.bearerMechanisms),
    );
    made.set(key, caps);
  }
  return caps;
}

function refusalText(r: Refusal): string {
  switch (r.kind) {
    case 'text':
      return r.text;
    case 'plaintext':
      // RFC 5530; LOGINDISABLED is advertised then (RFC 3501 §6.2.3).
      return '[PRIVACYREQUIRED] Plaintext authentication is disabled on this connection; use STARTTLS first';
    case 'external':
      return `[AUTHENTICATIONFAILED] ${r.reason}`;
    case 'mechanism':
      return '[CANNOT] Unsupported authentication mechanism';
    case 'tls-unavailable':
      return '[UNAVAILABLE] TLS is not available';
    case 'auth-failed':
      return AUTH_FAILED.slice('NO '.length);
    case 'directory-down':
      return '[UNAVAILABLE] User directory temporarily unavailable, try again later';
    case 'stores-down':
      // RFC 3501 §7.1: ALERT text must be shown to the user (the guide's ServerDownAlert).
      return `[ALERT] ${r.alert}`;
  }
}

const GOODBYE = {
  'bad-commands': 'Too many invalid commands',
  'too-many-commands': 'Too many commands before login',
  'failed-logins': 'Too many failed logins',
  idle: 'Autologout; idle for too long',
  'login-timeout': 'Autologout; no login in time',
  // RFC 5530 UNAVAILABLE: try again later; a client must not take it as a refused login.
  'server-full': '[UNAVAILABLE] Too many connections, try again later',
  'address-full': '[UNAVAILABLE] Too many connections from your address, try again later',
  shutdown: 'Server shutting down',
  'internal-error': 'Internal error',
} as const;

const words: Words = {
  ok: (tag, verb, text) => `${tag ?? '*'} OK ${text ?? `${verb} completed`}`,
  no: (tag, refusal) => `${tag ?? '*'} NO ${refusalText(refusal)}`,
  bad: (tag, text) => `${tag ?? '*'} BAD ${text}`,
  logout: (tag) => ['* BYE Logging out', `${tag ?? '*'} OK LOGOUT completed`],
  startTls: (tag) => `${tag ?? '*'} OK Begin TLS negotiation now`,
  goodbye: (reason) => `* BYE ${typeof reason === 'string' ? GOODBYE[reason] : reason.fatal}`,
  storeAnswer: (tag, answer) =>
    Buffer.concat([Buffer.from(`${tag ?? '*'} `), answer, Buffer.from('\r\n')]),
};

const FRAME_ERRORS = {
  'line-too-long': 'Command line too long',
  'literal-too-large': 'Literal too large',
  'too-many-literals': 'Too many literals in one command',
  'non-sync-literal-not-allowed': 'Non-synchronising literals are not supported',
} as const;

/** The framer's events as the session's inputs. */
function reader(current: () => SessionView): Reader<FramePart[]> {
  const view = current();
  const framer = new ImapFramer({ allowNonSyncLiterals: capabilities(view).nonSyncLiterals });
  const { log } = view;
  const feed = (buf: Buffer, offset: number): { consumed: number; input?: Input<FramePart[]> } => {
    const step = framer.feed(buf, offset);
    const event = step.event;
    if (event === undefined) return { consumed: step.consumed };
    const input = ((): Input<FramePart[]> => {
      switch (event.kind) {
        case 'command':
          return { kind: 'command', command: event.parts };
        case 'line':
          return { kind: 'sasl-response', line: event.bytes };
        case 'literal-request': {
          const verb = verbOf(event.parts);
          if (verb === 'LOGIN' && !current().security.plainAllowed) {
            // RestrictPlainPasswords before TLS: refused now, instead of `+`, so that the client
            // never sends its password in the clear (RFC 3501 §7.5: it waits for `+`).
            framer.reset();
            const tag = tagOf(event.parts);
            log.at('command', 'command', 'C:', { tag: tag ?? null, verb, refused: true });
            return { kind: 'refuse', tag, refusal: { kind: 'plaintext' } };
          }
          if (verb !== undefined && COMMANDS.get(verb)?.literals === true) {
            framer.acceptLiteral();
            return { kind: 'continue', line: '+ Ready for literal data' };
          }
          framer.reset();
          const text = verb === undefined ? 'Invalid command' : `${verb} takes no literal here`;
          return { kind: 'invalid', tag: tagOf(event.parts), text };
        }
        case 'error': {
          const tag = tagOf(event.parts);
          const text = FRAME_ERRORS[event.error];
          log.at('refusal', 'limits', text, { tag: tag ?? null });
          if (event.sync) {
            // Nothing of the literal was sent: refuse the command, the stream stays in step.
            framer.reset();
            return { kind: 'invalid', tag, text };
          }
          // The stream cannot be resynchronised (RFC 7888 §4: the server may close). An
          // over-long line is not echoed back as a tag.
          const answer = tag !== undefined && event.error !== 'line-too-long';
          return { kind: 'fatal', answer: answer ? { tag, text } : undefined, text };
        }
      }
    })();
    return { consumed: step.consumed, input };
  };
  return {
    feed,
    expectSaslResponse: () => framer.expectLine(),
    expectCommands: () => undefined, // the framer reads one line, then commands again
    reset: () => framer.reset(),
  };
}

function dispatch(parts: FramePart[], view: SessionView): Reply {
  const { log } = view;
  const parsed = parseCommand(parts);
  if (!parsed.ok) {
    const { tag, message } = parsed.error;
    const verb = verbOf(parts);
    // Whatever its arguments, a command that does not exist is refused as such.
    if (tag !== undefined && verb !== undefined && !COMMANDS.has(verb))
      return refuseUnknown(tag, verb, 0, view);
    // Neither tag nor verb is logged: after a refused AUTHENTICATE the line may be the client's
    // SASL response (base64 of its password), read as a command.
    log.at('command', 'command', 'C: unparsable command', {
      verb: verb !== undefined && COMMANDS.has(verb) ? verb : null,
      error: message,
    });
    // A line without a verb is answered untagged: its first word may be a SASL response (the
    // password, base64) that must not be echoed or logged as a tag.
    return {
      tag: verb === undefined ? undefined : tag,
      verb: verb ?? '',
      outcome: { kind: 'bad', text: message },
    };
  }
  const { tag, verb, args } = parsed.value;
  const spec = COMMANDS.get(verb);
  if (spec === undefined) return refuseUnknown(tag, verb, args.length, view);
  if (log.enabled('command'))
    log.at('command', 'command', 'C:', { tag, verb, ...spec.describe(args) });
  const checked = check(spec, args);
  if (!checked.ok) return { tag, verb, outcome: { kind: 'bad', text: checked.text } };
  if (!view.security.plainAllowed && spec.plaintext(checked.values))
    return { tag, verb, outcome: { kind: 'no', refusal: { kind: 'plaintext' } } };
  const ctx = { capabilities: capabilities(view), security: view.security };
  return { tag, verb, outcome: spec.run(ctx, checked.values) };
}

/**
 * A command that does not exist before login. Its words are never logged (after a refused
 * AUTHENTICATE the client's SASL response, base64 of its password, arrives as such a line) nor
 * echoed (reflected input is what a cross-protocol attack, ALPACA, builds on; Dovecot and nginx
 * echo nothing); a command of the authenticated state is named, from our own table.
 */
function refuseUnknown(tag: string, verb: string, args: number, view: SessionView): Reply {
  const known = AFTER_LOGIN_COMMANDS.has(verb);
  view.log.at('command', 'command', 'C:', { verb: known ? verb : null, args, refused: true });
  const text = known ? `${verb} is not valid before login` : 'Unknown command';
  return { tag, verb, outcome: { kind: 'bad', text } };
}

const imapDialect: Dialect<FramePart[]> = {
  protocol: 'imap',
  words,
  // RFC 3501 §7.1.1: the greeting may carry CAPABILITY, sparing the client a round trip.
  greeting: (view) => `* OK [CAPABILITY ${capabilities(view).text}] ${view.settings.banner}`,
  reader,
  dispatch,
  replay: () => imapReplay,
  farewell: STORE_CLOSED_FAREWELL,
};

export function startImapSession(socket: Socket, ctx: SessionContext): SessionHandle {
  return startSession(imapDialect, socket, ctx);
}
