/**
 * AUTH mechanism [initial-response] (RFC 5034). PLAIN (RFC 4616) is offered: the multiplexor needs
 * the plaintext password to replay the login; EXTERNAL (RFC 4422 App. A) with a verified client
 * certificate. `=` is the empty initial response (§4); without one the session sends the empty
 * challenge `+ ` and reads the response line, where `*` cancels. AUTH without an argument lists
 * the mechanisms (the pre-RFC 5034 form some clients still send, answered as Dovecot does).
 */

import { externalRefusal } from '../../certlogin.js';
import { decodeInitialResponse, startSasl } from '../../sasl.js';
import { words } from '../parser.js';
import { command } from './types.js';

const AUTH_MECHANISMS = ['PLAIN'] as const;

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
    const m = mechanism?.toUpperCase();
    return m === 'PLAIN' || m === 'LOGIN';
  },
  handle(ctx, [word, initialResponse]) {
    const { security } = ctx;
    if (word === undefined) {
      // The mechanisms usable on this connection, as CAPA's SASL line says (capa.ts).
      const usable = [
        ...(security.plainAllowed ? AUTH_MECHANISMS : []),
        ...(security.external ? ['EXTERNAL'] : []),
      ];
      return { kind: 'ok', body: Buffer.from(`${usable.map((m) => `${m}\r\n`).join('')}.\r\n`) };
    }
    const mechanism = word.toUpperCase();
    if (mechanism === 'EXTERNAL' && !security.external)
      return { kind: 'no', refusal: { kind: 'external', reason: externalRefusal(security) } };
    if (mechanism !== 'EXTERNAL' && mechanism !== 'PLAIN')
      return { kind: 'no', refusal: { kind: 'mechanism' } };
    let initial: Buffer | undefined;
    if (initialResponse !== undefined) {
      const decoded = decodeInitialResponse(Buffer.from(initialResponse, 'latin1'));
      if (!decoded.ok) return { kind: 'bad', text: 'Invalid initial response' };
      initial = decoded.value;
    }
    const exchange = startSasl(mechanism);
    return { kind: 'sasl', exchange, step: exchange.start(initial) };
  },
});
