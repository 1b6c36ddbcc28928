/**
 * AUTHENTICATE (RFC 3501 §6.2.2) with PLAIN (RFC 4616) or LOGIN, and an optional initial response
 * (SASL-IR, RFC 4959). Only mechanisms advertised as AUTH=… are accepted. The exchange itself
 * (continuations, `*` cancellation) is carried on by the session; the mechanics are in `sasl.ts`.
 */

import { externalRefusal } from '../../certlogin.js';
import { decodeInitialResponse, startSasl } from '../../sasl.js';
import { IMAP_PLAINTEXT_REFUSED } from '../../tls/security.js';
import { astringBytes, atomUpper } from '../parser.js';
import type { CommandSpec } from './types.js';

export const authenticate: CommandSpec = {
  name: 'AUTHENTICATE',
  literals: false,
  describe(args) {
    return {
      mechanism: atomUpper(args[0]) ?? null,
      initialResponse: args.length > 1 ? '<redacted>' : null,
    };
  },
  handle(ctx, cmd) {
    const mechanism = atomUpper(cmd.args[0]);
    if (mechanism === undefined || cmd.args.length > 2) {
      return {
        kind: 'bad',
        message: 'AUTHENTICATE expects a mechanism and an optional initial response',
      };
    }
    const offered = ctx.capabilities.saslMechanisms.find((m) => m === mechanism);
    if (offered === undefined && (mechanism === 'PLAIN' || mechanism === 'LOGIN')) {
      if (!ctx.security.plainAllowed) {
        // RestrictPlainPasswords before TLS (RFC 5530 PRIVACYREQUIRED).
        ctx.send(`${cmd.tag} ${IMAP_PLAINTEXT_REFUSED}`);
        return { kind: 'done' };
      }
    }
    if (offered === undefined && mechanism === 'EXTERNAL') {
      ctx.send(`${cmd.tag} NO [AUTHENTICATIONFAILED] ${externalRefusal(ctx.security)}`);
      return { kind: 'done' };
    }
    if (offered === undefined) {
      ctx.send(`${cmd.tag} NO [CANNOT] Unsupported authentication mechanism`);
      return { kind: 'done' };
    }
    let initial: Buffer | undefined;
    if (cmd.args.length === 2) {
      const raw = astringBytes(cmd.args[1]);
      const decoded = raw === undefined ? undefined : decodeInitialResponse(raw);
      if (decoded === undefined || !decoded.ok)
        return { kind: 'bad', message: 'Invalid initial response' };
      initial = decoded.value;
    }
    const exchange = startSasl(offered);
    return { kind: 'sasl', exchange, step: exchange.start(initial) };
  },
};
