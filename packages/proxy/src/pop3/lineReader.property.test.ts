/**
 * Fuzz targets for the POP3 line reader and command parser (issue 13, point 7): no exception
 * escapes, the reader never holds more than its limit, and any split of the bytes (one byte per
 * read included) gives the lines of the same bytes read at once.
 */

import fc from 'fast-check';
import { describe } from 'vitest';
import { bytewise, fuzzTest, splitAt } from '@mmp/testbed/fuzz';
import { Pop3LineReader } from './lineReader.js';
import { messageNumber, parseCommand, words } from './parser.js';

const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');

const token: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 4, arbitrary: fc.uint8Array({ maxLength: 8 }).map((a) => Buffer.from(a)) },
  {
    weight: 4,
    arbitrary: fc.constantFrom('\r\n', '\r', '\n', ' ', '\0', '\xff', '-', '1').map(bytes),
  },
  {
    weight: 3,
    arbitrary: fc
      .constantFrom('USER ', 'PASS ', 'AUTH PLAIN', 'RETR 1', 'TOP 1 0', 'CAPA', 'STLS', '*')
      .map(bytes),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom(0x0d, 0x41, 0x20), fc.nat({ max: 700 }))
      .map(([b, n]) => Buffer.alloc(n, b)),
  },
);

const input = fc.array(token, { maxLength: 40 }).map((ts) => Buffer.concat(ts));

/** A limit per line in turn (the session switches to the SASL limit between lines). */
const limits = fc.array(fc.integer({ min: 1, max: 600 }), { minLength: 1, maxLength: 4 });

/** Read `chunks` as the session does, parsing every line; throws past the memory bound. */
function drive(chunks: readonly Buffer[], limitsPerLine: readonly number[]): string[] {
  let n = 0;
  const limitAt = (): number => limitsPerLine[n % limitsPerLine.length] as number;
  const reader = new Pop3LineReader(limitAt());
  const seen: string[] = [];
  for (const chunk of chunks) {
    let off = 0;
    while (off < chunk.length) {
      const step = reader.feed(chunk, off);
      if (step.consumed < 1) throw new Error('reader made no progress');
      off += step.consumed;
      if (reader.retainedBytes() > limitAt()) {
        throw new Error(`holds ${reader.retainedBytes()} > limit ${limitAt()}`);
      }
      const e = step.event;
      if (e === undefined) continue;
      if (e.kind === 'too-long') {
        seen.push('too-long');
        continue;
      }
      if (e.bytes.length + 1 > limitAt()) throw new Error('a line over the limit was passed on');
      const cmd = parseCommand(e.bytes);
      if (cmd.ok) {
        const w = words(cmd.value.arg);
        seen.push(`${cmd.value.verb} ${w.length} ${String(messageNumber(w[0]))}`);
      } else seen.push(`refused ${cmd.error}`);
      seen.push(`line ${e.bytes.toString('hex')}`);
      n++;
      reader.setLimit(limitAt());
    }
  }
  return seen;
}

describe('POP3 line reader and parser, fuzzed', () => {
  fuzzTest(
    'pop3 line reader: no exception, bounded memory, any split equals all at once',
    fc.property(input, limits, fc.array(fc.nat(), { maxLength: 12 }), (bytesIn, lim, cuts) => {
      const once = JSON.stringify(drive([bytesIn], lim));
      return (
        JSON.stringify(drive(bytewise(bytesIn), lim)) === once &&
        JSON.stringify(drive(splitAt(bytesIn, cuts), lim)) === once
      );
    }),
    2_000,
  );

  fuzzTest(
    'pop3 parser: no exception; a parsed verb is an upper-case keyword, the argument what follows',
    fc.property(input, (line) => {
      const cmd = parseCommand(line);
      if (!cmd.ok) return true;
      const sp = line.indexOf(0x20);
      const arg = sp < 0 ? undefined : line.subarray(sp + 1);
      return (
        /^[A-Z][A-Z0-9-]*$/.test(cmd.value.verb) &&
        (arg === undefined ? cmd.value.arg === undefined : cmd.value.arg?.equals(arg) === true) &&
        words(cmd.value.arg).join(' ') === (arg?.toString('latin1') ?? '')
      );
    }),
    5_000,
  );
});
