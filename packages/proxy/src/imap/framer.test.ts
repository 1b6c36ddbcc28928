import { describe, expect, it } from 'vitest';
import { type FrameEvent, ImapFramer } from './framer.js';

/** Events in a comparable form; literal requests are accepted (the session would send `+`). */
type Seen = string;

function show(e: FrameEvent): Seen {
  const parts = (ps: readonly { kind: string; bytes: Buffer }[]): string =>
    ps.map((p) => `${p.kind}:${p.bytes.toString('latin1')}`).join('|');
  switch (e.kind) {
    case 'command':
      return `command[${parts(e.parts)}]`;
    case 'line':
      return `line[${e.bytes.toString('latin1')}]`;
    case 'literal-request':
      return `literal-request(${e.size})[${parts(e.parts)}]`;
    case 'error':
      return `error(${e.error},${e.sync})`;
  }
}

/** Feed `input` cut at the given chunk sizes (cycled), as a socket would deliver it. */
function frame(input: Buffer, cut: (i: number) => number, allowNonSync = true): Seen[] {
  const framer = new ImapFramer({ allowNonSyncLiterals: allowNonSync });
  const seen: Seen[] = [];
  let pos = 0;
  let n = 0;
  let failed = false;
  while (pos < input.length && !failed) {
    const size = Math.max(1, cut(n++));
    const chunk = Buffer.from(input.subarray(pos, pos + size));
    pos += chunk.length;
    let off = 0;
    while (off < chunk.length && !failed) {
      const step = framer.feed(chunk, off);
      off += step.consumed;
      const e = step.event;
      if (e === undefined) continue;
      seen.push(show(e));
      if (e.kind === 'literal-request') framer.acceptLiteral();
      if (e.kind === 'error') {
        if (e.sync) framer.reset();
        else failed = true;
      }
      if (e.kind === 'command' && /AUTHENTICATE/.test(show(e))) framer.expectLine();
    }
  }
  return seen;
}

const allAtOnce = (input: Buffer): Seen[] => frame(input, () => input.length);
const byteByByte = (input: Buffer): Seen[] => frame(input, () => 1);

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const SESSION = Buffer.concat([
  Buffer.from('a1 CAPABILITY\r\n'),
  Buffer.from('a2 LOGIN "us\\"er" {6}\r\npa\r\n"{\r\n'),
  Buffer.from('a3 ID ("name" {3+}\r\nabc "version" "1.0")\r\n'),
  Buffer.from('a4 LOGIN {0}\r\n {2}\r\n\xff\x00\r\n', 'latin1'),
  Buffer.from('a5 NOOP "{5}"\r\n'),
  Buffer.from('a6 AUTHENTICATE PLAIN\r\n'),
  Buffer.from('AGFsaWNlAHNlY3JldA==\r\n'),
  Buffer.from('a7 LOGOUT\n'),
  Buffer.from('a8 BAD-LONE\rCR\r\n'),
]);

describe('ImapFramer', () => {
  it('frames commands, quoted strings and both literal kinds', () => {
    expect(allAtOnce(SESSION)).toEqual([
      'command[text:a1 CAPABILITY]',
      'literal-request(6)[text:a2 LOGIN "us\\"er" ]',
      'command[text:a2 LOGIN "us\\"er" |literal:pa\r\n"{]',
      'command[text:a3 ID ("name" |literal:abc|text: "version" "1.0")]',
      'literal-request(0)[text:a4 LOGIN ]',
      'literal-request(2)[text:a4 LOGIN |literal:|text: ]',
      'command[text:a4 LOGIN |literal:|text: |literal:\xff\x00]',
      'command[text:a5 NOOP "{5}"]',
      'command[text:a6 AUTHENTICATE PLAIN]',
      'line[AGFsaWNlAHNlY3JldA==]',
      'command[text:a7 LOGOUT]',
      'command[text:a8 BAD-LONE\rCR]',
    ]);
  });

  it('gives the same events fed byte by byte as all at once', () => {
    expect(byteByByte(SESSION)).toEqual(allAtOnce(SESSION));
  });

  it('gives the same events for random splits', () => {
    const expected = allAtOnce(SESSION);
    for (let seed = 1; seed <= 200; seed++) {
      const rnd = seeded(seed);
      expect(frame(SESSION, () => 1 + Math.floor(rnd() * 17))).toEqual(expected);
    }
  });

  it('never consumes bytes after a command (pipelining stays for the session)', () => {
    const framer = new ImapFramer({ allowNonSyncLiterals: false });
    const buf = Buffer.from('a LOGIN u p\r\nb LOGOUT\r\n');
    const step = framer.feed(buf, 0);
    expect(step.event?.kind).toBe('command');
    expect(buf.subarray(step.consumed).toString()).toBe('b LOGOUT\r\n');
  });

  it('refuses a line over the limit, even without a line end', () => {
    const long = Buffer.alloc(9000, 0x61);
    expect(allAtOnce(long)).toEqual(['error(line-too-long,false)']);
    expect(byteByByte(long)).toEqual(['error(line-too-long,false)']);
    const ok = Buffer.concat([
      Buffer.from('a NOOP '),
      Buffer.alloc(8192 - 7, 0x61),
      Buffer.from('\r\n'),
    ]);
    expect(allAtOnce(ok)[0]).toMatch(/^command/);
  });

  it('refuses oversized and overflowing literals; a synchronising one leaves the stream usable', () => {
    expect(allAtOnce(Buffer.from('a LOGIN {4097}\r\nb NOOP\r\n'))).toEqual([
      'error(literal-too-large,true)',
      'command[text:b NOOP]',
    ]);
    expect(allAtOnce(Buffer.from('a LOGIN {99999999999999999999999999}\r\n'))).toEqual([
      'error(literal-too-large,true)',
    ]);
    expect(allAtOnce(Buffer.from('a LOGIN {4097+}\r\nxxxx'))).toEqual([
      'error(literal-too-large,false)',
    ]);
  });

  it('refuses {n+} unless LITERAL+ or LITERAL- was advertised', () => {
    const input = Buffer.from('a LOGIN {1+}\r\nx y\r\n');
    expect(frame(input, () => 100, false)).toEqual(['error(non-sync-literal-not-allowed,false)']);
    expect(frame(input, () => 100, true)).toEqual(['command[text:a LOGIN |literal:x|text: y]']);
  });

  it('limits the number of literals in one command', () => {
    const input = Buffer.from('a ID (' + '{1+}\r\nx '.repeat(9) + ')\r\n');
    expect(allAtOnce(input)).toEqual(['error(too-many-literals,false)']);
  });

  it('counts the line limit over all segments of a command', () => {
    const seg = 'x'.repeat(3000);
    const input = Buffer.from(`a ID ("${seg}" {1+}\r\nx "${seg}" {1+}\r\ny "${seg}")\r\n`);
    expect(allAtOnce(input)).toEqual(['error(line-too-long,false)']);
  });
});
