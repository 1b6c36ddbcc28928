/**
 * One POP3 client connection, from greeting to pipe (or to the spoof inbox). The state is one
 * value from a closed set:
 *
 *   authorization ──PASS─────────────────▶ logging-in ──store +OK──▶ piping (transparent bytes)
 *      │  ▲   AUTH PLAIN                      │  │  ▲
 *      │  └──── authenticating ──done─────────┘  │  └─ -ERR / failure: back to authorization
 *      │                                         └──stores down + SpoofMessageFile──▶ transaction
 *      └──QUIT, limits, idle, shutdown──▶ closed                                  (spoof inbox)
 *
 * Before login every byte goes through the line reader and the parser; the handlers of
 * `commands/` answer. While logging in nothing more is parsed: bytes the client pipelined
 * (RFC 2449 §6.6) are queued, bounded, then TCP backpressure, and either forwarded to the store
 * after its `+OK`, or read as the next commands after a refusal.
 */

import type { Socket } from 'node:net';
import { ClientConnection } from '../clientConnection.js';
import {
  MAX_POP3_LINE_BYTES,
  MAX_POP3_SASL_LINE_BYTES,
  POP3_TRANSACTION_IDLE_MS,
} from '../limits.js';
import type { LoginOutcome, Principal } from '../login.js';
import type { SaslExchange, SaslStep } from '../sasl.js';
import type { SessionContext, SessionHandle } from '../server.js';
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
  PLAIN_SECURITY,
  POP3_PLAINTEXT_REFUSED,
  type SessionSecurity,
  isPop3Plaintext,
  policyOf,
  sessionSecurity,
} from '../tls/security.js';
import { COMMANDS } from './commands/index.js';
import { type CommandOutcome, type Pop3Context, nameForLog } from './commands/types.js';
import { type LineEvent, Pop3LineReader } from './lineReader.js';
import { parseCommand } from './parser.js';
import { pop3Replay } from './replay.js';
import { SpoofInbox } from './spoof.js';

export type Pop3State =
  | 'authorization'
  | 'authenticating'
  /** STLS answered +OK: nothing is read until the TLS handshake is done. */
  | 'tls-handshake'
  | 'logging-in'
  | 'piping'
  | 'transaction'
  | 'closed';

/** Dovecot's text for a failed login. An unknown user gets exactly this too, so that user names
 * cannot be probed (RFC 3206 §4: AUTH response code). */
export const AUTH_FAILED = '-ERR [AUTH] Authentication failed.';

export function startPopSession(socket: Socket, ctx: SessionContext): SessionHandle {
  return new PopSession(socket, ctx);
}

class PopSession implements SessionHandle, Pop3Context {
  private state: Pop3State = 'authorization';
  private readonly reader = new Pop3LineReader(MAX_POP3_LINE_BYTES);
  private readonly conn: ClientConnection;
  private readonly refusals: RefusalCounts;
  private sasl: SaslExchange | undefined;
  private clientEnded = false;
  private shuttingDown = false;
  private user: string | undefined;
  private store: string | undefined;
  pendingUser: Buffer | undefined;
  /** TLS state and what it allows (`tls/security.ts`); recomputed after STLS. */
  security: SessionSecurity = PLAIN_SECURITY;
  inbox: SpoofInbox | undefined;
  readonly closed: Promise<void>;

  constructor(
    socket: Socket,
    private readonly ctx: SessionContext,
  ) {
    this.conn = new ClientConnection(socket, ctx, {
      onData: this.onData,
      onEnd: this.onEnd,
      onTimeout: this.onTimeout,
      onClose: this.onClose,
      closedFields: () => ({
        user: this.user ?? null,
        store: this.store ?? null,
        spoof: this.inbox !== undefined,
      }),
    });
    this.closed = this.conn.closed;
    this.refusals = new RefusalCounts(ctx.log);
    // RFC 1939 §4. No APOP timestamp: APOP cannot be offered (commands/apop.ts).
    this.send(`+OK ${ctx.site.settings.banner}`);
    this.security = sessionSecurity(policyOf(ctx.site.settings), ctx.secure);
  }

  // ---- Pop3Context (what command handlers may do) ----

  send(line: string): void {
    this.conn.send(line);
  }

  sendMultiline(first: string, body: Buffer): void {
    this.ctx.log.at('trace', 'response', 'S:', { line: first, bytes: body.length });
    this.conn.socket.write(Buffer.concat([Buffer.from(`${first}\r\n`), body]));
  }

  // ---- SessionHandle ----

  shutdown(): void {
    this.shuttingDown = true;
    // The spoof inbox is served until the grace period ends, like a piped session.
    if (this.state === 'authorization' || this.state === 'authenticating') {
      this.closeWith('-ERR [SYS/TEMP] Server shutting down');
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
      case 'authorization':
      case 'authenticating':
      case 'transaction':
        this.consume(chunk);
        return;
      case 'piping':
      case 'closed':
        return;
    }
  };

  private readonly onEnd = (): void => {
    this.clientEnded = true;
    // While logging in, the queued bytes (maybe a pipelined QUIT) are dealt with first.
    if (this.state !== 'logging-in') this.closeWith(undefined);
  };

  private readonly onTimeout = (): void => {
    if (this.state === 'logging-in') return;
    this.ctx.log.at('refusal', 'idle', 'client idle, closing', { state: this.state });
    this.closeWith('-ERR Disconnected for inactivity');
  };

  private readonly onClose = (): void => {
    if (this.state === 'piping') return; // the pipe reports the end of the session
    this.state = 'closed';
    this.conn.logClosed({});
  };

  // ---- Framing and dispatch ----

  private reading(): boolean {
    return (
      this.state === 'authorization' ||
      this.state === 'authenticating' ||
      this.state === 'transaction'
    );
  }

  private consume(buf: Buffer): void {
    let off = 0;
    while (off < buf.length && this.reading()) {
      const step = this.reader.feed(buf, off);
      off += step.consumed;
      if (step.event !== undefined) this.onLine(step.event);
    }
    if (off < buf.length && this.state === 'logging-in') this.conn.queueRest(buf.subarray(off));
  }

  private onLine(event: LineEvent): void {
    if (event.kind === 'too-long') {
      this.ctx.log.at('refusal', 'limits', 'line too long, closing');
      this.closeWith('-ERR Line too long');
      return;
    }
    if (this.state === 'authenticating') {
      this.onSaslResponse(event.bytes);
      return;
    }
    const parsed = parseCommand(event.bytes);
    if (!parsed.ok) {
      this.ctx.log.at('command', 'command', 'C: unparsable command', {
        bytes: event.bytes.length,
        error: parsed.error,
      });
      this.bad(parsed.error);
      return;
    }
    const { verb, arg } = parsed.value;
    const spec = COMMANDS.get(verb);
    const where = this.state === 'transaction' ? 'transaction' : 'authorization';
    if (spec === undefined || !spec.states.includes(where)) {
      this.ctx.log.at('command', 'command', 'C:', { verb, refused: true });
      this.bad(
        spec === undefined
          ? `Unknown command ${verb}`
          : where === 'authorization'
            ? `${verb} is not valid before login`
            : `${verb} is not valid after login`,
      );
      return;
    }
    if (this.ctx.log.enabled('command')) {
      this.ctx.log.at('command', 'command', 'C:', { verb, ...spec.describe(arg) });
    }
    if (!this.security.plainAllowed && isPop3Plaintext(verb, arg)) {
      // RestrictPlainPasswords before TLS: refused before the password is even looked at.
      this.send(POP3_PLAINTEXT_REFUSED);
      return;
    }
    this.act(spec.handle(this, arg));
  }

  private act(outcome: CommandOutcome): void {
    switch (outcome.kind) {
      case 'done':
        this.refusals.commandAccepted();
        return;
      case 'error':
        this.bad(outcome.message);
        return;
      case 'quit':
        this.closeWith(undefined);
        return;
      case 'login':
        this.refusals.commandAccepted();
        this.startLogin({
          kind: 'password',
          credentials: outcome.credentials,
          sasl: outcome.method === 'sasl-plain',
        });
        return;
      case 'sasl':
        this.refusals.commandAccepted();
        this.saslStep(outcome.exchange, outcome.step);
        return;
      case 'stls':
        this.refusals.commandAccepted();
        this.startTls();
        return;
    }
  }

  /** `-ERR message`; closes after too many invalid commands in a row (cross-protocol attacks). */
  private bad(message: string): void {
    if (this.refusals.badCommand()) {
      this.closeWith(`-ERR ${message}; too many invalid commands, closing`);
      return;
    }
    this.send(`-ERR ${message}`);
  }

  // ---- AUTH exchange (RFC 5034 §4) ----

  private saslStep(exchange: SaslExchange, step: SaslStep): void {
    switch (step.kind) {
      case 'challenge':
        this.state = 'authenticating';
        this.sasl = exchange;
        this.reader.setLimit(MAX_POP3_SASL_LINE_BYTES);
        this.send(`+ ${step.challenge.toString('base64')}`);
        return;
      case 'done':
        this.endSasl();
        this.startLogin({ kind: 'password', credentials: step.credentials, sasl: true });
        return;
      case 'failed':
        this.endSasl();
        this.send(`-ERR ${step.message}`);
        this.countFailedLogin();
        return;
      case 'external':
        this.endSasl();
        this.startCertLogin(step.authzid);
        return;
    }
  }

  private endSasl(): void {
    this.sasl = undefined;
    this.state = 'authorization';
    this.reader.setLimit(MAX_POP3_LINE_BYTES);
  }

  private onSaslResponse(line: Buffer): void {
    const exchange = this.sasl;
    if (exchange === undefined) return;
    const decoded = readSaslResponse(this.ctx.log, line);
    this.endSasl();
    if (!decoded.ok) {
      this.bad(decoded.error);
      return;
    }
    if (decoded.value === 'cancel') {
      // RFC 5034 §4: a cancelled exchange is answered `-ERR`.
      this.send('-ERR Authentication cancelled');
      return;
    }
    this.saslStep(exchange, exchange.next(decoded.value));
  }

  // ---- STLS (RFC 2595 §4) and certificate login (RFC 4422 App. A) ----

  /**
   * Answer +OK, then negotiate TLS. Whatever the client sent after the STLS line was sent in the
   * clear and is dropped, never read as commands (CVE-2011-0411): the reader forgets it, the rest
   * of the chunk is not consumed (state), and the plain socket is no longer read by us.
   */
  private startTls(): void {
    const tls = this.conn.serverTls();
    if (tls === undefined) {
      this.send('-ERR [SYS/TEMP] TLS is not available');
      return;
    }
    this.state = 'tls-handshake';
    this.pendingUser = undefined;
    this.reader.reset();
    this.conn.startTls(tls, 'stls', '+OK Begin TLS negotiation', (info) => {
      this.security = sessionSecurity(policyOf(this.ctx.site.settings), info);
      this.state = 'authorization';
      if (this.shuttingDown) this.closeWith('-ERR [SYS/TEMP] Server shutting down');
    });
  }

  /** AUTH EXTERNAL: the verified client certificate names the user (`certlogin.ts`). */
  private startCertLogin(authzid: Buffer): void {
    const principal = certificatePrincipal(this.ctx.site, this.security, authzid, this.ctx.log);
    if (!principal.ok) {
      this.send(`-ERR [AUTH] ${principal.error}`);
      this.countFailedLogin();
      return;
    }
    this.startLogin(principal.value);
  }

  // ---- Login: directory, store, replay ----

  private startLogin(principal: Principal): void {
    this.state = 'logging-in';
    this.user =
      principal.kind === 'password'
        ? nameForLog(principal.credentials.user)
        : principal.peer.subject;
    this.conn.socket.setTimeout(0); // the directory and the store have their own time limits
    const replay = pop3Replay(this.ctx.runtime.shared.storeCapabilities);
    startLogin(this.ctx, this.security, principal, replay, this.loginEnd);
  }

  private readonly loginEnd: LoginEnd = {
    finish: (outcome) => this.finishLogin(outcome),
    internalError: () => {
      this.state = 'authorization';
      this.closeWith('-ERR [SYS/TEMP] Internal error');
    },
  };

  private finishLogin(outcome: LoginOutcome): void {
    if (dropIfClosed(this.state === 'logging-in', outcome)) return;
    const spoof = this.ctx.runtime.spoof;
    logLoginOutcome(this.ctx, this.user ?? '', outcome, { spoof: spoof !== undefined });
    switch (outcome.kind) {
      case 'logged-in':
        this.store = formatAddress(outcome.store);
        // The store's own `+OK …` line, as it said it.
        this.conn.socket.write(Buffer.concat([outcome.answer, Buffer.from('\r\n')]));
        this.startPiping(outcome.socket, outcome.leftover);
        return;
      case 'refused':
        // RFC 2449 §8: the store's response code ([IN-USE], [AUTH], …) goes through unchanged.
        this.conn.socket.write(Buffer.concat([outcome.answer, Buffer.from('\r\n')]));
        this.countFailedLogin();
        break;
      case 'unknown-user':
        this.send(AUTH_FAILED);
        this.countFailedLogin();
        break;
      case 'directory-down':
        // RFC 3206 §4: SYS/TEMP, a problem on our side that may go away.
        this.send('-ERR [SYS/TEMP] User directory temporarily unavailable, try again later');
        break;
      case 'stores-down':
        if (spoof !== undefined) {
          this.startSpoof(new SpoofInbox(spoof));
          return;
        }
        this.send(`-ERR [SYS/TEMP] ${this.ctx.site.settings.serverDownAlert}`);
        break;
    }
    this.user = undefined;
    this.resume('authorization');
  }

  private countFailedLogin(): void {
    if (this.refusals.failedLogin()) this.closeWith(undefined);
  }

  /** Read commands again (after a failed login, or in the spoof inbox), starting with whatever
   * the client pipelined meanwhile. */
  private resume(state: 'authorization' | 'transaction'): void {
    if (this.state !== 'logging-in') return; // closed by a limit
    this.state = state;
    if (this.shuttingDown && state === 'authorization') {
      this.closeWith('-ERR [SYS/TEMP] Server shutting down');
      return;
    }
    this.conn.readQueued(
      state === 'transaction' ? POP3_TRANSACTION_IDLE_MS : this.ctx.site.settings.idleTimeoutMs,
    );
    if (this.reading()) {
      if (this.clientEnded) this.closeWith(undefined);
      else this.conn.socket.resume();
    }
  }

  /** No store reachable, SpoofMessageFile set: serve the one-message inbox (spoof.ts). */
  private startSpoof(inbox: SpoofInbox): void {
    this.inbox = inbox;
    this.send('+OK Logged in (your mailbox is temporarily unavailable)');
    this.resume('transaction');
  }

  private startPiping(store: Socket, leftover: Buffer): void {
    this.state = 'piping';
    // The login phase is over: forget what it held (a partial line, a SASL exchange), so that an
    // idle piped session keeps little beyond its sockets.
    this.reader.reset();
    this.sasl = undefined;
    // No farewell line when the store closes first: POP3 has no unsolicited response
    // (RFC 1939 §3), and a line injected mid-RETR would become part of the message.
    this.conn.pipe(store, leftover, undefined);
  }

  // ---- Closing ----

  /** Say `line` (if any), close our side, and cut the connection if the client lingers. */
  private closeWith(line: string | undefined): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.conn.close(line);
  }
}
