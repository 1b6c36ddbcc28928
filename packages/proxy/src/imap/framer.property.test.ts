/**
 * Fuzz targets for the IMAP framer and parser (issue 13, point 7): whatever a client sends before
 * login, and however TCP splits it, no exception escapes, the framer never holds more than its
 * bound, and the events are those of the same bytes read at once. Inputs are built from IMAP's
 * own tokens (literal headers, quotes, CR and LF alone, verbs, long runs) mixed with random bytes,
 * under random limits small enough that every limit is hit often.
 */

import fc from 'fast-check';
import { describe } from 'vitest';
import { bytewise, fuzzTest, splitAt } from '@mmp/testbed/fuzz';
import { type FrameEvent, type FramePart, type FramerOptions, ImapFramer } from './framer.js';
import { parseCommand, tagOf, verbOf } from './parser.js';

const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');

const token: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 4, arbitrary: fc.uint8Array({ maxLength: 8 }).map((a) => Buffer.from(a)) },
  {
    weight: 4,
    arbitrary: fc
      .constantFrom('\r\n', '\r', '\n', ' ', '"', '\\', '{', '}', '+', '(', ')', '\0', '\xff', '*')
      .map(bytes),
  },
  {
    weight: 3,
    arbitrary: fc
      .constantFrom(
        'a1 ',
        'ID ',
        'id ',
        'LOGIN ',
        'AUTHENTICATE PLAIN',
        'NOOP',
        'CAPABILITY',
        'NIL',
        '("name" "x")',
        '"q\\"uo\\\\ted"',
      )
      .map(bytes),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.nat({ max: 40 }), fc.boolean(), fc.boolean())
      .map(([n, plus, crlf]) => bytes(`{${n}${plus ? '+' : ''}}${crlf ? '\r\n' : '\n'}`)),
  },
  { weight: 1, arbitrary: fc.constant(bytes('{99999999999999999999999}\r\n')) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom(0x0d, 0x61, 0x22, 0x20, 0x7b), fc.nat({ max: 400 }))
      .map(([b, n]) => Buffer.alloc(n, b)),
  },
);

const input: fc.Arbitrary<Buffer> = fc
  .array(token, { maxLength: 40 })
  .map((ts) => Buffer.concat(ts));

/** Limits from tiny (every path of the state machine is reached) to the real ones. */
const options: fc.Arbitrary<FramerOptions> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      allowNonSyncLiterals: fc.boolean(),
      maxLineBytes: fc.integer({ min: 1, max: 96 }),
      maxIdLineBytes: fc.integer({ min: 1, max: 256 }),
      maxLiteralBytes: fc.integer({ min: 0, max: 48 }),
      maxLiterals: fc.integer({ min: 0, max: 4 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ allowNonSyncLiterals: fc.boolean() }) },
);

/** What the session would do at each event: accept a literal, go to line mode, …, by event. */
const decisions = fc.array(fc.boolean(), { minLength: 1, maxLength: 16 });

function showParts(parts: readonly FramePart[]): string {
  return parts.map((p) => `${p.kind}:${p.bytes.toString('hex')}`).join('|');
}

function show(e: FrameEvent): string {
  switch (e.kind) {
    case 'command':
      return `command[${showParts(e.parts)}]`;
    case 'line':
      return `line[${e.bytes.toString('hex')}]`;
    case 'literal-request':
      return `literal-request(${e.size})[${showParts(e.parts)}]`;
    case 'error':
      return `error(${e.error},${e.sync})[${showParts(e.parts)}]`;
  }
}

/**
 * Drive a framer over `chunks` as the session does, parsing every command. Decisions are taken
 * per event (not per read), so any split of the same bytes must give the same events. Throws if
 * the framer ever holds more than its bound or makes no progress.
 */
function drive(opts: FramerOptions, chunks: readonly Buffer[], decide: boolean[]): string[] {
  const framer = new ImapFramer(opts);
  const seen: string[] = [];
  let n = 0;
  for (const chunk of chunks) {
    let off = 0;
    while (off < chunk.length) {
      const step = framer.feed(chunk, off);
      if (step.consumed < 1) throw new Error('framer made no progress');
      off += step.consumed;
      if (framer.retainedBytes() > framer.maxRetainedBytes) {
        throw new Error(`holds ${framer.retainedBytes()} > ${framer.maxRetainedBytes}`);
      }
      const e = step.event;
      if (e === undefined) continue;
      const yes = decide[n++ % decide.length] as boolean;
      seen.push(show(e));
      switch (e.kind) {
        case 'literal-request':
          if (yes) framer.acceptLiteral();
          else framer.reset();
          break;
        case 'error':
          if (!e.sync) return seen;
          framer.reset();
          break;
        case 'command': {
          const parsed = parseCommand(e.parts);
          seen.push(parsed.ok ? `parsed ${parsed.value.verb}` : `refused ${parsed.error.message}`);
          if (parsed.ok && parsed.value.verb === 'AUTHENTICATE' && yes) framer.expectLine();
          break;
        }
        case 'line':
          if (yes) framer.expectLine();
          break;
      }
    }
  }
  return seen;
}

describe('IMAP framer and parser, fuzzed', () => {
  fuzzTest(
    'imap framer: no exception, bounded memory, whatever the input and limits',
    fc.property(options, input, decisions, (opts, bytesIn, decide) => {
      drive(opts, [bytesIn], decide);
      drive(opts, bytewise(bytesIn), decide);
    }),
    2_000,
  );

  fuzzTest(
    'imap framer: byte by byte and any split give the events of all at once',
    fc.property(
      options,
      input,
      decisions,
      fc.array(fc.nat(), { maxLength: 12 }),
      (opts, bytesIn, decide, cuts) => {
        const once = drive(opts, [bytesIn], decide);
        const byByte = drive(opts, bytewise(bytesIn), decide);
        const split = drive(opts, splitAt(bytesIn, cuts), decide);
        return (
          JSON.stringify(byByte) === JSON.stringify(once) &&
          JSON.stringify(split) === JSON.stringify(once)
        );
      },
    ),
    2_000,
  );

  const part: fc.Arbitrary<FramePart> = fc.oneof(
    input.map((b): FramePart => ({ kind: 'text', bytes: b })),
    fc
      .uint8Array({ maxLength: 12 })
      .map((a): FramePart => ({ kind: 'literal', bytes: Buffer.from(a), nonSync: false })),
  );

  fuzzTest(
    'imap parser: no exception on any parts; tagOf and verbOf agree with a successful parse',
    fc.property(fc.array(part, { maxLength: 6 }), (parts) => {
      const parsed = parseCommand(parts);
      const tag = tagOf(parts);
      const verb = verbOf(parts);
      if (!parsed.ok) return parsed.error.tag === undefined || parsed.error.tag === tag;
      return (
        parsed.value.tag === tag &&
        parsed.value.verb === verb &&
        parsed.value.verb === parsed.value.verb.toUpperCase()
      );
    }),
    3_000,
  );
});
