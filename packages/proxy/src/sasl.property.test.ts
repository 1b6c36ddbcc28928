/**
 * Fuzz targets for the SASL decoders (issue 13, point 7): base64 responses and initial responses,
 * PLAIN messages (RFC 4616) and the PLAIN, LOGIN and EXTERNAL exchanges. No exception escapes on
 * any bytes; what is accepted is exactly what a conforming client would send; credentials come
 * out byte for byte as they went in.
 */

import fc from 'fast-check';
import { describe } from 'vitest';
import {
  SASL_MECHANISMS,
  type SaslStep,
  decodeInitialResponse,
  decodePlain,
  decodeSaslResponse,
  startSasl,
} from './sasl.js';
import { fuzzTest } from '@mmp/testbed/fuzz';

const BASE64_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Arbitrary bytes, and base64-looking bytes (the decoder's interesting inputs). */
const responseLine: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
  fc
    .array(fc.constantFrom(...`${BASE64_ALPHABET}=*\r\n \0`), { maxLength: 40 })
    .map((cs) => Buffer.from(cs.join(''), 'latin1')),
  fc.uint8Array({ maxLength: 48 }).map((a) => Buffer.from(Buffer.from(a).toString('base64'))),
);

/** A PLAIN identity or password: any bytes but NUL (RFC 4616 §2), sometimes empty. */
const field = fc
  .uint8Array({ maxLength: 24 })
  .map((a) => Buffer.from(a.map((b) => (b === 0 ? 1 : b))));

describe('SASL decoders, fuzzed', () => {
  fuzzTest(
    'sasl base64: no exception; accepted responses are strict base64, never larger, and decode back',
    fc.property(responseLine, fc.uint8Array({ maxLength: 48 }), (line, raw) => {
      const r = decodeSaslResponse(line);
      const i = decodeInitialResponse(line);
      if (r.ok && r.value !== 'cancel') {
        // Decoding never grows what the client sent (3 bytes per 4 characters).
        if (r.value.length > (line.length / 4) * 3) return false;
        if (line.length % 4 !== 0) return false;
        if (!/^[A-Za-z0-9+/]*={0,2}$/.test(line.toString('latin1'))) return false;
      }
      if (r.ok && r.value === 'cancel' && line.toString('latin1') !== '*') return false;
      if (i.ok && line.toString('latin1') !== '=' && r.ok && r.value !== 'cancel') {
        if (!i.value.equals(r.value)) return false;
      }
      // Whatever a client encodes comes out unchanged, as a response and as an initial response.
      const encoded = Buffer.from(Buffer.from(raw).toString('base64'));
      const back = decodeSaslResponse(encoded);
      const backInitial = decodeInitialResponse(encoded.length === 0 ? Buffer.from('=') : encoded);
      return (
        back.ok &&
        back.value !== 'cancel' &&
        back.value.equals(Buffer.from(raw)) &&
        backInitial.ok &&
        backInitial.value.equals(Buffer.from(raw))
      );
    }),
    5_000,
  );

  fuzzTest(
    'sasl PLAIN: no exception on any message; authzid NUL authcid NUL passwd round-trips',
    fc.property(
      fc.uint8Array({ maxLength: 64 }),
      field,
      field,
      fc.boolean(),
      (any, user, password, withAuthz) => {
        decodePlain(Buffer.from(any));
        const message = Buffer.concat([
          withAuthz ? user : Buffer.alloc(0),
          Buffer.of(0),
          user,
          Buffer.of(0),
          password,
        ]);
        const r = decodePlain(message);
        if (user.length === 0 || password.length === 0) return !r.ok;
        return r.ok && r.value.user.equals(user) && r.value.password.equals(password);
      },
    ),
    5_000,
  );

  fuzzTest(
    'sasl exchanges: no exception on any responses; LOGIN gives back the name and password sent',
    fc.property(
      fc.constantFrom(...SASL_MECHANISMS),
      fc.option(fc.uint8Array({ maxLength: 32 }).map((a) => Buffer.from(a))),
      fc.array(
        fc.uint8Array({ maxLength: 32 }).map((a) => Buffer.from(a)),
        { maxLength: 4 },
      ),
      field,
      field,
      (mechanism, initial, responses, user, password) => {
        const exchange = startSasl(mechanism);
        let step: SaslStep = exchange.start(initial ?? undefined);
        for (const response of responses) {
          if (step.kind !== 'challenge') break;
          step = exchange.next(response);
        }
        const login = startSasl('LOGIN');
        const first = login.start(undefined);
        const second = login.next(user);
        if (first.kind !== 'challenge') return false;
        if (user.length === 0) return second.kind === 'failed';
        const done = login.next(password);
        return (
          second.kind === 'challenge' &&
          done.kind === 'done' &&
          done.credentials.user.equals(user) &&
          done.credentials.password.equals(password)
        );
      },
    ),
    5_000,
  );
});
