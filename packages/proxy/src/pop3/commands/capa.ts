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

import { pop3AuthorizationCapabilities } from '../../tls/security.js';
import { command } from './types.js';

export const AUTHORIZATION_CAPABILITIES = [
  'USER',
  'SASL PLAIN',
  'RESP-CODES',
  'AUTH-RESP-CODE',
  'PIPELINING',
] as const;

export const TRANSACTION_CAPABILITIES = ['TOP', 'UIDL', 'RESP-CODES', 'PIPELINING'] as const;

export const capa = command({
  name: 'CAPA',
  states: ['authorization', 'transaction'],
  args: [],
  handle(ctx) {
    // STLS, and USER / SASL as the connection's security allows (tls/security.ts).
    const list =
      ctx.inbox === undefined
        ? pop3AuthorizationCapabilities(AUTHORIZATION_CAPABILITIES, ctx.security)
        : TRANSACTION_CAPABILITIES;
    return {
      kind: 'ok',
      text: 'Capability list follows',
      body: Buffer.from(`${list.join('\r\n')}\r\n.\r\n`),
    };
  },
});
