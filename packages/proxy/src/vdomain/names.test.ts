import { describe, expect, it } from 'vitest';
import { expandSearch, parseCommandLine, parseSearchFormat, resolveConfig } from '@mmp/config';
import { type UserNameRules, mapUserName, userNameRulesFrom } from './names.js';

const at: UserNameRules = { delimiters: '@', canonicalDelim: '+' };

function mapped(
  typed: string,
  rules: UserNameRules,
): { user: string; domain?: string; canonical: string } {
  const r = mapUserName(typed, rules);
  if (!r.ok) throw new Error(r.error);
  const { user, domain, canonical } = r.value;
  return domain === undefined ? { user, canonical } : { user, domain, canonical };
}

describe('mapUserName', () => {
  it('splits at the delimiter and joins with the canonical one', () => {
    expect(mapped('alice@virt.example', at)).toEqual({
      user: 'alice',
      domain: 'virt.example',
      canonical: 'alice+virt.example',
    });
  });

  it('searches from the end: the last delimiter of any listed character wins', () => {
    const rules = { ...at, delimiters: '@%' };
    expect(mapped('bob%dom@x', rules)).toEqual({
      user: 'bob%dom',
      domain: 'x',
      canonical: 'bob%dom+x',
    });
    expect(mapped('bob@dom%x', rules)).toEqual({
      user: 'bob@dom',
      domain: 'x',
      canonical: 'bob@dom+x',
    });
    expect(mapped('carol%virt.example', rules).canonical).toBe('carol+virt.example');
  });

  it('uses CanonicalVirtualDomainDelim towards the directory and the store', () => {
    expect(mapped('alice@virt.example', { ...at, canonicalDelim: '#' }).canonical).toBe(
      'alice#virt.example',
    );
  });

  it('appends VDomain to an unqualified name, else DefaultDomain, else nothing', () => {
    expect(mapped('alice', { ...at, vdomain: 'one.example' }).canonical).toBe('alice+one.example');
    expect(mapped('alice', { ...at, defaultDomain: 'd.example' }).canonical).toBe(
      'alice+d.example',
    );
    expect(
      mapped('alice', { ...at, vdomain: 'one.example', defaultDomain: 'd.example' }).canonical,
    ).toBe('alice+one.example');
    expect(mapped('alice', at)).toEqual({ user: 'alice', canonical: 'alice' });
  });

  it('accepts a typed domain equal to VDomain in any case, and refuses another one', () => {
    const one = { ...at, vdomain: 'one.example' };
    expect(mapped('alice@ONE.Example', one).canonical).toBe('alice+one.example');
    const r = mapUserName('alice@two.example', one);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(/not served on this address/);
  });

  it('without VDomain, a typed domain wins over DefaultDomain and is lower-cased', () => {
    expect(mapped('Alice@Other.Example', { ...at, defaultDomain: 'd.example' })).toEqual({
      user: 'Alice',
      domain: 'other.example',
      canonical: 'Alice+other.example',
    });
  });

  it('refuses an empty user or domain part', () => {
    expect(mapUserName('@one.example', at).ok).toBe(false);
    expect(mapUserName('alice@', at).ok).toBe(false);
    expect(mapUserName('alice@', { ...at, vdomain: 'one.example' }).ok).toBe(false);
  });

  it('handles characters beyond the BMP as whole characters', () => {
    expect(mapped('ü😀@x', { ...at, delimiters: '@😀' })).toEqual({
      user: 'ü😀',
      domain: 'x',
      canonical: 'ü😀+x',
    });
    expect(mapped('ü😀x', { ...at, delimiters: '😀' }).canonical).toBe('ü+x');
  });

  it('gives the UidSearch escapes their values', () => {
    const r = mapUserName('alice@one.example', at);
    if (!r.ok) throw new Error(r.error);
    const template = parseSearchFormat('(&(uid=%s)(mail=%U@%V)(cn=%o))');
    if (!template.ok) throw new Error(template.error);
    expect(expandSearch(template.value, r.value)).toBe(
      '(&(uid=alice+one.example)(mail=alice@one.example)(cn=alice@one.example))',
    );
  });
});

describe('userNameRulesFrom', () => {
  function values(argv: string[], env: Record<string, string> = {}) {
    const cl = parseCommandLine('imap', argv);
    if (!cl.ok) throw new Error('command line');
    const r = resolveConfig({ protocol: 'imap', commandLine: cl.value, env });
    if (!r.ok) throw new Error(JSON.stringify(r.error));
    return r.value.values;
  }

  it('is off without VirtualDomainFile and DefaultDomain: names stay as typed', () => {
    expect(userNameRulesFrom(values([]))).toBeUndefined();
  });

  it('is on with VirtualDomainFile, with the configured delimiters', () => {
    expect(userNameRulesFrom(values(['-vd', '/etc/vdmap', '-vdd', '@%', '-vddc', '#']))).toEqual({
      delimiters: '@%',
      canonicalDelim: '#',
      vdomain: undefined,
      defaultDomain: undefined,
    });
  });

  it('is on with DefaultDomain alone', () => {
    expect(userNameRulesFrom(values([], { DefaultDomain: 'd.example' }))?.defaultDomain).toBe(
      'd.example',
    );
  });
});
