/**
 * The login phase as the IMAP and POP3 sessions share it: starting a login on the session's
 * behalf, logging how it ended, reading a SASL response, and counting the
 * refusals that end a session before login (`limits.ts`). None of it says a word to the client:
 * the sessions keep their protocol's wording (IMAP tagged `NO …`, POP3 `-ERR …`) and their state.
 */

import { MAX_BAD_COMMANDS, MAX_FAILED_LOGINS } from './limits.js';
import type { Log, LogFields } from './log.js';
import { type LoginContext, type LoginOutcome, type Principal, logIn } from './login.js';
import { decodeSaslResponse } from './sasl.js';
import type { SessionContext } from './server.js';
import { type Replay, formatAddress } from './store.js';
import type { SessionSecurity } from './tls/security.js';
import type { Result } from '@mmp/config';

/** What a session does once a login has run: hear its outcome, or learn that it threw. */
export interface LoginEnd {
  finish(outcome: LoginOutcome): void;
  /** A bug, not an input problem: the session says so to the client and closes. */
  internalError(): void;
}

/** Log `principal` in (`login.ts`), with the protocol's `replay`; `end` hears how it ended. */
export function startLogin(
  ctx: SessionContext,
  security: SessionSecurity,
  principal: Principal,
  replay: Replay,
  end: LoginEnd,
): void {
  const login: LoginContext = {
    site: ctx.site,
    shared: ctx.runtime.shared,
    log: ctx.log,
    addresses: ctx,
    // UidSearch %D: only a certificate that chains to the client CA names anybody.
    subjectDn: security.tls?.peer?.verified === true ? security.tls.peer.subject : undefined,
    replay,
  };
  settle(ctx.log, 'internal error during login', logIn(login, principal), end);
}

function settle(log: Log, message: string, login: Promise<LoginOutcome>, end: LoginEnd): void {
  login
    .then((outcome) => end.finish(outcome))
    .catch((e: unknown) => {
      log.error('login', message, { error: e instanceof Error ? e.message : String(e) });
      end.internalError();
    });
}

/**
 * The outcome of a login arrived after the session closed: let go of the store it may hold.
 * Returns whether it was dropped.
 */
export function dropIfClosed(stillLoggingIn: boolean, outcome: LoginOutcome): boolean {
  if (stillLoggingIn) return false;
  if (outcome.kind === 'logged-in') outcome.socket.destroy();
  return true;
}

/**
 * The 'login …' record of an outcome. `storesDown`: the session's own fields of the record when
 * no store could be reached (POP3 says whether it serves the spoof inbox instead).
 */
export function logLoginOutcome(
  ctx: Pick<SessionContext, 'log' | 'clientIp'>,
  user: string,
  outcome: LoginOutcome,
  storesDown: LogFields = {},
): void {
  const [msg, fields] = loginRecord(outcome, ctx.clientIp, storesDown);
  ctx.log.at('session', 'login', msg, { user, ...fields });
}

function loginRecord(
  outcome: LoginOutcome,
  client: string,
  storesDown: LogFields,
): [string, LogFields] {
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
  }
}

/** A SASL response line, decoded. It may carry the password: only its length is ever logged. */
export function readSaslResponse(log: Log, line: Buffer): Result<Buffer | 'cancel', string> {
  log.at('trace', 'authenticate', 'C: <SASL response redacted>', { bytes: line.length });
  return decodeSaslResponse(line);
}

/**
 * The refusals that end a session before login: invalid commands in a row (a client speaking
 * another protocol, a cross-protocol attack) and failed logins (password guessing). Each count
 * says when the limit is reached and logs it; the session says its own last words and closes.
 */
export class RefusalCounts {
  private badCommands = 0;
  private failedLogins = 0;

  constructor(private readonly log: Log) {}

  /** A valid command: only invalid commands in a row count. */
  commandAccepted(): void {
    this.badCommands = 0;
  }

  /** One more invalid command; true when that reaches MAX_BAD_COMMANDS. */
  badCommand(): boolean {
    if (++this.badCommands < MAX_BAD_COMMANDS) return false;
    this.log.at('refusal', 'limits', 'too many invalid commands, closing');
    return true;
  }

  /** One more failed login; true when that reaches MAX_FAILED_LOGINS. */
  failedLogin(): boolean {
    if (++this.failedLogins < MAX_FAILED_LOGINS) return false;
    this.log.at('refusal', 'limits', 'too many failed logins, closing');
    return true;
  }
}
