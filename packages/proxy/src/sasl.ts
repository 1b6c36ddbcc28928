/**
 * The SASL mechanisms the multiplexor terminates before login, protocol-neutral (IMAP
 * AUTHENTICATE, RFC 3501 §6.2.2 / RFC 4959; POP3 AUTH, RFC 5034). It needs the plaintext name and
 * password to find the store and replay the login, so only PLAIN (RFC 4616) and LOGIN
 * (draft-murchison-sasl-login) can be offered.
 *
 * Everything stays bytes: the password never becomes a string.
 */

import { type Result, err, ok } from '@mmp/config';

export interface Credentials {
  /** The login name as the client sent it. */
  user: Buffer;
  password: Buffer;
}

/** EXTERNAL (RFC 4422 App. A): the TLS client certificate is the credential (`certlogin.ts`). */
export type SaslMechanism = 'PLAIN' | 'LOGIN' | 'EXTERNAL';
export const SASL_MECHANISMS: readonly SaslMechanism[] = ['PLAIN', 'LOGIN', 'EXTERNAL'];

export function isSaslMechanism(name: string): name is SaslMechanism {
  return (SASL_MECHANISMS as readonly string[]).includes(name);
}

export type SaslStep =
  /** Send this challenge (raw bytes; the protocol base64-encodes it) and wait for a response. */
  | { kind: 'challenge'; challenge: Buffer }
  | { kind: 'done'; credentials: Credentials }
  /** EXTERNAL: log in as the certificate's user; `authzid` is what the client asked to be (empty:
   * whoever the certificate names). */
  | { kind: 'external'; authzid: Buffer }
  /** The exchange failed: the message says why (answered NO / -ERR). */
  | { kind: 'failed'; message: string };

export interface SaslExchange {
  readonly mechanism: SaslMechanism;
  /** Begin, with the client's initial response (SASL-IR) if it sent one. */
  start(initial: Buffer | undefined): SaslStep;
  /** The client's (decoded) response to the last challenge. */
  next(response: Buffer): SaslStep;
}

const NUL = 0x00;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** A client's response line: `*` cancels (RFC 3501 §6.2.2, RFC 5034 §4); else strict base64. */
export function decodeSaslResponse(line: Buffer): Result<Buffer | 'cancel', string> {
  if (line.length === 1 && line[0] === 0x2a) return ok('cancel');
  return decodeBase64(line);
}

/**
 * An initial response (RFC 4959 §3): `=` is the empty response; otherwise strict base64.
 */
export function decodeInitialResponse(arg: Buffer): Result<Buffer, string> {
  if (arg.length === 1 && arg[0] === 0x3d) return ok(Buffer.alloc(0));
  return decodeBase64(arg);
}

function decodeBase64(bytes: Buffer): Result<Buffer, string> {
  const text = bytes.toString('latin1');
  // Node's decoder skips garbage silently; refuse anything that is not canonical base64.
  if (text.length % 4 !== 0 || !BASE64.test(text)) return err('Invalid base64 data');
  return ok(Buffer.from(text, 'base64'));
}

/**
 * RFC 4616 §2: message = [authzid] UTF8NUL authcid UTF8NUL passwd. An authorization identity
 * other than the authentication identity would need the store to allow proxy authorization; it
 * is refused.
 */
export function decodePlain(message: Buffer): Result<Credentials, string> {
  const first = message.indexOf(NUL);
  const second = first < 0 ? -1 : message.indexOf(NUL, first + 1);
  if (first < 0 || second < 0 || message.indexOf(NUL, second + 1) >= 0) {
    return err('Malformed PLAIN message');
  }
  const authzid = message.subarray(0, first);
  const user = message.subarray(first + 1, second);
  const password = message.subarray(second + 1);
  if (user.length === 0 || password.length === 0) return err('Malformed PLAIN message');
  if (authzid.length > 0 && !authzid.equals(user)) {
    return err('Authorization identity not supported');
  }
  return ok({ user: Buffer.from(user), password: Buffer.from(password) });
}

class PlainExchange implements SaslExchange {
  readonly mechanism = 'PLAIN' as const;
  start(initial: Buffer | undefined): SaslStep {
    // RFC 4616: the server's first challenge is empty.
    return initial === undefined
      ? { kind: 'challenge', challenge: Buffer.alloc(0) }
      : this.next(initial);
  }
  next(response: Buffer): SaslStep {
    const r = decodePlain(response);
    return r.ok ? { kind: 'done', credentials: r.value } : { kind: 'failed', message: r.error };
  }
}

class LoginExchange implements SaslExchange {
  readonly mechanism = 'LOGIN' as const;
  private user: Buffer | undefined;
  start(initial: Buffer | undefined): SaslStep {
    return initial === undefined
      ? { kind: 'challenge', challenge: Buffer.from('Username:') }
      : this.next(initial);
  }
  next(response: Buffer): SaslStep {
    if (this.user === undefined) {
      if (response.length === 0) return { kind: 'failed', message: 'Empty user name' };
      this.user = Buffer.from(response);
      return { kind: 'challenge', challenge: Buffer.from('Password:') };
    }
    return { kind: 'done', credentials: { user: this.user, password: Buffer.from(response) } };
  }
}

/** RFC 4422 App. A: the only message is the optional authorization identity; without an initial
 * response the server sends an empty challenge and the client answers (maybe empty). */
class ExternalExchange implements SaslExchange {
  readonly mechanism = 'EXTERNAL' as const;
  start(initial: Buffer | undefined): SaslStep {
    return initial === undefined
      ? { kind: 'challenge', challenge: Buffer.alloc(0) }
      : this.next(initial);
  }
  next(response: Buffer): SaslStep {
    return { kind: 'external', authzid: Buffer.from(response) };
  }
}

export function startSasl(mechanism: SaslMechanism): SaslExchange {
  switch (mechanism) {
    case 'PLAIN':
      return new PlainExchange();
    case 'LOGIN':
      return new LoginExchange();
    case 'EXTERNAL':
      return new ExternalExchange();
  }
}
