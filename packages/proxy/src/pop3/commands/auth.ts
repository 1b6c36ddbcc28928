/**
 * AUTH mechanism [initial-response] (RFC 5034). PLAIN (RFC 4616) and LOGIN are offered: the
 * multiplexor needs the plaintext password to replay the login; EXTERNAL (RFC 4422 App. A) with a verified client
 * certificate; XOAUTH2 and OAUTHBEARER (RFC 7628) when OAuth2Mechanisms names them, passed
 * through to the store (an initial response must fit the 512-octet command line: a longer one
 * goes after the `+`, as RFC 5034 §4 has clients do beyond 255 octets). `=` is the empty initial response (§4); without one the session sends the empty
 * challenge `+ ` and reads the response line, where `*` cancels. AUTH without an argument lists
 * the mechanisms (the pre-RFC 5034 form some clients still send, answered as Dovecot does).
 */

import { externalRefusal } from '../../certlogin.js';
import {
  decodeInitialResponse,
  isBearerMechanism,
  isSaslMechanism,
  startSasl,
} from '../../sasl.js';
import { words } from '../parser.js';
import { type CommandContext, command } from './types.js';

/** The mechanisms usable on this connection, in CAPA's order (capa.ts says the same). */
export function authMechanisms(ctx: CommandContext): string[] {
  const { security } = ctx;
  return [
    // LOGIN as IMAP offers it (draft-murchison-sasl-login; nginx's POP3 tests use it).
    ...(security.plainAllowed ? ['PLAIN', 'LOGIN'] : []),
    ...(security.external ? ['EXTERNAL'] : []),
    // A bearer token in the clear is a password while it lasts (RFC 7628 §5).
    ...(security.plainAllowed ? ctx.bearerMechanisms : []),
  ];
}

export const auth = command({
  name: 'AUTH',
  states: ['authorization'],
  args: [
    { kind: 'word', text: 'a mechanism', optional: true },
    { kind: 'word', text: 'an optional initial response', optional: true },
  ],
  describe(arg) {
    const w = words(arg);
    return {
      mechanism: w[0]?.slice(0, 32).toUpperCase() ?? null,
      initialResponse: w.length > 1 ? '<redacted>' : null,
    };
  },
  plaintext: ([mechanism]) => {
    const m = mechanism?.toUpperCase() ?? '';
    return m === 'PLAIN' || m === 'LOGIN' || isBearerMechanism(m);
  },
  handle(ctx, [word, initialResponse]) {
    const { security } = ctx;
    if (word === undefined) {
      // The mechanisms usable on this connection, as CAPA's SASL line says (capa.ts).
      const usable = authMechanisms(ctx);
      return { kind: 'ok', body: Buffer.from(`${usable.map((m) => `${m}\r\n`).join('')}.\r\n`) };
    }
    const mechanism = word.toUpperCase();
    if (mechanism === 'EXTERNAL' && !security.external)
      return { kind: 'no', refusal: { kind: 'external', reason: externalRefusal(security) } };
    const offered = authMechanisms(ctx).find((m) => m === mechanism);
    if (offered === undefined || !isSaslMechanism(offered))
      return { kind: 'no', refusal: { kind: 'mechanism' } };
    let initial: Buffer | undefined;
    if (initialResponse !== undefined) {
      const decoded = decodeInitialResponse(Buffer.from(initialResponse, 'latin1'));
      if (!decoded.ok) return { kind: 'bad', text: 'Invalid initial response' };
      initial = decoded.value;
    }
    const exchange = startSasl(offered);
    return { kind: 'sasl', exchange, step: exchange.start(initial) };
  },
});
