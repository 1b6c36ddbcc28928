import { describe, expect, it } from 'vitest';
import {
  type SearchContext,
  escapeFilterValue,
  expandSearchFormat,
  searchContextFor,
  validateSearchFormat,
} from './searchFormat.js';

const ctx: SearchContext = {
  user: 'pilar',
  domain: 'airius.com',
  canonical: 'pilar+airius.com',
  original: 'pilar@airius.com',
  clientIp: '192.0.2.7',
  serverIp: '198.51.100.1',
  subjectDn: 'cn=Pilar Lorca,ou=pilar,o=airius.com',
};

describe('expandSearchFormat', () => {
  it('expands the default and every escape of NOTES.md', () => {
    expect(expandSearchFormat('(uid=%s)', ctx)).toEqual({
      ok: true,
      value: '(uid=pilar+airius.com)',
    });
    expect(
      expandSearchFormat('(|(&(uid=%U)(dom=%V))(mail=%o)(c=%C)(s=%S)(dn=%D)(pct=100%%))', ctx),
    ).toEqual({
      ok: true,
      value:
        '(|(&(uid=pilar)(dom=airius.com))(mail=pilar@airius.com)(c=192.0.2.7)(s=198.51.100.1)' +
        '(dn=cn=Pilar Lorca,ou=pilar,o=airius.com)(pct=100%))',
    });
  });

  it('expands absent values to nothing', () => {
    expect(
      expandSearchFormat('(&(uid=%U)(dom=%V))', { user: 'u', canonical: 'u', original: 'u' }),
    ).toEqual({
      ok: true,
      value: '(&(uid=u)(dom=))',
    });
  });

  it('cannot be steered by hostile user names (RFC 4515)', () => {
    const hostile = (name: string) =>
      expandSearchFormat('(uid=%s)', { user: name, canonical: name, original: name });
    expect(hostile('*)(uid=*')).toEqual({ ok: true, value: '(uid=\\2a\\29\\28uid=\\2a)' });
    expect(hostile('a\\29')).toEqual({ ok: true, value: '(uid=a\\5c29)' });
    expect(hostile('a\0b')).toEqual({ ok: true, value: '(uid=a\\00b)' });
    expect(hostile('*')).toEqual({ ok: true, value: '(uid=\\2a)' });
    expect(hostile('%s')).toEqual({ ok: true, value: '(uid=%s)' });
    expect(hostile('Jürgen')).toEqual({ ok: true, value: '(uid=Jürgen)' });
  });
});

describe('validateSearchFormat', () => {
  it('accepts known escapes and balanced filters', () => {
    expect(validateSearchFormat('(uid=%s)').ok).toBe(true);
    expect(validateSearchFormat('(&(objectClass=mailRecipient)(|(uid=%U)(mail=%o)))').ok).toBe(
      true,
    );
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
    const r = validateSearchFormat(format);
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

describe('searchContextFor', () => {
  it('splits at the last delimiter and joins with the canonical one', () => {
    expect(
      searchContextFor({ typed: 'a@b@airius.com', virtualDomainDelim: '@%', canonicalDelim: '+' }),
    ).toEqual({
      user: 'a@b',
      domain: 'airius.com',
      canonical: 'a@b+airius.com',
      original: 'a@b@airius.com',
    });
    expect(
      searchContextFor({ typed: 'x%dom', virtualDomainDelim: '@%', canonicalDelim: '+' }).canonical,
    ).toBe('x+dom');
  });

  it("uses the vdmap's VDomain when the user typed none", () => {
    expect(
      searchContextFor({
        typed: 'pilar',
        virtualDomainDelim: '@',
        canonicalDelim: '+',
        vdomain: 'airius.com',
        clientIp: '192.0.2.1',
      }),
    ).toEqual({
      user: 'pilar',
      domain: 'airius.com',
      canonical: 'pilar+airius.com',
      original: 'pilar',
      clientIp: '192.0.2.1',
    });
    expect(
      searchContextFor({ typed: 'pilar', virtualDomainDelim: '@', canonicalDelim: '+' }),
    ).toEqual({
      user: 'pilar',
      canonical: 'pilar',
      original: 'pilar',
    });
  });
});
