// The test bed's own OAuth 2.0 authorization server, as much of one as the stores need: it
// issues opaque bearer tokens and answers RFC 7662 token introspection, which Dovecot's oauth2
// passdb asks for every XOAUTH2 / OAUTHBEARER login. It runs inside the process that started
// the test bed (node:http on loopback).
import { randomBytes } from 'node:crypto';
import * as http from 'node:http';

export const INTROSPECTION_PATH = '/introspect';
/** The scope every token carries (RFC 7662 section 2.2 `scope`). */
export const TOKEN_SCOPE = 'mail';
const CLIENT_ID = 'mmp-testbed';
/** Lifetime of a valid token: long enough for any test. */
const LIFETIME_S = 3600;

/**
 * The RFC 7628 section 3.2.2 error a Dovecot 2.3 store sends, base64-encoded in a `+ `
 * continuation, when it refuses a bearer token (expired, unknown, or another user's: the same
 * bytes for all three); oauth2.test.ts holds the whole transcripts. The client must then answer
 * once more (any line but `*`; RFC 7628 asks for `^A` with OAUTHBEARER, XOAUTH2 clients send an
 * empty line) and gets the tagged NO / `-ERR`; `*` gets BAD / `-ERR` for the abort instead.
 */
export const DOVECOT_XOAUTH2_ERROR = '{"status":"401","schemes":"bearer","scope":"mail"}';
export const DOVECOT_OAUTHBEARER_ERROR = '{"status":"invalid_token"}';

export interface IssueTokenOptions {
  /** Issued an hour ago and expired a minute ago: introspection says `"active": false`. */
  expired?: boolean;
  /** The token's length in characters (at least the default's, 44): real tokens (JWTs with their
   * claims and signature) run to kilobytes, more than a POP3 command line's 512 octets. */
  length?: number;
}

/** One introspection request, as the endpoint saw and answered it. */
export interface Introspection {
  /** How the token came: a `token=` form field (POST) or an `Authorization: Bearer` header. */
  via: 'form' | 'bearer' | 'none';
  active: boolean;
  /** The token's user when it is active. */
  username?: string;
}

export interface TokenIssuer {
  /** The RFC 7662 endpoint (`http://127.0.0.1:PORT/introspect`), as the stores know it. */
  readonly introspectionUrl: string;
  /** A fresh opaque bearer token for `user` (a uid such as `alice`). */
  issueToken(user: string, options?: IssueTokenOptions): string;
  /** Every introspection request so far, in order. */
  readonly introspections: readonly Introspection[];
  stop(): Promise<void>;
}

interface Grant {
  username: string;
  iat: number;
  exp: number;
}

function readBody(request: http.IncomingMessage, limit = 16_384): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new Error('request body too large'));
        request.destroy();
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

/** Start the endpoint on a free port of `host`. */
export async function startTokenIssuer(host = '127.0.0.1'): Promise<TokenIssuer> {
  const grants = new Map<string, Grant>();
  const introspections: Introspection[] = [];

  const answer = (token: string | undefined, via: Introspection['via']): object => {
    const grant = token === undefined ? undefined : grants.get(token);
    const now = Math.floor(Date.now() / 1000);
    // RFC 7662 section 2.2: an expired or unknown token is inactive, with nothing else said.
    if (grant === undefined || grant.exp <= now) {
      introspections.push({ via, active: false });
      return { active: false };
    }
    introspections.push({ via, active: true, username: grant.username });
    return {
      active: true,
      username: grant.username,
      scope: TOKEN_SCOPE,
      client_id: CLIENT_ID,
      token_type: 'Bearer',
      iat: grant.iat,
      exp: grant.exp,
    };
  };

  const server = http.createServer((request, response) => {
    const reply = (status: number, body: object): void => {
      const json = JSON.stringify(body);
      response.writeHead(status, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(json),
        'cache-control': 'no-store',
      });
      response.end(json);
    };
    const url = new URL(request.url ?? '/', 'http://testbed');
    if (url.pathname !== INTROSPECTION_PATH) {
      reply(404, { error: 'not_found' });
      return;
    }
    const bearer = /^Bearer (\S+)$/i.exec(request.headers.authorization ?? '')?.[1];
    if (request.method === 'POST') {
      readBody(request).then(
        (body) => {
          // section 2.1: `token` is a form field of the POST body
          const token = new URLSearchParams(body).get('token') ?? undefined;
          if (token !== undefined) reply(200, answer(token, 'form'));
          else reply(200, answer(bearer, bearer === undefined ? 'none' : 'bearer'));
        },
        () => reply(400, { error: 'invalid_request' }),
      );
      return;
    }
    if (request.method === 'GET') {
      reply(200, answer(bearer, bearer === undefined ? 'none' : 'bearer'));
      return;
    }
    reply(405, { error: 'invalid_request' });
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: 0 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.unref();
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('token issuer: no port');

  return {
    introspectionUrl: `http://${host}:${address.port}${INTROSPECTION_PATH}`,
    issueToken(user, options = {}) {
      const prefix = 'mmp-testbed.';
      // Random base64url after the prefix: 32 characters (24 bytes) unless a length is asked for.
      const body = Math.max(32, (options.length ?? 0) - prefix.length);
      const random = randomBytes(Math.ceil(body * 0.75)).toString('base64url');
      const token = `${prefix}${random.slice(0, body)}`;
      const now = Math.floor(Date.now() / 1000);
      grants.set(
        token,
        options.expired
          ? { username: user, iat: now - LIFETIME_S, exp: now - 60 }
          : { username: user, iat: now, exp: now + LIFETIME_S },
      );
      return token;
    },
    introspections,
    async stop(): Promise<void> {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
