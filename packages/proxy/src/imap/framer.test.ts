import { describe, expect, it } from 'vitest';
import {
  ID_MAX_FIELD_BYTES,
  ID_MAX_PAIRS,
  ID_MAX_VALUE_BYTES,
  MAX_ID_LINE_BYTES,
  MAX_LINE_BYTES,
  MAX_LITERAL_BYTES,
} from '../limits.js';
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
    const input = Buffer.from(`a LOGIN ("${seg}" {1+}\r\nx "${seg}" {1+}\r\ny "${seg}")\r\n`);
    expect(allAtOnce(input)).toEqual(['error(line-too-long,false)']);
    expect(byteByByte(input)).toEqual(['error(line-too-long,false)']);
  });
});

/** Both ways of feeding must agree; returns the one result. */
function framed(input: Buffer): Seen[] {
  const once = allAtOnce(input);
  expect(byteByByte(input)).toEqual(once);
  return once;
}

/** The most `retainedBytes()` reaches while `input` is fed in chunks of `size`. */
function peakRetained(
  input: Buffer,
  size: number,
  framer = new ImapFramer({ allowNonSyncLiterals: true }),
): number {
  let peak = 0;
  for (let pos = 0; pos < input.length; pos += size) {
    const chunk = input.subarray(pos, pos + size);
    let off = 0;
    while (off < chunk.length) {
      const step = framer.feed(chunk, off);
      off += step.consumed;
      peak = Math.max(peak, framer.retainedBytes());
      if (step.event?.kind === 'error') return peak;
      if (step.event?.kind === 'literal-request') framer.acceptLiteral();
    }
  }
  return peak;
}

/** RFC 2971 §3.3 at its maximum: 30 pairs, 30-octet fields, 1024-octet values, quoted. */
function maximalId(valueByte = 'v'): Buffer {
  const pairs: string[] = [];
  for (let i = 0; i < ID_MAX_PAIRS; i++) {
    const field = `f${String(i).padStart(2, '0')}`.padEnd(ID_MAX_FIELD_BYTES, 'x');
    const value =
      valueByte === '"' ? '\\"'.repeat(ID_MAX_VALUE_BYTES) : valueByte.repeat(ID_MAX_VALUE_BYTES);
    pairs.push(`"${field}" "${value}"`);
  }
  return Buffer.from(`a1 ID (${pairs.join(' ')})\r\n`);
}

describe('ImapFramer: every byte a client sends is counted', () => {
  it('counts lone CRs in command text: `a NOOP` and megabytes of CR are refused at the limit', () => {
    const flood = Buffer.concat([Buffer.from('a NOOP'), Buffer.alloc(2 * 1024 * 1024, 0x0d)]);
    expect(framed(flood.subarray(0, 20_000))).toEqual(['error(line-too-long,false)']);
    expect(allAtOnce(flood)).toEqual(['error(line-too-long,false)']);
    // Held at most the line and its CR, whether the flood comes at once or byte by byte.
    expect(peakRetained(flood, flood.length)).toBeLessThanOrEqual(MAX_LINE_BYTES + 1);
    expect(peakRetained(flood.subarray(0, 20_000), 1)).toBeLessThanOrEqual(MAX_LINE_BYTES + 1);
  });

  it('counts lone CRs inside a quoted string and after a literal', () => {
    const quoted = Buffer.concat([Buffer.from('a LOGIN "x'), Buffer.alloc(9000, 0x0d)]);
    expect(framed(quoted)).toEqual(['error(line-too-long,false)']);
    const afterLiteral = Buffer.concat([
      Buffer.from('a LOGIN {1+}\r\nx'),
      Buffer.alloc(9000, 0x0d),
    ]);
    expect(framed(afterLiteral)).toEqual(['error(line-too-long,false)']);
  });

  it('counts lone CRs inside an AUTHENTICATE response line', () => {
    const input = Buffer.concat([
      Buffer.from('a AUTHENTICATE PLAIN\r\n'),
      Buffer.from('AGFsaWNl'),
      Buffer.alloc(9000, 0x0d),
    ]);
    expect(framed(input)).toEqual([
      'command[text:a AUTHENTICATE PLAIN]',
      'error(line-too-long,false)',
    ]);
    const framer = new ImapFramer({ allowNonSyncLiterals: true });
    framer.expectLine();
    expect(peakRetained(input.subarray(22), 1, framer)).toBeLessThanOrEqual(MAX_LINE_BYTES + 1);
  });

  it('takes the CR of the closing CRLF as no text: a line of exactly the limit is accepted', () => {
    const text = `a NOOP ${'x'.repeat(MAX_LINE_BYTES - 7)}`;
    expect(framed(Buffer.from(`${text}\r\n`))).toEqual([`command[text:${text}]`]);
    expect(framed(Buffer.from(`${text}\n`))).toEqual([`command[text:${text}]`]);
    // One lone CR more is text, and over the limit.
    expect(framed(Buffer.from(`${text}\r\r\n`))).toEqual(['error(line-too-long,false)']);
    expect(framed(Buffer.from(`${text}x\r\n`))).toEqual(['error(line-too-long,false)']);
    const line = 'A'.repeat(MAX_LINE_BYTES);
    const auth = Buffer.from(`a AUTHENTICATE PLAIN\r\n${line}\r\n`);
    expect(framed(auth)).toEqual(['command[text:a AUTHENTICATE PLAIN]', `line[${line}]`]);
  });

  it('accepts ID at the RFC 2971 maximum (about 32 KB on one line), byte by byte and at once', () => {
    const id = maximalId();
    expect(id.length).toBeGreaterThan(31_000);
    const seen = framed(id);
    expect(seen).toEqual([`command[text:${id.subarray(0, id.length - 2).toString('latin1')}]`]);
    // Lower-case verbs are the same command (RFC 3501 §9).
    const lower = Buffer.from(id.toString('latin1').replace('a1 ID (', 'a1 id ('), 'latin1');
    expect(framed(lower)[0]).toMatch(/^command\[/);
  });

  it('accepts ID with every value octet escaped, the bound MAX_ID_LINE_BYTES allows for', () => {
    const id = maximalId('"');
    expect(id.length).toBeGreaterThan(62_000);
    expect(id.length - 2).toBeLessThanOrEqual(MAX_ID_LINE_BYTES);
    expect(framed(id)[0]).toMatch(/^command\[/);
  });

  it('refuses an ID longer than MAX_ID_LINE_BYTES, and holds no more than that', () => {
    const over = Buffer.from(`a1 ID ("f" "${'v'.repeat(MAX_ID_LINE_BYTES)}")\r\n`);
    expect(framed(over)).toEqual(['error(line-too-long,false)']);
    expect(peakRetained(over, 1)).toBeLessThanOrEqual(MAX_ID_LINE_BYTES + 1);
    const justFits = Buffer.from(`a1 ID ${'x'.repeat(MAX_ID_LINE_BYTES - 6)}\r\n`);
    expect(framed(justFits)[0]).toMatch(/^command\[/);
  });

  it('keeps every other command at the 8 KiB bound, whatever it looks like', () => {
    for (const start of [
      'a1 NOOP (',
      'a1 LOGIN "',
      'a1 IDX (',
      'a1 XID (',
      'ID (',
      'a1  ID (',
      '{2}\r\n',
    ]) {
      const input = Buffer.from(`${start}${'v'.repeat(MAX_LINE_BYTES)})\r\n`);
      const seen = framed(input);
      expect(seen.at(-1)).toBe('error(line-too-long,false)');
    }
    // The verb is read from the command's first text segment, not from a literal.
    const inLiteral = Buffer.from(`a1 {2+}\r\nID ${'v'.repeat(MAX_LINE_BYTES)}\r\n`);
    expect(framed(inLiteral)).toEqual(['error(line-too-long,false)']);
  });

  it('goes back to the 8 KiB bound for the command after a long ID', () => {
    const input = Buffer.concat([
      maximalId(),
      Buffer.from(`a2 NOOP ${'x'.repeat(MAX_LINE_BYTES)}\r\n`),
    ]);
    const seen = framed(input);
    expect(seen.map((e) => e.slice(0, 8))).toEqual(['command[', 'error(li']);
  });

  it('never holds more than its bound, for the longest command with every literal', () => {
    const literals = `{${MAX_LITERAL_BYTES}+}\r\n${'l'.repeat(MAX_LITERAL_BYTES)} `.repeat(8);
    const input = Buffer.from(`a1 ID (${literals}${'v'.repeat(MAX_ID_LINE_BYTES)})\r\n`);
    const framer = new ImapFramer({ allowNonSyncLiterals: true });
    expect(peakRetained(input, 977, framer)).toBeLessThanOrEqual(framer.maxRetainedBytes);
    expect(framer.maxRetainedBytes).toBe(MAX_ID_LINE_BYTES + 1 + 8 * MAX_LITERAL_BYTES);
  });
});
