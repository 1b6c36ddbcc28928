import { describe, expect, it } from 'vitest';
import { type FramePart, ImapFramer } from './framer.js';
import { type ImapArg, parseCommand, tagOf, verbOf } from './parser.js';

const text = (s: string): FramePart => ({ kind: 'text', bytes: Buffer.from(s, 'latin1') });
const lit = (s: string): FramePart => ({
  kind: 'literal',
  bytes: Buffer.from(s, 'latin1'),
  nonSync: false,
});

function show(a: ImapArg): string {
  switch (a.kind) {
    case 'atom':
      return `atom:${a.bytes.toString('latin1')}`;
    case 'string':
      return `${a.literal ? 'literal' : 'quoted'}:${a.bytes.toString('latin1')}`;
    case 'list':
      return `(${a.items.map(show).join(',')})`;
  }
}

function parse(...parts: FramePart[]): string {
  const r = parseCommand(parts);
  if (!r.ok) return `error(${r.error.tag ?? '-'}): ${r.error.message}`;
  return [r.value.tag, r.value.verb, ...r.value.args.map(show)].join(' ');
}

describe('parseCommand', () => {
  it('reads tag, verb (upper-cased) and atoms', () => {
    expect(parse(text('a1 login alice secret'))).toBe('a1 LOGIN atom:alice atom:secret');
    expect(parse(text('A.b] capability'))).toBe('A.b] CAPABILITY');
  });

  it('unescapes quoted strings: only \\" and \\\\', () => {
    expect(parse(text('t LOGIN "a\\"b" "c\\\\d e"'))).toBe('t LOGIN quoted:a"b quoted:c\\d e');
    expect(parse(text('t LOGIN "" ""'))).toBe('t LOGIN quoted: quoted:');
    expect(parse(text('t LOGIN "a\\n" x'))).toBe('error(t): Invalid escape in quoted string');
    expect(parse(text('t LOGIN "abc'))).toBe('error(t): Unterminated quoted string');
  });

  it('keeps 8-bit bytes of quoted strings and atoms as they are', () => {
    const r = parseCommand([text('t LOGIN j\xf6rg "p\xe4ss\xff"')]);
    expect(
      r.ok && r.value.args.map((a) => (a.kind === 'list' ? '' : a.bytes.toString('hex'))),
    ).toEqual(['6af67267', '70e47373ff']);
  });

  it('places literals where their header was', () => {
    expect(parse(text('t LOGIN '), lit('us er'), text(' '), lit('p"w\\\r\n'))).toBe(
      't LOGIN literal:us er literal:p"w\\\r\n',
    );
    expect(parse(text('t ID ("name" '), lit('x'), text(')'))).toBe('t ID (quoted:name,literal:x)');
    expect(parse(text('t LOGIN a'), lit('b'))).toBe('error(t): Expected a space between arguments');
  });

  it('parses lists and NIL', () => {
    expect(parse(text('t ID NIL'))).toBe('t ID atom:NIL');
    expect(parse(text('t ID ("a" "b" "c" NIL)'))).toBe(
      't ID (quoted:a,quoted:b,quoted:c,atom:NIL)',
    );
    expect(parse(text('t ID ()'))).toBe('t ID ()');
    expect(parse(text('t ID ("a" "b"'))).toBe('error(t): Unterminated list');
    expect(parse(text('t ID ((((((x))))))'))).toBe('error(t): Lists nested too deeply');
  });

  it('refuses bad tags, missing verbs and stray spaces', () => {
    expect(parse(text(''))).toBe('error(-): Missing or invalid tag');
    expect(parse(text('+ NOOP'))).toBe('error(-): Missing or invalid tag');
    expect(parse(text('a'))).toBe('error(a): Missing command');
    expect(parse(text('a  NOOP'))).toBe('error(a): Missing or invalid command name');
    expect(parse(text('a NOOP '))).toBe('error(a): Missing argument');
    expect(parse(text('a LOGIN x  y'))).toBe('error(a): Invalid characters in argument');
    expect(parse(text('a NOOP\x00'))).toBe('error(a): Expected a space between arguments');
    expect(parse(text('GET / HTTP/1.1'))).toBe('GET / atom:HTTP/1.1');
  });

  it('tagOf and verbOf read partial commands', () => {
    expect(tagOf([text('a12 login ')])).toBe('a12');
    expect(verbOf([text('a12 login ')])).toBe('LOGIN');
    expect(tagOf([text('{5}')])).toBeUndefined();
    expect(verbOf([text('a')])).toBeUndefined();
  });
});

/** Frame `input` (fed in chunks of `size`, literals accepted) and parse each command. */
function frameAndParse(input: Buffer, size: number): string[] {
  const framer = new ImapFramer({ allowNonSyncLiterals: true });
  const out: string[] = [];
  for (let pos = 0; pos < input.length; pos += size) {
    const chunk = input.subarray(pos, pos + size);
    let off = 0;
    while (off < chunk.length) {
      const step = framer.feed(chunk, off);
      off += step.consumed;
      if (step.event?.kind === 'literal-request') framer.acceptLiteral();
      if (step.event?.kind === 'command') out.push(parse(...step.event.parts));
    }
  }
  return out;
}

describe('NUL before login (RFC 3501 §4.3: literals and quoted strings are NUL-free)', () => {
  it('refuses NUL in a literal, a quoted string or an atom; the next command is read in step', () => {
    const input = Buffer.from(
      'a1 LOGIN {5}\r\nal\x00ce pw\r\n' +
        'a2 LOGIN alice {3+}\r\np\x00w\r\n' +
        'a3 LOGIN "al\x00ce" pw\r\n' +
        'a4 LOGIN al\x00ce pw\r\n' +
        'a5 LOGIN {5}\r\nalice {2+}\r\npw\r\n',
      'latin1',
    );
    const expected = [
      'error(a1): NUL is not allowed in a literal',
      'error(a2): NUL is not allowed in a literal',
      'error(a3): Invalid character in quoted string',
      'error(a4): Invalid characters in atom',
      'a5 LOGIN literal:alice literal:pw',
    ];
    expect(frameAndParse(input, input.length)).toEqual(expected);
    expect(frameAndParse(input, 1)).toEqual(expected);
  });
});
