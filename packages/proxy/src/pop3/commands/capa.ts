/**
 * CAPA (RFC 2449 §5). Only what the multiplexor itself honours is advertised:
 * - before login: USER (RFC 2449 §6.2), SASL PLAIN (RFC 5034; we need the plaintext password to
 *   replay it), RESP-CODES and AUTH-RESP-CODE (RFC 2449 §6.4, RFC 3206: `[AUTH]`, `[SYS/TEMP]`,
 *   and the store's own `[IN-USE]` passed through), PIPELINING (RFC 2449 §6.6: the session reads
 *   commands in order and forwards what was pipelined after the login to the store).
 *   TOP and UIDL are the store's business: the client asks CAPA again after login (§5) and then
 *   the store answers. STLS comes with TLS.
 * - in the spoof inbox: TOP, UIDL, RESP-CODES, PIPELINING.
 */

import { authMechanisms } from './auth.js';
import { type CommandContext, command } from './types.js';

const AUTHORIZATION_CAPABILITIES = [
  'USER',
  'SASL PLAIN',
  'RESP-CODES',
  'AUTH-RESP-CODE',
  'PIPELINING',
] as const;

const TRANSACTION_CAPABILITIES = ['TOP', 'UIDL', 'RESP-CODES', 'PIPELINING'] as const;

/**
 * POP3 CAPA before login (RFC 2449 §5): USER only when USER/PASS can be used; SASL lists PLAIN
 * (and OAuth2Mechanisms' XOAUTH2, OAUTHBEARER) only when plaintext passwords are allowed and
 * EXTERNAL only with a verified certificate;
 * STLS while it can be used (RFC 2595 §4).
 */
function authorizationCapabilities(base: readonly string[], ctx: CommandContext): string[] {
  const { security } = ctx;
  const mechanisms = authMechanisms(ctx);
  const out: string[] = [];
  for (const c of base) {
    const word = c.split(' ')[0]?.toUpperCase();
    if (word === 'USER') {
      if (security.plainAllowed) out.push(c);
    } else if (word === 'SASL') {
      if (mechanisms.length > 0) out.push(`SASL ${mechanisms.join(' ')}`);
    } else if (word !== 'STLS') out.push(c);
  }
  if (security.startTls) out.push('STLS');
  return out;
}

export const capa = command({
  name: 'CAPA',
  states: ['authorization', 'transaction'],
  args: [],
  handle(ctx) {
    // STLS, and USER / SASL as the connection's security allows.
    const list =
      ctx.inbox === undefined
        ? authorizationCapabilities(AUTHORIZATION_CAPABILITIES, ctx)
        : TRANSACTION_CAPABILITIES;
    return {
      kind: 'ok',
      text: 'Capability list follows',
      body: Buffer.from(`${list.join('\r\n')}\r\n.\r\n`),
    };
  },
});
