/**
 * One IMAP client connection, from greeting to pipe. The state is one value from a closed set:
 *
 *   not-authenticated ──LOGIN──────────────▶ logging-in ──store OK──▶ piping
 *        │  ▲   AUTHENTICATE                   │   ▲                      (transparent bytes)
 *        │  └──────── authenticating ──done────┘   │
 *        │  ◀────────── NO / failure ───────────────┘
 *        └──LOGOUT, limits, idle, shutdown──▶ logout (closed)
 *
 * Before login every byte goes through the framer and the parser; the handlers of
 * `commands/` answer. While logging in, nothing more is parsed: bytes the client pipelined are
 * queued (bounded; then TCP backpressure) and either forwarded to the store after its OK, or parsed
 * as the next commands after a refusal (RFC 3501 §5.5 allows pipelining; nginx does the same).
 */

import type { Socket } from 'node:net';
import { ClientConnection } from '../clientConnection.js';
import type { LoginOutcome, Principal } from '../login.js';
import type { SaslExchange, SaslStep } from '../sasl.js';
import type { SessionContext, SessionHandle } from '../server.js';
import type { Farewell } from '../pipe.js';
import { certificatePrincipal } from '../certlogin.js';
import {
  type LoginEnd,
  RefusalCounts,
  dropIfClosed,
  logLoginOutcome,
  readSaslResponse,
  startLogin,
} from '../sessionLogin.js';
import { formatAddress } from '../store.js';
import {
  type SessionSecurity,
  imapCapabilityText,
  policyOf,
  sessionSecurity,
} from '../tls/security.js';
import { Capabilities } from './capabilities.js';
import { AFTER_LOGIN_COMMANDS, PRE_AUTH_COMMANDS } from './commands/index.js';
import type { CommandOutcome, PreAuthContext } from './commands/types.js';
import { nameForLog } from './commands/types.js';
import { type FrameEvent, ImapFramer } from './framer.js';
import { type ImapCommand, parseCommand, tagOf, verbOf } from './parser.js';
import { imapReplay } from './replay.js';

export type ImapState =
  | 'not-authenticated'
  | 'authenticating'
  /** STARTTLS answered OK: nothing is read until the TLS handshake is done. */
  | 'tls-handshake'
  | 'logging-in'
  | 'piping'
  | 'logout';

/** Dovecot's text for a failed login: an unknown user must look exactly like a wrong password,
 * so that user names cannot be probed (RFC 5530 AUTHENTICATIONFAILED). */
export const AUTH_FAILED = 'NO [AUTHENTICATIONFAILED] Authentication failed.';

export function startImapSession(socket: Socket, ctx: SessionContext): SessionHandle {
  return new ImapSession(socket, ctx);
}

/** RFC 3501 §7.1.5: when the store closes first, the client hears BYE unless the store said it. */
const STORE_CLOSED_FAREWELL: Farewell = {
  bytes: Buffer.from('* BYE Connection to the mail store was closed\r\n'),
  alreadySaid: (tail: Buffer) =>
    /(^|\n)\* BYE [^\n]*\r?\n(?:[^\n]*\r?\n)?$/.test(tail.toString('latin1')),
};

class ImapSession implements SessionHandle, PreAuthContext {
  private state: ImapState = 'not-authenticated';
  /** Recomputed after STARTTLS (RFC 3501 §6.2.1: the client must ask again). */
  capabilities: Capabilities;
  security: SessionSecurity;
  private readonly framer: ImapFramer;
  private readonly conn: ClientConnection;
  private readonly refusals: RefusalCounts;
  private sasl: { tag: string; exchange: SaslExchange } | undefined;
  private clientEnded = false;
  private shuttingDown = false;
  private user: string | undefined;
  private store: string | undefined;
  private clientId: ReadonlyMap<string, string | null> | null = null;
  readonly closed: Promise<void>;

  constructor(
    socket: Socket,
    private readonly ctx: SessionContext,
  ) {
    this.security = sessionSecurity(policyOf(ctx.site.settings), ctx.secure);
    this.capabilities = new Capabilities(
      imapCapabilityText(ctx.site.settings.capability, this.security),
    );
    this.framer = new ImapFramer({ allowNonSyncLiterals: this.capabilities.nonSyncLiterals });
    this.conn = new ClientConnection(socket, ctx, {
      onData: this.onData,
      onEnd: this.onEnd,
      onTimeout: this.onTimeout,
      onClose: this.onClose,
      closedFields: () => ({ user: this.user ?? null, store: this.store ?? null }),
    });
    this.closed = this.conn.closed;
    this.refusals = new RefusalCounts(ctx.log);
    // RFC 3501 §7.1.1: the greeting may carry CAPABILITY, sparing the client a round trip.
    this.send(`* OK [CAPABILITY ${this.capabilities.text}] ${ctx.site.settings.banner}`);
  }

  // ---- PreAuthContext (what command handlers may do) ----

  send(line: string): void {
    this.conn.send(line);
  }

  rememberClientId(params: ReadonlyMap<string, string | null> | null): void {
    this.clientId = params;
  }

  // ---- SessionHandle ----

  shutdown(): void {
    this.shuttingDown = true;
    if (this.state === 'not-authenticated' || this.state === 'authenticating') {
      this.closeWith('* BYE Server shutting down');
    }
  }

  abort(): void {
    this.conn.abort();
  }

  // ---- Socket events ----

  private readonly onData = (chunk: Buffer): void => {
    switch (this.state) {
      case 'logging-in':
        this.conn.queue(chunk);
        return;
      case 'not-authenticated':
      case 'authenticating':
        this.consume(chunk);
        return;
      case 'piping':
      case 'logout':
        return;
    }
  };

  private readonly onEnd = (): void => {
    this.clientEnded = true;
    // While logging in, the queued bytes (maybe a pipelined LOGOUT) are dealt with first.
    if (this.state === 'not-authenticated' || this.state === 'authenticating')
      this.closeWith(undefined);
  };

  private readonly onTimeout = (): void => {
    if (this.state === 'not-authenticated' || this.state === 'authenticating') {
      this.ctx.log.at('refusal', 'idle', 'client idle before login, closing');
      this.closeWith('* BYE Autologout; idle for too long');
    }
  };

  private readonly onClose = (): void => {
    if (this.state === 'piping') return; // the pipe reports the end of the session
    this.state = 'logout';
    this.conn.logClosed({});
  };

  // ---- Framing and dispatch ----

  private consume(buf: Buffer): void {
    let off = 0;
    while (
      off < buf.length &&
      (this.state === 'not-authenticated' || this.state === 'authenticating')
    ) {
      const step = this.framer.feed(buf, off);
      off += step.consumed;
      if (step.event !== undefined) this.onFrame(step.event);
    }
    if (off < buf.length && this.state === 'logging-in') this.conn.queueRest(buf.subarray(off));
  }

  private onFrame(event: FrameEvent): void {
    switch (event.kind) {
      case 'command': {
        const parsed = parseCommand(event.parts);
        const verb = verbOf(event.parts);
        if (
          !parsed.ok &&
          parsed.error.tag !== undefined &&
          verb !== undefined &&
          !PRE_AUTH_COMMANDS.has(verb)
        ) {
          // Whatever its arguments, the command itself is refused: say that, not the syntax.
          this.refuseUnknown(parsed.error.tag, verb, 0);
          return;
        }
        if (!parsed.ok) {
          this.ctx.log.at('command', 'command', 'C: unparsable command', {
            tag: parsed.error.tag ?? null,
            verb: verbOf(event.parts) ?? null,
            error: parsed.error.message,
          });
          this.bad(parsed.error.tag, parsed.error.message);
          return;
        }
        this.dispatch(parsed.value);
        return;
      }
      case 'line':
        this.onSaslResponse(event.bytes);
        return;
      case 'literal-request': {
        // RFC 3501 §7.5: the server may refuse a literal with a tagged answer instead of `+`;
        // a literal announced by a command that takes none is never read, so its bytes can never
        // be taken for a command (nginx's "literal after an invalid command" case).
        const verb = verbOf(event.parts);
        const spec = verb === undefined ? undefined : PRE_AUTH_COMMANDS.get(verb);
        if (spec?.literals === true && this.state === 'not-authenticated') {
          this.send('+ Ready for literal data');
          this.framer.acceptLiteral();
          return;
        }
        this.framer.reset();
        this.bad(
          tagOf(event.parts),
          verb === undefined ? 'Invalid command' : `${verb} takes no literal here`,
        );
        return;
      }
      case 'error': {
        const tag = tagOf(event.parts);
        const message = {
          'line-too-long': 'Command line too long',
          'literal-too-large': 'Literal too large',
          'too-many-literals': 'Too many literals in one command',
          'non-sync-literal-not-allowed': 'Non-synchronising literals are not supported',
        }[event.error];
        this.ctx.log.at('refusal', 'limits', message, { tag: tag ?? null });
        if (event.sync) {
          // Nothing of the literal was sent: refuse the command, the stream stays in step.
          this.framer.reset();
          this.bad(tag, message);
          return;
        }
        // The stream cannot be resynchronised (RFC 7888 §4: the server may close). An over-long
        // line is not echoed back as a tag.
        if (tag !== undefined && event.error !== 'line-too-long')
          this.send(`${tag} BAD ${message}`);
        this.closeWith(`* BYE ${message}`);
        return;
      }
    }
  }

  /** A command that does not exist before login (its arguments are never looked at or logged). */
  private refuseUnknown(tag: string, verb: string, args: number): void {
    const shown = verb.length > 32 ? `${verb.slice(0, 32)}…` : verb;
    this.ctx.log.at('command', 'command', 'C:', { tag, verb: shown, args });
    this.bad(
      tag,
      AFTER_LOGIN_COMMANDS.has(verb)
        ? `${shown} is not valid before login`
        : `Unknown command ${shown}`,
    );
  }

  private dispatch(cmd: ImapCommand): void {
    const spec = PRE_AUTH_COMMANDS.get(cmd.verb);
    if (spec === undefined) {
      this.refuseUnknown(cmd.tag, cmd.verb, cmd.args.length);
      return;
    }
    if (this.ctx.log.enabled('command')) {
      this.ctx.log.at('command', 'command', 'C:', {
        tag: cmd.tag,
        verb: cmd.verb,
        ...spec.describe(cmd.args),
      });
    }
    this.act(cmd.tag, spec.handle(this, cmd));
  }

  private act(tag: string, outcome: CommandOutcome): void {
    switch (outcome.kind) {
      case 'done':
        this.refusals.commandAccepted();
        return;
      case 'bad':
        this.bad(tag, outcome.message);
        return;
      case 'logout':
        this.closeWith(undefined);
        return;
      case 'login':
        this.refusals.commandAccepted();
        this.startLogin(tag, { kind: 'password', credentials: outcome.credentials, sasl: false });
        return;
      case 'sasl':
        this.refusals.commandAccepted();
        this.saslStep(tag, outcome.exchange, outcome.step);
        return;
      case 'starttls':
        this.refusals.commandAccepted();
        this.startTls(tag);
        return;
    }
  }

  /** A tagged (or untagged when no tag could be read) BAD; closes after too many in a row. */
  private bad(tag: string | undefined, message: string): void {
    this.send(`${tag ?? '*'} BAD ${message}`);
    if (this.refusals.badCommand()) this.closeWith('* BYE Too many invalid commands');
  }

  // ---- AUTHENTICATE exchange (RFC 3501 §6.2.2) ----

  private saslStep(tag: string, exchange: SaslExchange, step: SaslStep): void {
    switch (step.kind) {
      case 'challenge':
        this.state = 'authenticating';
        this.sasl = { tag, exchange };
        this.send(`+ ${step.challenge.toString('base64')}`);
        this.framer.expectLine();
        return;
      case 'done':
        this.sasl = undefined;
        this.state = 'not-authenticated';
        this.startLogin(tag, { kind: 'password', credentials: step.credentials, sasl: true });
        return;
      case 'failed':
        this.sasl = undefined;
        this.state = 'not-authenticated';
        this.send(`${tag} NO ${step.message}`);
        this.countFailedLogin();
        return;
      case 'external':
        this.sasl = undefined;
        this.state = 'not-authenticated';
        this.startCertLogin(tag, step.authzid);
        return;
    }
  }

  private onSaslResponse(line: Buffer): void {
    const sasl = this.sasl;
    if (sasl === undefined) return;
    const decoded = readSaslResponse(this.ctx.log, line);
    if (!decoded.ok) {
      this.sasl = undefined;
      this.state = 'not-authenticated';
      this.bad(sasl.tag, decoded.error);
      return;
    }
    if (decoded.value === 'cancel') {
      // RFC 3501 §6.2.2: a cancelled exchange is answered with a tagged BAD.
      this.sasl = undefined;
      this.state = 'not-authenticated';
      this.send(`${sasl.tag} BAD Authentication cancelled`);
      return;
    }
    this.saslStep(sasl.tag, sasl.exchange, sasl.exchange.next(decoded.value));
  }

  // ---- STARTTLS (RFC 3501 §6.2.1) and certificate login (RFC 4422 App. A) ----

  /**
   * Answer OK, then negotiate TLS. Whatever the client sent after the STARTTLS line was sent in
   * the clear and is dropped, never read as commands (CVE-2011-0411): the framer forgets it, the
   * rest of the chunk is not consumed (state), and the plain socket is no longer read by us.
   */
  private startTls(tag: string): void {
    const tls = this.conn.serverTls();
    if (tls === undefined) {
      this.send(`${tag} NO [UNAVAILABLE] TLS is not available`);
      return;
    }
    this.state = 'tls-handshake';
    this.framer.reset();
    const { settings } = this.ctx.site;
    this.conn.startTls(tls, 'starttls', `${tag} OK Begin TLS negotiation now`, (info) => {
      this.security = sessionSecurity(policyOf(settings), info);
      this.capabilities = new Capabilities(imapCapabilityText(settings.capability, this.security));
      this.state = 'not-authenticated';
      if (this.shuttingDown) this.closeWith('* BYE Server shutting down');
    });
  }

  /** AUTHENTICATE EXTERNAL: the verified client certificate names the user (`certlogin.ts`). */
  private startCertLogin(tag: string, authzid: Buffer): void {
    const principal = certificatePrincipal(this.ctx.site, this.security, authzid, this.ctx.log);
    if (!principal.ok) {
      this.send(`${tag} NO [AUTHENTICATIONFAILED] ${principal.error}`);
      this.countFailedLogin();
      return;
    }
    this.startLogin(tag, principal.value);
  }

  // ---- Login: directory, store, replay ----

  private startLogin(tag: string, principal: Principal): void {
    this.state = 'logging-in';
    this.user =
      principal.kind === 'password'
        ? nameForLog(principal.credentials.user)
        : principal.peer.subject;
    this.conn.socket.setTimeout(0); // the directory and store have their own time limits
    startLogin(this.ctx, this.security, principal, imapReplay, this.loginEnd(tag));
  }

  /** The same tag answers the login whichever way it ends. */
  private loginEnd(tag: string): LoginEnd {
    return {
      finish: (outcome) => this.finishLogin(tag, outcome),
      internalError: () => this.closeWith('* BYE Internal error'),
    };
  }

  private finishLogin(tag: string, outcome: LoginOutcome): void {
    if (dropIfClosed(this.state === 'logging-in', outcome)) return;
    logLoginOutcome(this.ctx, this.user ?? '', outcome);
    switch (outcome.kind) {
      case 'logged-in':
        this.store = formatAddress(outcome.store);
        this.conn.socket.write(
          Buffer.concat([Buffer.from(`${tag} `), outcome.answer, Buffer.from('\r\n')]),
        );
        this.startPiping(outcome.socket, outcome.leftover);
        return;
      case 'refused':
        this.conn.socket.write(
          Buffer.concat([Buffer.from(`${tag} `), outcome.answer, Buffer.from('\r\n')]),
        );
        this.countFailedLogin();
        break;
      case 'unknown-user':
        this.send(`${tag} ${AUTH_FAILED}`);
        this.countFailedLogin();
        break;
      case 'directory-down':
        this.send(
          `${tag} NO [UNAVAILABLE] User directory temporarily unavailable, try again later`,
        );
        break;
      case 'stores-down':
        // RFC 3501 §7.1: ALERT text must be shown to the user (the guide's ServerDownAlert).
        this.send(`${tag} NO [ALERT] ${this.ctx.site.settings.serverDownAlert}`);
        break;
    }
    this.user = undefined;
    this.resumeAfterLogin();
  }

  private countFailedLogin(): void {
    if (this.refusals.failedLogin()) this.closeWith('* BYE Too many failed logins');
  }

  /** Back to commands after a failed login: parse what the client pipelined meanwhile. */
  private resumeAfterLogin(): void {
    if (this.state !== 'logging-in') return; // closed by a limit
    this.state = 'not-authenticated';
    if (this.shuttingDown) {
      this.closeWith('* BYE Server shutting down');
      return;
    }
    this.conn.readQueued(this.ctx.site.settings.idleTimeoutMs);
    if (this.state === 'not-authenticated' || this.state === 'authenticating') {
      if (this.clientEnded) this.closeWith(undefined);
      else this.conn.socket.resume();
    }
  }

  private startPiping(store: Socket, leftover: Buffer): void {
    this.state = 'piping';
    if (this.ctx.log.enabled('dialogue') && this.clientId !== null) {
      this.ctx.log.at('dialogue', 'login', 'client ID', {
        id: [...this.clientId].map(([k, v]) => `${k}=${v ?? 'NIL'}`).join('; '),
      });
    }
    // The login phase is over: forget what it held (a partly framed command, a SASL exchange, the
    // client's ID), so that an idle piped session keeps little beyond its sockets.
    this.framer.reset();
    this.sasl = undefined;
    this.clientId = null;
    this.conn.pipe(store, leftover, STORE_CLOSED_FAREWELL);
  }

  // ---- Closing ----

  /** Say `line` (if any), close our side, and cut the connection if the client lingers. */
  private closeWith(line: string | undefined): void {
    if (this.state === 'logout') return;
    this.state = 'logout';
    this.conn.close(line);
  }
}
