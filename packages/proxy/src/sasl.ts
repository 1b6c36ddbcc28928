/**
 * The SASL mechanisms the multiplexor terminates before login, protocol-neutral (IMAP
 * AUTHENTICATE, RFC 3501 §6.2.2 / RFC 4959; POP3 AUTH, RFC 5034). It needs the plaintext name and
 * password to find the store and replay the login, so of the password mechanisms only PLAIN
 * (RFC 4616) and LOGIN (draft-murchison-sasl-login) can be offered. The OAuth2 mechanisms
 * (XOAUTH2, OAUTHBEARER RFC 7628) carry the user's name beside the token: the name finds the
 * store, which gets the message unchanged and alone judges the token.
 *
 * Everything stays bytes: the password never becomes a string.
 */

import { type Result, err, ok } from '@mmp/config';

export interface Credentials {
  /** The login name as the client sent it. */
  user: Buffer;
  password: Buffer;
}

/** OAuth2 bearer tokens (OAuth2Mechanisms): passed through to the stores. */
export type BearerMechanism = 'XOAUTH2' | 'OAUTHBEARER';
export const BEARER_MECHANISMS: readonly BearerMechanism[] = ['XOAUTH2', 'OAUTHBEARER'];

/** EXTERNAL (RFC 4422 App. A): the TLS client certificate is the credential (`certlogin.ts`). */
export type SaslMechanism = 'PLAIN' | 'LOGIN' | 'EXTERNAL' | BearerMechanism;
export const SASL_MECHANISMS: readonly SaslMechanism[] = [
  'PLAIN',
  'LOGIN',
  'EXTERNAL',
  ...BEARER_MECHANISMS,
];

export function isBearerMechanism(name: string): name is BearerMechanism {
  return (BEARER_MECHANISMS as readonly string[]).includes(name);
}

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
  /** XOAUTH2 / OAUTHBEARER: log in as `user` with this message, passed on to the store. */
  | { kind: 'bearer'; mechanism: BearerMechanism; user: Buffer; message: Buffer }
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

const SOH = 0x01;

/** The `key=value` fields between ^A separators, each key once; undefined when malformed. */
function kvFields(bytes: Buffer): Map<string, Buffer> | undefined {
  const fields = new Map<string, Buffer>();
  let start = 0;
  while (start < bytes.length) {
    let end = bytes.indexOf(SOH, start);
    if (end < 0) end = bytes.length;
    const field = bytes.subarray(start, end);
    const eq = field.indexOf(0x3d /* = */);
    if (eq <= 0) return undefined;
    const key = field.toString('latin1', 0, eq).toLowerCase();
    if (fields.has(key)) return undefined;
    fields.set(key, field.subarray(eq + 1));
    start = end + 1;
  }
  return fields;
}

/** RFC 6750 §2.1 `Bearer 1*SP b64token`: the scheme is case-insensitive; the token non-empty. */
function isBearerAuth(value: Buffer | undefined): boolean {
  if (value === undefined) return false;
  const text = value.toString('latin1');
  return /^bearer +\S/i.test(text);
}

/**
 * XOAUTH2 (Google's "SASL XOAUTH2 mechanism", the form every XOAUTH2 client sends):
 * `user=NAME ^A auth=Bearer TOKEN ^A ^A`. The name, or why the message is refused.
 */
export function decodeXoauth2(message: Buffer): Result<Buffer, string> {
  const malformed = err('Malformed XOAUTH2 message');
  if (
    message.length < 2 ||
    message[message.length - 1] !== SOH ||
    message[message.length - 2] !== SOH
  )
    return malformed;
  const fields = kvFields(message.subarray(0, message.length - 2));
  const user = fields?.get('user');
  if (fields === undefined || user === undefined || user.length === 0) return malformed;
  if (!isBearerAuth(fields.get('auth'))) return malformed;
  return ok(Buffer.from(user));
}

/**
 * OAUTHBEARER (RFC 7628 §3.1): `gs2-header ^A *(key=value ^A) ^A`, where the GS2 header
 * (RFC 5801 §4) is `n,a=NAME,` — channel binding (`y`, `p=`) is not supported by the mechanism
 * (RFC 7628 §3.1), and NAME is a saslname with `,` and `=` written `=2C` and `=3D`. The
 * authorization identity is optional in RFC 7628; without it the proxy cannot know whose store
 * to ask, so it is required here. The name, or why the message is refused.
 */
export function decodeOauthbearer(message: Buffer): Result<Buffer, string> {
  const malformed = err('Malformed OAUTHBEARER message');
  const kv = message.indexOf(SOH);
  if (kv < 0 || message.length < kv + 2) return malformed;
  if (message[message.length - 1] !== SOH || message[message.length - 2] !== SOH) return malformed;
  const header = message.toString('utf8', 0, kv);
  const gs2 = /^([ny]),(?:a=([^,]*))?,$/.exec(header);
  if (gs2 === null) return malformed;
  const fields = kvFields(message.subarray(kv + 1, message.length - 2));
  if (fields === undefined || !isBearerAuth(fields.get('auth'))) return malformed;
  const authzid = gs2[2];
  if (authzid === undefined || authzid === '')
    return err('OAUTHBEARER needs the user name (a=) to find the mailbox');
  // RFC 5801 §4 saslname: `=` only as `=2C` or `=3D`.
  if (/=(?!2C|3D)/.test(authzid)) return malformed;
  return ok(Buffer.from(authzid.replace(/=2C/g, ',').replace(/=3D/g, '='), 'utf8'));
}

/**
 * XOAUTH2, OAUTHBEARER: without an initial response the server's first challenge is empty
 * (RFC 7628 §3.2.1 "the server sends an empty challenge"); the client's message names the user.
 */
class BearerExchange implements SaslExchange {
  constructor(readonly mechanism: BearerMechanism) {}
  start(initial: Buffer | undefined): SaslStep {
    return initial === undefined
      ? { kind: 'challenge', challenge: Buffer.alloc(0) }
      : this.next(initial);
  }
  next(response: Buffer): SaslStep {
    const user =
      this.mechanism === 'XOAUTH2' ? decodeXoauth2(response) : decodeOauthbearer(response);
    if (!user.ok) return { kind: 'failed', message: user.error };
    const message = Buffer.from(response);
    return { kind: 'bearer', mechanism: this.mechanism, user: user.value, message };
  }
}

/**
 * The error challenge a Dovecot store (2.3, src/auth/mech-oauth2.c) sends for any refused token,
 * as a `+ base64` line: RFC 7628 §3.2.2's JSON status for OAUTHBEARER, Google's for XOAUTH2. The
 * proxy says exactly this to a bearer login whose user is unknown, then after the client's reply
 * the usual AUTHENTICATIONFAILED, so that a name cannot be probed with any token.
 */
export function bearerRefusal(mechanism: BearerMechanism): Buffer {
  const json =
    mechanism === 'XOAUTH2'
      ? '{"status":"401","schemes":"bearer","scope":"mail"}'
      : '{"status":"invalid_token"}';
  return Buffer.from(`+ ${Buffer.from(json).toString('base64')}`);
}

/** A reply line that cancels the exchange (RFC 3501 §6.2.2, RFC 5034 §4). */
export function isCancel(line: Buffer): boolean {
  return line.length === 1 && line[0] === 0x2a;
}

export function startSasl(mechanism: SaslMechanism): SaslExchange {
  switch (mechanism) {
    case 'PLAIN':
      return new PlainExchange();
    case 'LOGIN':
      return new LoginExchange();
    case 'EXTERNAL':
      return new ExternalExchange();
    case 'XOAUTH2':
    case 'OAUTHBEARER':
      return new BearerExchange(mechanism);
  }
}
