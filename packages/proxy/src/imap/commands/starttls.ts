/**
 * STARTTLS (RFC 3501 §6.2.1, RFC 9051 §6.2.1): only where advertised (a plain connection, with
 * SSLEnable and SSLStartTLS); a second negotiation is refused. The session does the rest
 * (`session.ts` startTls): OK, discard anything pipelined after the command, handshake.
 */

import { type CommandSpec, describeArgs } from './types.js';

export const starttls: CommandSpec = {
  name: 'STARTTLS',
  literals: false,
  describe: describeArgs,
  handle(ctx, cmd) {
    if (cmd.args.length > 0) return { kind: 'bad', message: 'STARTTLS takes no arguments' };
    if (ctx.security.tls !== undefined) return { kind: 'bad', message: 'TLS is already active' };
    if (!ctx.security.startTls) return { kind: 'bad', message: 'STARTTLS is not available' };
    return { kind: 'starttls' };
  },
};
