/**
 * STARTTLS (RFC 3501 §6.2.1, RFC 9051 §6.2.1): only where advertised (a plain connection, with
 * SSLEnable and SSLStartTLS); a second negotiation is refused. The session does the rest
 * (`../../session.ts` startTls): OK, discard anything pipelined after the command, handshake.
 */

import { command } from './types.js';

export const starttls = command({
  name: 'STARTTLS',
  args: [],
  handle(ctx) {
    if (ctx.security.tls !== undefined) return { kind: 'bad', text: 'TLS is already active' };
    if (!ctx.security.startTls) return { kind: 'bad', text: 'STARTTLS is not available' };
    return { kind: 'starttls' };
  },
});
