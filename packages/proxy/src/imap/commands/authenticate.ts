/**
 * AUTHENTICATE (RFC 3501 §6.2.2) with PLAIN (RFC 4616) or LOGIN, and an optional initial response
 * (SASL-IR, RFC 4959); EXTERNAL (RFC 4422 App. A) with a verified client certificate; XOAUTH2 and
 * OAUTHBEARER (RFC 7628) when OAuth2Mechanisms names them, passed through to the store. Only
 * mechanisms advertised as AUTH=… are accepted. The exchange itself (continuations, `*`
 * cancellation) is carried on by the session; the mechanics are in `sasl.ts`.
 */

import { externalRefusal } from '../../certlogin.js';
import { decodeInitialResponse, isBearerMechanism, startSasl } from '../../sasl.js';
import { atomUpper } from '../parser.js';
import { command } from './types.js';

export const authenticate = command({
  name: 'AUTHENTICATE',
  args: [
    { kind: 'atom', text: 'a mechanism' },
    { kind: 'astring', text: 'an optional initial response', optional: true },
  ],
  describe(args) {
    return {
      mechanism: atomUpper(args[0]) ?? null,
      initialResponse: args.length > 1 ? '<redacted>' : null,
    };
  },
  // A bearer token in the clear is a password while it lasts (RFC 7628 §5).
  plaintext: ([mechanism]) =>
    mechanism === 'PLAIN' || mechanism === 'LOGIN' || isBearerMechanism(mechanism),
  handle(ctx, [mechanism, initialResponse]) {
    const offered = ctx.capabilities.saslMechanisms.find((m) => m === mechanism);
    if (offered === undefined && mechanism === 'EXTERNAL')
      return { kind: 'no', refusal: { kind: 'external', reason: externalRefusal(ctx.security) } };
    if (offered === undefined) return { kind: 'no', refusal: { kind: 'mechanism' } };
    let initial: Buffer | undefined;
    if (initialResponse !== undefined) {
      const decoded = decodeInitialResponse(initialResponse);
      if (!decoded.ok) return { kind: 'bad', text: 'Invalid initial response' };
      initial = decoded.value;
    }
    const exchange = startSasl(offered);
    return { kind: 'sasl', exchange, step: exchange.start(initial) };
  },
});
