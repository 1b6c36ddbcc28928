/**
 * One client connection before login, whatever the protocol (nginx's generic mail handler): the
 * state machine, queueing, timeouts, shutdown, the STARTTLS hand-over, the SASL exchange, the
 * login and what its outcome does. The protocol's dialect (`dialect.ts`) frames the bytes,
 * dispatches commands to handlers that return outcomes, and words every line this session says.
 *
 *   ready ──LOGIN/PASS──────────────────▶ logging-in ──store OK──▶ piped (transparent bytes)
 *    │ ▲  AUTHENTICATE/AUTH                  │  │  ▲
 *    │ └───── sasl ──────── done ────────────┘  │  └─ NO / failure: back to ready
 *    │ STARTTLS/STLS ──▶ tls-handshake ──▶ ready└──stores down + SpoofMessageFile──▶ spoof (POP3)
 *    └──LOGOUT/QUIT, limits, idle, shutdown──▶ closed
 *
 * Each state carries its own data. While logging in nothing is parsed: bytes the client
 * pipelined (RFC 3501 §5.5, RFC 2449 §6.6) are queued, bounded, then TCP backpressure, and either
 * forwarded to the store after its OK, or read as the next commands after a refusal.
 *
 * One behaviour for both protocols where they used to differ: a session the server closes on its
 * own (limits, idle, shutdown, an internal error, a broken framing limit) always says why in its
 * last line, IMAP `* BYE …` and POP3 `-ERR …`, after the answer to the command that hit the limit.
 */

import type { Socket } from 'node:net';
import type { Result } from '@mmp/config';
import { certificatePrincipal } from './certlogin.js';
import { ClientConnection } from './clientConnection.js';
import { errorFields, injectedFault, throwInjected } from './crash.js';
import {
  type Body,
  type Dialect,
  type Goodbye,
  type Input,
  type Outcome,
  type Reader,
  type Refusal,
  type SessionView,
  nameForLog,
} from './dialect.js';
import {
  MAX_BAD_COMMANDS,
  MAX_BAD_COMMANDS_PER_SESSION,
  MAX_COMMANDS_BEFORE_LOGIN,
  MAX_FAILED_LOGINS,
  POP3_TRANSACTION_IDLE_MS,
} from './limits.js';
import type { Log, LogFields } from './log.js';
import { type LoginOutcome, type Principal, logIn } from './login.js';
import type { SpoofInbox } from './pop3/spoof.js';
import { type SaslExchange, type SaslStep, decodeSaslResponse } from './sasl.js';
import type { SessionContext, SessionHandle } from './server.js';
import { formatAddress } from './store.js';
import type { ClientTlsInfo } from './tls/clientTls.js';
import { type SessionSecurity, policyOf, sessionSecurity } from './tls/security.js';

type Tag = string | undefined;

type State =
  /** Reading commands (IMAP not authenticated, POP3 AUTHORIZATION). */
  | { kind: 'ready'; pendingUser: Buffer | undefined }
  /** A SASL exchange waits for the client's response line. */
  | { kind: 'sasl'; tag: Tag; exchange: SaslExchange }
  /** STARTTLS answered: nothing is read until the TLS handshake is done. */
  | { kind: 'tls-handshake' }
  | { kind: 'logging-in'; tag: Tag; user: string }
  /** A bearer login: a store's error challenge (or ours, for an unknown user) was said to the
   * client, whose reply line goes back as it is (RFC 7628 §3.2.2; `login.ts`). */
  | { kind: 'store-challenge'; tag: Tag; user: string; answer: (line: Buffer | undefined) => void }
  /** POP3: no store reachable, serving the spoof inbox (its TRANSACTION state). */
  | { kind: 'spoof'; inbox: SpoofInbox; user: string }
  /** The pipe has the connection (and reports its end). */
  | { kind: 'piped' }
  /** `fields`: the session's part of the 'client disconnected' record. */
  | { kind: 'closed'; fields: LogFields };

export function startSession<Command>(
  dialect: Dialect<Command>,
  socket: Socket,
  ctx: SessionContext,
): SessionHandle {
  return new Session(dialect, socket, ctx);
}

class Session<Command> implements SessionHandle {
  private state: State = { kind: 'ready', pendingUser: undefined };
  /** Recomputed after STARTTLS (RFC 3501 §6.2.1: the client must ask again). */
  private security: SessionSecurity;
  private readonly reader: Reader<Command>;
  private readonly conn: ClientConnection;
  private readonly refusals: RefusalCounts;
  private clientEnded = false;
  private shuttingDown = false;
  /** What IMAP ID said (RFC 2971), logged with the login. */
  private clientId: string | undefined;
  /** LoginTimeout: the whole time the client has to log in, whatever it sends. */
  private readonly deadline: NodeJS.Timeout;
  /** The deadline passed while a login was in flight: if it fails, the session ends. */
  private expired = false;

  constructor(
    private readonly dialect: Dialect<Command>,
    socket: Socket,
    private readonly ctx: SessionContext,
  ) {
    this.security = sessionSecurity(policyOf(ctx.site.settings), ctx.secure);
    this.reader = dialect.reader(() => this.view());
    this.conn = new ClientConnection(socket, ctx, {
      onData: this.onData,
      onEnd: this.onEnd,
      onTimeout: this.onTimeout,
      onClose: this.onClose,
      onDrained: this.onDrained,
    });
    this.refusals = new RefusalCounts(ctx.log);
    this.deadline = setTimeout(this.onDeadline, ctx.site.settings.loginTimeoutMs);
    this.deadline.unref();
    if (ctx.refused !== undefined) {
      ctx.log.at('refusal', 'limits', 'connection refused', {
        reason: ctx.refused,
        client: ctx.clientIp,
      });
      this.closeWith(ctx.refused);
      return;
    }
    this.conn.send(dialect.greeting(this.view()));
  }

  private view(): SessionView {
    const s = this.state;
    return {
      settings: this.ctx.site.settings,
      security: this.security,
      pendingUser: s.kind === 'ready' ? s.pendingUser : undefined,
      inbox: s.kind === 'spoof' ? s.inbox : undefined,
      log: this.ctx.log,
    };
  }

  // ---- SessionHandle ----

  shutdown(): void {
    this.shuttingDown = true;
    // The spoof inbox is served until the grace period ends, like a piped session.
    if (this.state.kind === 'ready' || this.state.kind === 'sasl') this.closeWith('shutdown');
  }

  abort(): void {
    this.conn.abort();
  }

  // ---- Socket events ----

  private readonly onData = this.guarded((chunk: Buffer): void => {
    if (this.state.kind === 'logging-in' || this.conn.writeBlocked) this.conn.queue(chunk);
    else if (this.reading()) this.consume(chunk);
  });

  /** Our replies drained after the client stopped reading: read what it sent meanwhile. */
  private readonly onDrained = this.guarded((): void => {
    if (!this.reading()) return;
    this.conn.readQueued(this.idleFor(this.state));
    if (this.reading() && !this.conn.writeBlocked) {
      if (this.clientEnded) this.close(undefined);
      else this.conn.resumeReading();
    }
  });

  /** LoginTimeout: too long without logging in, whatever the client did meanwhile. */
  private readonly onDeadline = this.guarded((): void => {
    const k = this.state.kind;
    if (k === 'piped' || k === 'closed' || k === 'spoof') return;
    this.ctx.log.at('refusal', 'limits', 'no login within LoginTimeout, closing', { state: k });
    if (k === 'logging-in') this.expired = true;
    else this.closeWith('login-timeout');
  });

  private readonly onEnd = this.guarded((): void => {
    this.clientEnded = true;
    // While logging in, the queued bytes (maybe a pipelined LOGOUT) are dealt with first.
    if (this.reading()) this.close(undefined);
  });

  private readonly onTimeout = this.guarded((): void => {
    if (!this.reading()) return;
    this.ctx.log.at('refusal', 'idle', 'client idle, closing', { state: this.state.kind });
    this.closeWith('idle');
  });

  private readonly onClose = this.guarded((): void => {
    if (this.state.kind === 'piped') return; // the pipe reports the end of the session
    clearTimeout(this.deadline);
    const pending = this.state.kind === 'store-challenge' ? this.state.answer : undefined;
    const fields = this.state.kind === 'closed' ? this.state.fields : this.closedFields();
    this.state = { kind: 'closed', fields };
    this.conn.logClosed(fields);
    pending?.(undefined);
  });

  // ---- Bugs (issue 14): one session's exception ends that session only (`crash.ts`) ----

  /** `step`, run so that an exception in it ends this session and nothing else. */
  private guarded<A extends unknown[]>(step: (...args: A) => void): (...args: A) => void {
    return (...args) => {
      try {
        step(...args);
      } catch (e) {
        this.crashed(e);
      }
    };
  }

  /** A bug in this session: log it with its stack, say goodbye if we still can, close. */
  private crashed(e: unknown): void {
    this.ctx.log.error('session', 'internal error, closing the session', {
      state: this.state.kind,
      ...errorFields(e),
    });
    try {
      if (this.state.kind === 'closed' || this.state.kind === 'piped') this.conn.abort();
      else this.closeWith('internal-error');
    } catch {
      this.conn.abort();
    }
  }

  /** States in which the client's bytes are read (as commands, or SASL response lines). */
  private reading(): boolean {
    const k = this.state.kind;
    return k === 'ready' || k === 'sasl' || k === 'spoof' || k === 'store-challenge';
  }

  private consume(buf: Buffer): void {
    let off = 0;
    // Our replies pile up when the client does not read: stop at MAX_QUEUED_REPLY_BYTES and keep
    // the rest of the chunk until they drain (`onDrained`).
    while (off < buf.length && this.reading() && !this.conn.writeBlocked) {
      const step = this.reader.feed(buf, off);
      off += step.consumed;
      if (step.input !== undefined) this.onInput(step.input);
    }
    if (off < buf.length && (this.state.kind === 'logging-in' || this.reading()))
      this.conn.queueRest(buf.subarray(off));
  }

  private onInput(input: Input<Command>): void {
    const isCommand =
      input.kind === 'command' || input.kind === 'refuse' || input.kind === 'invalid';
    if (isCommand && this.refusals.command()) return this.closeWith('too-many-commands');
    switch (input.kind) {
      case 'command': {
        const { tag, verb, outcome } = this.dialect.dispatch(input.command, this.view());
        this.act(tag, verb, outcome);
        return;
      }
      case 'sasl-response':
        this.onSaslResponse(input.line);
        return;
      case 'continue':
        this.conn.send(input.line);
        return;
      case 'refuse':
        this.refusals.commandAccepted();
        this.no(input.tag, input.refusal);
        return;
      case 'invalid':
        this.bad(input.tag, input.text);
        return;
      case 'fatal':
        if (input.answer !== undefined)
          this.conn.send(this.dialect.words.bad(input.answer.tag, input.answer.text));
        this.closeWith({ fatal: input.text });
        return;
    }
  }

  // ---- Outcomes: the only place status lines are said ----

  private act(tag: Tag, verb: string, outcome: Outcome): void {
    const { words } = this.dialect;
    if (this.state.kind === 'ready') {
      // RFC 1939 §7: PASS right after USER; only an answer that changes nothing keeps the name.
      const kept =
        outcome.kind === 'ok' ? (outcome.pendingUser ?? this.state.pendingUser) : undefined;
      this.state = { kind: 'ready', pendingUser: kept };
    }
    switch (outcome.kind) {
      case 'ok':
        this.refusals.commandAccepted();
        if (outcome.clientId !== undefined) this.clientId = outcome.clientId;
        for (const line of outcome.data ?? []) this.conn.send(line);
        this.say(words.ok(tag, verb, outcome.text), outcome.body);
        return;
      case 'no':
        this.refusals.commandAccepted();
        this.conn.send(words.no(tag, outcome.refusal));
        return;
      case 'bad':
        this.bad(tag, outcome.text);
        return;
      case 'logout':
        for (const line of words.logout(tag)) this.conn.send(line);
        this.close(undefined);
        return;
      case 'login':
        this.refusals.commandAccepted();
        this.startLogin(tag, outcome.principal);
        return;
      case 'sasl':
        this.refusals.commandAccepted();
        this.saslStep(tag, outcome.exchange, outcome.step);
        return;
      case 'starttls':
        this.refusals.commandAccepted();
        this.startTls(tag, verb);
        return;
    }
  }

  /** A status line, and a multi-line answer's body after it (streamed: `ClientConnection.stream`). */
  private say(line: string, body: Body | undefined): void {
    if (body === undefined) return this.conn.send(line);
    this.ctx.log.at('trace', 'response', 'S:', { line });
    this.conn.send(line);
    this.conn.stream(body);
  }

  private no(tag: Tag, refusal: Refusal): void {
    this.conn.send(this.dialect.words.no(tag, refusal));
  }

  /** An invalid command's answer; the session closes after too many in a row, or in all. */
  private bad(tag: Tag, text: string): void {
    this.conn.send(this.dialect.words.bad(tag, text));
    if (this.refusals.badCommand()) this.closeWith('bad-commands');
  }

  private countFailedLogin(): void {
    if (this.refusals.failedLogin()) this.closeWith('failed-logins');
  }

  // ---- SASL exchange (RFC 3501 §6.2.2, RFC 5034 §4) ----

  private saslStep(tag: Tag, exchange: SaslExchange, step: SaslStep): void {
    switch (step.kind) {
      case 'challenge':
        this.state = { kind: 'sasl', tag, exchange };
        this.reader.expectSaslResponse();
        this.conn.send(`+ ${step.challenge.toString('base64')}`);
        return;
      case 'done':
        this.endSasl();
        this.startLogin(tag, { kind: 'password', credentials: step.credentials, sasl: true });
        return;
      case 'failed':
        this.endSasl();
        this.no(tag, { kind: 'text', text: step.message });
        this.countFailedLogin();
        return;
      case 'external':
        this.endSasl();
        this.startCertificateLogin(tag, step.authzid);
        return;
      case 'bearer': {
        this.endSasl();
        const { mechanism, user, message } = step;
        this.startLogin(tag, { kind: 'bearer', mechanism, user, message });
        return;
      }
    }
  }

  private endSasl(): void {
    this.state = { kind: 'ready', pendingUser: undefined };
    this.reader.expectCommands();
  }

  private onSaslResponse(line: Buffer): void {
    if (this.state.kind === 'store-challenge') {
      this.answerChallenge(line);
      return;
    }
    if (this.state.kind !== 'sasl') return;
    const { tag, exchange } = this.state;
    const decoded = readSaslResponse(this.ctx.log, line);
    this.endSasl();
    if (!decoded.ok) {
      this.bad(tag, decoded.error);
      return;
    }
    if (decoded.value === 'cancel') {
      // RFC 3501 §6.2.2 (tagged BAD), RFC 5034 §4 (-ERR): not an invalid command.
      this.conn.send(this.dialect.words.bad(tag, 'Authentication cancelled'));
      return;
    }
    this.saslStep(tag, exchange, exchange.next(decoded.value));
  }

  // ---- STARTTLS (RFC 3501 §6.2.1, RFC 2595 §4) ----

  /**
   * Answer, then negotiate TLS. Whatever the client sent after the STARTTLS/STLS line was sent in
   * the clear and is dropped, never read as commands (CVE-2011-0411): the reader forgets it, the
   * rest of the chunk is not consumed (state), and the plain socket is no longer read by us.
   */
  private startTls(tag: Tag, verb: string): void {
    const tls = this.ctx.runtime.serverTls;
    if (tls === undefined) {
      this.no(tag, { kind: 'tls-unavailable' });
      return;
    }
    this.state = { kind: 'tls-handshake' };
    this.reader.reset();
    const phase = verb.toLowerCase();
    const { settings } = this.ctx.site;
    const secured = this.guarded((info: ClientTlsInfo) => {
      this.security = sessionSecurity(policyOf(settings), info);
      this.state = { kind: 'ready', pendingUser: undefined };
      if (this.shuttingDown) this.closeWith('shutdown');
    });
    this.conn.startTls(tls, phase, this.dialect.words.startTls(tag), secured);
  }

  // ---- Login: directory, store, replay (`login.ts`) ----

  /** EXTERNAL: the verified client certificate names the user (`certlogin.ts`). */
  private startCertificateLogin(tag: Tag, authzid: Buffer): void {
    const { site, log } = this.ctx;
    const principal = certificatePrincipal(site, this.security, authzid, log);
    if (!principal.ok) {
      this.no(tag, { kind: 'external', reason: principal.error });
      this.countFailedLogin();
      return;
    }
    this.startLogin(tag, principal.value);
  }

  /**
   * A bearer login's challenge (RFC 7628 §3.2.2): say it, then read one response line, which
   * goes back as it is (`login.ts`). Bytes the client sent meanwhile are read first.
   */
  private readonly relayChallenge = (challenge: Buffer): Promise<Buffer | undefined> =>
    new Promise((answer) => {
      const s = this.state;
      if (s.kind !== 'logging-in') return answer(undefined);
      this.state = { kind: 'store-challenge', tag: s.tag, user: s.user, answer };
      this.reader.expectSaslResponse();
      this.ctx.log.at('trace', 'response', 'S: <SASL challenge>', { bytes: challenge.length });
      this.conn.socket.write(Buffer.concat([challenge, Buffer.from('\r\n')]));
      this.conn.readQueued(this.ctx.site.settings.idleTimeoutMs);
      if (this.state.kind !== 'store-challenge') return;
      // The client half-closed while the store was asked: no reply can come.
      if (this.clientEnded) this.close(undefined);
      else this.conn.resumeReading();
    });

  /** The client's reply to a relayed challenge (undefined: it left); logging in again. */
  private answerChallenge(line: Buffer | undefined): void {
    const s = this.state;
    if (s.kind !== 'store-challenge') return;
    if (line !== undefined) {
      this.ctx.log.at('trace', 'authenticate', 'C: <SASL response redacted>', {
        bytes: line.length,
      });
      this.reader.expectCommands();
      this.state = { kind: 'logging-in', tag: s.tag, user: s.user };
      this.conn.socket.setTimeout(0);
    }
    s.answer(line);
  }

  private startLogin(tag: Tag, principal: Principal): void {
    const user =
      principal.kind === 'password'
        ? nameForLog(principal.credentials.user)
        : principal.kind === 'bearer'
          ? nameForLog(principal.user)
          : principal.peer.subject;
    this.state = { kind: 'logging-in', tag, user };
    this.conn.phase('logging-in');
    const fault = injectedFault(user);
    if (fault !== undefined) throwInjected(fault);
    this.conn.socket.setTimeout(0); // the directory and the store have their own time limits
    const { ctx, security } = this;
    const login = logIn(
      {
        site: ctx.site,
        shared: ctx.runtime.shared,
        log: ctx.log,
        addresses: ctx,
        // UidSearch %D: only a certificate that chains to the client CA names anybody.
        subjectDn: security.tls?.peer?.verified === true ? security.tls.peer.subject : undefined,
        replay: this.dialect.replay(ctx.runtime),
        relay: this.relayChallenge,
      },
      principal,
    );
    login.then(
      (outcome) => {
        try {
          this.finishLogin(outcome);
        } catch (e) {
          // Whatever the bug, the store connection must not outlive the session.
          if (outcome.kind === 'logged-in' && this.state.kind !== 'piped') outcome.socket.destroy();
          this.crashed(e);
        }
      },
      this.guarded((e: unknown) => {
        throw e; // a bug in the login path, not an input problem: the guard says so and closes
      }),
    );
  }

  private finishLogin(outcome: LoginOutcome): void {
    const state = this.state;
    if (state.kind !== 'logging-in') {
      // The client left meanwhile: let go of the store.
      if (outcome.kind === 'logged-in') outcome.socket.destroy();
      return;
    }
    const { tag, user } = state;
    const { words, spoof } = this.dialect;
    const inbox = outcome.kind === 'stores-down' ? spoof?.inbox(this.ctx.runtime, user) : undefined;
    logLoginOutcome(
      this.ctx,
      user,
      outcome,
      spoof === undefined ? {} : { spoof: inbox !== undefined },
    );
    switch (outcome.kind) {
      case 'logged-in':
        if (outcome.untagged !== undefined) this.conn.socket.write(outcome.untagged);
        this.conn.socket.write(words.storeAnswer(tag, outcome.answer));
        this.startPiping(user, outcome);
        return;
      case 'refused':
        // The store's own answer (RFC 5530 codes, RFC 2449 [IN-USE] …) goes through unchanged.
        if (outcome.untagged !== undefined) this.conn.socket.write(outcome.untagged);
        this.conn.socket.write(words.storeAnswer(tag, outcome.answer));
        this.countFailedLogin();
        break;
      case 'unknown-user':
        this.no(tag, { kind: 'auth-failed' });
        this.countFailedLogin();
        break;
      case 'directory-down':
        this.no(tag, { kind: 'directory-down' });
        break;
      case 'aborted':
        // What a store says to `*` in answer to its error challenge (Dovecot's words).
        this.conn.send(words.bad(tag, 'Authentication aborted by client.'));
        this.countFailedLogin();
        break;
      case 'stores-down':
        if (inbox !== undefined && spoof !== undefined) {
          this.conn.send(spoof.loggedIn);
          this.resume({ kind: 'spoof', inbox, user });
          return;
        }
        this.no(tag, { kind: 'stores-down', alert: this.ctx.site.settings.serverDownAlert });
        break;
    }
    this.resume({ kind: 'ready', pendingUser: undefined });
  }

  /** Read commands again (after a failed login, or in the spoof inbox), starting with whatever
   * the client pipelined meanwhile. */
  private resume(next: Extract<State, { kind: 'ready' | 'spoof' }>): void {
    if (this.state.kind !== 'logging-in') return; // closed by a limit
    this.state = next;
    this.conn.phase(next.kind === 'spoof' ? 'spoof' : 'pre-login');
    if (this.shuttingDown && next.kind === 'ready') {
      this.closeWith('shutdown');
      return;
    }
    if (this.expired && next.kind === 'ready') {
      this.closeWith('login-timeout');
      return;
    }
    this.conn.readQueued(this.idleFor(next));
    if (this.reading() && !this.conn.writeBlocked) {
      if (this.clientEnded) this.close(undefined);
      else this.conn.resumeReading();
    }
  }

  /** The idle time of a reading state: RFC 1939 §3's autologout in the spoof inbox, else Timeout. */
  private idleFor(state: State): number {
    return state.kind === 'spoof' ? POP3_TRANSACTION_IDLE_MS : this.ctx.site.settings.idleTimeoutMs;
  }

  private startPiping(user: string, outcome: Extract<LoginOutcome, { kind: 'logged-in' }>): void {
    clearTimeout(this.deadline);
    const store = formatAddress(outcome.store);
    const fields = { ...this.closedFields(), user, store };
    this.state = { kind: 'piped' };
    this.conn.phase('piped', store);
    if (this.ctx.log.enabled('dialogue') && this.clientId !== undefined)
      this.ctx.log.at('dialogue', 'login', 'client ID', { id: this.clientId });
    // The login phase is over: forget what it held (a partly framed command, the client's ID),
    // so that an idle piped session keeps little beyond its sockets.
    this.reader.reset();
    this.clientId = undefined;
    this.conn.pipe(outcome.socket, outcome.leftover, this.dialect.farewell, fields);
  }

  // ---- Closing ----

  /** The session's part of the 'client disconnected' record. */
  private closedFields(): LogFields {
    const s = this.state;
    const user =
      s.kind === 'logging-in' || s.kind === 'spoof' || s.kind === 'store-challenge' ? s.user : null;
    const spoof = this.dialect.spoof === undefined ? {} : { spoof: s.kind === 'spoof' };
    return { user, store: null, ...spoof };
  }

  /** Say why, close our side, and cut the connection if the client lingers. */
  private closeWith(reason: Goodbye): void {
    const limit = typeof reason === 'object' ? 'framing' : reason;
    // Every goodbye but these two is a limit reached, and each is counted.
    if (limit !== 'shutdown' && limit !== 'internal-error')
      this.ctx.runtime.shared.metrics.refused(limit);
    this.close(
      this.dialect.words.goodbye(reason),
      limit === 'framing' || limit === 'too-many-commands',
    );
  }

  private close(line: string | undefined, stopReading = false): void {
    if (this.state.kind === 'closed') return;
    clearTimeout(this.deadline);
    const pending = this.state.kind === 'store-challenge' ? this.state.answer : undefined;
    this.state = { kind: 'closed', fields: this.closedFields() };
    this.conn.close(line, stopReading);
    pending?.(undefined); // the login gives up on its store
  }
}

/**
 * The 'login …' record of an outcome. `storesDown`: the dialect's own fields of the record when
 * no store could be reached (POP3 says whether it serves the spoof inbox instead).
 */
export function logLoginOutcome(
  ctx: Pick<SessionContext, 'log' | 'clientIp'>,
  user: string,
  outcome: LoginOutcome,
  storesDown: LogFields = {},
): void {
  const client = ctx.clientIp;
  const [msg, fields]: [string, LogFields] = ((): [string, LogFields] => {
    switch (outcome.kind) {
      case 'logged-in':
        return ['login succeeded', { store: formatAddress(outcome.store), client }];
      case 'refused':
        return ['login refused by store', { store: formatAddress(outcome.store), client }];
      case 'unknown-user':
        return ['login failed: unknown user', { reason: outcome.reason, client }];
      case 'directory-down':
        return ['login failed: directory unavailable', { error: outcome.detail }];
      case 'stores-down':
        return ['login failed: no store reachable', { error: outcome.detail, ...storesDown }];
      case 'aborted':
        return ['login failed: unknown user, challenge cancelled', { client }];
    }
  })();
  ctx.log.at('session', 'login', msg, { user, ...fields });
}

/** A SASL response line, decoded. It may carry the password: only its length is ever logged. */
export function readSaslResponse(log: Log, line: Buffer): Result<Buffer | 'cancel', string> {
  log.at('trace', 'authenticate', 'C: <SASL response redacted>', { bytes: line.length });
  return decodeSaslResponse(line);
}

/**
 * The refusals that end a session before login: invalid commands in a row (a client speaking
 * another protocol, a cross-protocol attack) and failed logins (password guessing). Each count
 * says when the limit is reached and logs it; the session says its goodbye and closes.
 */
export class RefusalCounts {
  private commands = 0;
  private badCommands = 0;
  private badCommandsInAll = 0;
  private failedLogins = 0;

  constructor(private readonly log: Log) {}

  /** One more command, valid or not; true when it is one more than MAX_COMMANDS_BEFORE_LOGIN. */
  command(): boolean {
    if (++this.commands <= MAX_COMMANDS_BEFORE_LOGIN) return false;
    this.log.at('refusal', 'limits', 'too many commands before login, closing', {
      commands: MAX_COMMANDS_BEFORE_LOGIN,
    });
    return true;
  }

  /** A valid command: only invalid commands in a row count. */
  commandAccepted(): void {
    this.badCommands = 0;
  }

  /** One more invalid command; true when that reaches MAX_BAD_COMMANDS in a row, or
   * MAX_BAD_COMMANDS_PER_SESSION in all. */
  badCommand(): boolean {
    const inARow = ++this.badCommands >= MAX_BAD_COMMANDS;
    const inAll = ++this.badCommandsInAll >= MAX_BAD_COMMANDS_PER_SESSION;
    if (!inARow && !inAll) return false;
    this.log.at('refusal', 'limits', 'too many invalid commands, closing', {
      inARow: this.badCommands,
      inAll: this.badCommandsInAll,
    });
    return true;
  }

  /** One more failed login; true when that reaches MAX_FAILED_LOGINS. */
  failedLogin(): boolean {
    if (++this.failedLogins < MAX_FAILED_LOGINS) return false;
    this.log.at('refusal', 'limits', 'too many failed logins, closing');
    return true;
  }
}
