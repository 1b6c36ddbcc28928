/**
 * STLS (RFC 2595 §4): only in the AUTHORIZATION state, where advertised (a plain connection,
 * with SSLEnable and SSLStartTLS); a second negotiation is refused. The session does the rest
 * (`../../session.ts` startTls): +OK, discard anything pipelined after the command, handshake.
 */

import { command } from './types.js';

export const stls = command({
  name: 'STLS',
  states: ['authorization'],
  args: [],
  handle(ctx) {
    if (ctx.security.tls !== undefined) return { kind: 'bad', text: 'TLS is already active' };
    if (!ctx.security.startTls) return { kind: 'bad', text: 'STLS is not available' };
    return { kind: 'starttls' };
  },
});
