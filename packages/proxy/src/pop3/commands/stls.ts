/**
 * STLS (RFC 2595 §4): only in the AUTHORIZATION state, where advertised (a plain connection,
 * with SSLEnable and SSLStartTLS); a second negotiation is refused. The session does the rest
 * (`session.ts` startTls): +OK, discard anything pipelined after the command, handshake.
 */

import { type CommandSpec, describePlain } from './types.js';

export const stls: CommandSpec = {
  name: 'STLS',
  states: ['authorization'],
  describe: describePlain,
  handle(ctx, arg) {
    if (arg !== undefined) return { kind: 'error', message: 'STLS takes no argument' };
    if (ctx.security?.tls !== undefined) return { kind: 'error', message: 'TLS is already active' };
    if (ctx.security?.startTls !== true) return { kind: 'error', message: 'STLS is not available' };
    return { kind: 'stls' };
  },
};
