import { describe, expect, it } from 'vitest';
import {
  type SearchContext,
  escapeFilterValue,
  expandSearch,
  parseSearchFormat,
} from './searchFormat.js';

/** Parse, then expand: what a login does with the configured UidSearch. */
function expand(format: string, context: SearchContext): string {
  const template = parseSearchFormat(format);
  if (!template.ok) throw new Error(template.error);
  return expandSearch(template.value, context);
}

const ctx: SearchContext = {
  user: 'pilar',
  domain: 'airius.com',
  canonical: 'pilar+airius.com',
  original: 'pilar@airius.com',
  clientIp: '192.0.2.7',
  serverIp: '198.51.100.1',
  subjectDn: 'cn=Pilar Lorca,ou=pilar,o=airius.com',
};

describe('expandSearch', () => {
  it('expands the default and every escape of NOTES.md', () => {
    expect(expand('(uid=%s)', ctx)).toBe('(uid=pilar+airius.com)');
    expect(expand('(|(&(uid=%U)(dom=%V))(mail=%o)(c=%C)(s=%S)(dn=%D)(pct=100%%))', ctx)).toBe(
      '(|(&(uid=pilar)(dom=airius.com))(mail=pilar@airius.com)(c=192.0.2.7)(s=198.51.100.1)' +
        '(dn=cn=Pilar Lorca,ou=pilar,o=airius.com)(pct=100%))',
    );
  });

  it('expands absent values to nothing', () => {
    expect(expand('(&(uid=%U)(dom=%V))', { user: 'u', canonical: 'u', original: 'u' })).toBe(
      '(&(uid=u)(dom=))',
    );
  });

  it('cannot be steered by hostile user names (RFC 4515)', () => {
    const hostile = (name: string): string =>
      expand('(uid=%s)', { user: name, canonical: name, original: name });
    expect(hostile('*)(uid=*')).toBe('(uid=\\2a\\29\\28uid=\\2a)');
    expect(hostile('a\\29')).toBe('(uid=a\\5c29)');
    expect(hostile('a\0b')).toBe('(uid=a\\00b)');
    expect(hostile('*')).toBe('(uid=\\2a)');
    expect(hostile('%s')).toBe('(uid=%s)');
    expect(hostile('Jürgen')).toBe('(uid=Jürgen)');
  });
});

describe('parseSearchFormat', () => {
  it('accepts known escapes and balanced filters', () => {
    expect(parseSearchFormat('(uid=%s)')).toEqual({
      ok: true,
      value: {
        text: '(uid=%s)',
        parts: [
          { kind: 'text', text: '(uid=' },
          { kind: 'escape', name: 's' },
          { kind: 'text', text: ')' },
        ],
      },
    });
    expect(parseSearchFormat('(&(objectClass=mailRecipient)(|(uid=%U)(mail=%o)))').ok).toBe(true);
    // %% is text: a literal percent sign.
    expect(parseSearchFormat('(pct=100%%)')).toMatchObject({
      value: { parts: [{ kind: 'text', text: '(pct=100%)' }] },
    });
  });

  it.each([
    ['(uid=%x)', 'unknown escape %x at offset 5'],
    ['(uid=%s', 'unbalanced parentheses'],
    ['(uid=%s))', "unbalanced ')'"],
    ['uid=%s', 'parenthesised'],
    ['(uid=%s)(cn=%s)', "text after the filter's closing ')'"],
    ['(uid=%)', 'unknown escape %)'],
    ['(uid=x)%', 'lone %'],
    ['', 'empty'],
  ])('refuses %j', (format, message) => {
    const r = parseSearchFormat(format);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toContain(message);
  });
});

describe('escapeFilterValue', () => {
  it('escapes the five RFC 4515 characters', () => {
    expect(escapeFilterValue('a*b(c)d\\e\0f')).toBe('a\\2ab\\28c\\29d\\5ce\\00f');
  });

  it('keeps valid UTF-8 and escapes invalid bytes', () => {
    expect(escapeFilterValue(Buffer.from('Lučić ✓ 😀', 'utf8'))).toBe('Lučić ✓ 😀');
    expect(escapeFilterValue(Buffer.from([0x61, 0xff, 0x62]))).toBe('a\\ffb');
    // Overlong "/" (C0 AF), a lone continuation byte, a truncated sequence, an encoded surrogate.
    expect(escapeFilterValue(Buffer.from([0xc0, 0xaf]))).toBe('\\c0\\af');
    expect(escapeFilterValue(Buffer.from([0x80]))).toBe('\\80');
    expect(escapeFilterValue(Buffer.from([0xe2, 0x9c]))).toBe('\\e2\\9c');
    expect(escapeFilterValue(Buffer.from([0xed, 0xa0, 0x80]))).toBe('\\ed\\a0\\80');
  });
});
