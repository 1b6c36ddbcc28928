import { describe, expect, it } from 'vitest';
import { messageNumber, parseCommand, words } from './parser.js';

describe('parseCommand', () => {
  it('upper-cases the keyword and keeps the argument bytes whole', () => {
    const r = parseCommand(Buffer.from('pass  two  spaces '));
    expect(r).toEqual({ ok: true, value: { verb: 'PASS', arg: Buffer.from(' two  spaces ') } });
    expect(parseCommand(Buffer.from('CAPA'))).toEqual({
      ok: true,
      value: { verb: 'CAPA', arg: undefined },
    });
    expect(parseCommand(Buffer.from('USER '))).toEqual({
      ok: true,
      value: { verb: 'USER', arg: Buffer.alloc(0) },
    });
  });

  it('refuses empty lines and keywords that are not clean (never echoed)', () => {
    expect(parseCommand(Buffer.alloc(0))).toEqual({ ok: false, error: 'Empty command' });
    for (const bad of ['Host: x', '\x00\xff', '1USER', 'X'.repeat(40), ' USER']) {
      expect(parseCommand(Buffer.from(bad, 'latin1'))).toEqual({
        ok: false,
        error: 'Invalid command',
      });
    }
  });
});

describe('words and messageNumber', () => {
  it('split on single spaces and read 1-based decimals', () => {
    expect(words(undefined)).toEqual([]);
    expect(words(Buffer.from(''))).toEqual([]);
    expect(words(Buffer.from('1 10'))).toEqual(['1', '10']);
    expect(messageNumber('1')).toBe(1);
    expect(messageNumber('0')).toBeUndefined();
    expect(messageNumber('-1')).toBeUndefined();
    expect(messageNumber('1x')).toBeUndefined();
    expect(messageNumber('9999999999')).toBeUndefined();
    expect(messageNumber(undefined)).toBeUndefined();
  });
});
