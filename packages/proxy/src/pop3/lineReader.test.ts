import { describe, expect, it } from 'vitest';
import { type LineEvent, type LongerLine, Pop3LineReader } from './lineReader.js';

/** Feed `input` in the given chunk sizes; collect every event as text. */
function run(
  input: Buffer,
  sizes: (i: number) => number,
  limit = 512,
  longer?: LongerLine,
): string[] {
  const reader = new Pop3LineReader(limit, longer);
  const out: string[] = [];
  const show = (e: LineEvent): string =>
    e.kind === 'line' ? `line:${e.bytes.toString('latin1')}` : 'too-long';
  let pos = 0;
  let i = 0;
  while (pos < input.length) {
    const chunk = input.subarray(pos, pos + Math.max(1, sizes(i++)));
    pos += chunk.length;
    let off = 0;
    while (off < chunk.length) {
      const step = reader.feed(chunk, off);
      expect(step.consumed).toBeGreaterThan(0);
      off += step.consumed;
      if (step.event !== undefined) out.push(show(step.event));
    }
  }
  return out;
}

const SAMPLE = Buffer.from(
  'USER alice\r\nPASS sp ace "q" \xe9\r\nNOOP\nCAPA\r\n\r\nA\rB\r\nAUTH PLAIN\r\n',
  'latin1',
);

describe('Pop3LineReader', () => {
  it('gives the same lines byte by byte, at once, and in random splits', () => {
    const atOnce = run(SAMPLE, () => SAMPLE.length);
    expect(atOnce).toEqual([
      'line:USER alice',
      'line:PASS sp ace "q" \xe9',
      'line:NOOP',
      'line:CAPA',
      'line:',
      'line:A\rB',
      'line:AUTH PLAIN',
    ]);
    expect(run(SAMPLE, () => 1)).toEqual(atOnce);
    let seed = 7;
    const random = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % 9;
    for (let k = 0; k < 50; k++) expect(run(SAMPLE, random)).toEqual(atOnce);
  });

  it('accepts a line of exactly the limit (CRLF included) and refuses one octet more', () => {
    const fits = Buffer.from(`${'x'.repeat(510)}\r\n`);
    const over = Buffer.from(`${'x'.repeat(511)}\r\n`);
    expect(run(fits, () => 1)).toEqual([`line:${'x'.repeat(510)}`]);
    expect(run(fits, () => 1000)).toEqual([`line:${'x'.repeat(510)}`]);
    expect(run(over, () => 1)).toEqual(['too-long']);
    expect(run(over, () => 1000)).toEqual(['too-long']);
  });

  it('lets AUTH lines (any case) grow to their own limit, fed byte by byte or at once; others not', () => {
    const auth: LongerLine = { verb: 'AUTH', limit: 16 * 1024 };
    // An OAuth2 initial response: a few kilobytes of base64 after the mechanism (RFC 7628).
    const token = 'QUFB'.repeat(2000);
    const lines = Buffer.from(
      `AUTH XOAUTH2 ${token}\r\nauth OAUTHBEARER ${token}\r\nNOOP\r\n`,
      'latin1',
    );
    const expected = [`line:AUTH XOAUTH2 ${token}`, `line:auth OAUTHBEARER ${token}`, 'line:NOOP'];
    expect(run(lines, () => lines.length, 512, auth)).toEqual(expected);
    expect(run(lines, () => 1, 512, auth)).toEqual(expected);
    expect(run(lines, (i) => (i % 7) + 1, 512, auth)).toEqual(expected);
    // Only AUTH and a space: neither another verb nor AUTH's prefix of a longer word.
    for (const other of ['USER ', 'AUTHX ', 'AUTH\t', 'xAUTH '])
      expect(run(Buffer.from(`${other}${token}\r\n`), () => 1, 512, auth)).toEqual(['too-long']);
    // The AUTH line's own limit (CRLF included) holds, and an endless one is cut there.
    const fits = `AUTH ${'x'.repeat(16 * 1024 - 7)}\r\n`;
    const over = `AUTH ${'x'.repeat(16 * 1024 - 6)}\r\n`;
    expect(run(Buffer.from(fits), () => 1000, 512, auth)).toHaveLength(1);
    expect(run(Buffer.from(fits), () => 1000, 512, auth)[0]).not.toBe('too-long');
    expect(run(Buffer.from(over), () => 1000, 512, auth)).toEqual(['too-long']);
    const reader = new Pop3LineReader(512, auth);
    const endless = Buffer.from(`AUTH ${'x'.repeat(16 * 1024)}`);
    expect(reader.feed(endless).event).toEqual({ kind: 'too-long' });
    // The next ordinary line is back to the ordinary limit.
    expect(reader.feed(Buffer.from('\r\n')).event).toBeUndefined();
    expect(reader.feed(Buffer.from(`${'x'.repeat(600)}\r\n`)).event).toEqual({ kind: 'too-long' });
  });

  it('reports an endless line as soon as it cannot fit, without waiting for LF', () => {
    const reader = new Pop3LineReader(512);
    const step = reader.feed(Buffer.alloc(511, 0x41));
    expect(step.event).toBeUndefined();
    expect(reader.pending).toBe(511);
    expect(reader.feed(Buffer.from('A')).event).toEqual({ kind: 'too-long' });
    expect(reader.pending).toBe(0);
  });

  it('takes a new limit for the next line (SASL responses)', () => {
    const reader = new Pop3LineReader(16);
    reader.setLimit(64);
    const line = Buffer.from(`${'Q'.repeat(40)}\r\n`);
    expect(reader.feed(line).event).toEqual({ kind: 'line', bytes: Buffer.from('Q'.repeat(40)) });
  });
});
