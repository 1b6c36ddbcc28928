import { describe, expect, it } from 'vitest';
import { cipherList } from './ciphers.js';
import { x509NameToDn } from './clientTls.js';
import { certificateNames, nameMatches } from './serverTls.js';
import type { X509Certificate } from 'node:crypto';

describe('SSLCipherSpecs', () => {
  it('all means Node defaults', () => {
    expect(cipherList('all')).toEqual({ ok: true, value: undefined });
    expect(cipherList(undefined)).toEqual({ ok: true, value: undefined });
  });

  it('modern OpenSSL names pass; unknown names are errors', () => {
    expect(cipherList('ECDHE-RSA-AES128-GCM-SHA256:TLS_AES_128_GCM_SHA256')).toEqual({
      ok: true,
      value: 'ECDHE-RSA-AES128-GCM-SHA256:TLS_AES_128_GCM_SHA256',
    });
    const unknown = cipherList('ECDHE-RSA-AES128-GCM-SHA256:NOT-A-CIPHER');
    expect(unknown.ok ? '' : unknown.error).toContain('NOT-A-CIPHER is not a cipher OpenSSL knows');
  });

  it.each([
    ['SSL_RSA_WITH_RC4_128_MD5', 'RC4'],
    ['SSL_RSA_FIPS_WITH_3DES_EDE_CBC_SHA', '3DES'],
    ['SSL_RSA_WITH_3DES_EDE_CBC_SHA', '3DES'],
    ['SSL_RSA_FIPS_WITH_DES_CBC_SHA', 'DES has a 56-bit key'],
    ['SSL_RSA_WITH_DES_CBC_SHA', 'DES has a 56-bit key'],
    ['SSL_RSA_EXPORT_WITH_RC4_40_MD5', 'export'],
    ['SSL_RSA_EXPORT_WITH_RC2_CBC_40_MD5', 'export'],
    ['SSL_RSA_WITH_NULL_MD5', 'NULL'],
    ['DES-CBC3-SHA', '3DES'],
    ['EXP-RC4-MD5', 'export'],
  ])('the guide cipher %s is refused (%s)', (name, reason) => {
    const r = cipherList(`AES128-GCM-SHA256:${name}`);
    expect(r.ok).toBe(false);
    expect(r.ok ? '' : r.error).toContain(`${name} is refused`);
    expect(r.ok ? '' : r.error).toContain(reason);
  });
});

describe('certificate names', () => {
  it('wildcards stand for one label (RFC 6125 §6.4.3)', () => {
    expect(nameMatches('*.example.com', 'mail.example.com')).toBe(true);
    expect(nameMatches('*.example.com', 'a.b.example.com')).toBe(false);
    expect(nameMatches('*.example.com', 'example.com')).toBe(false);
    expect(nameMatches('mail.example.com', 'MAIL.example.com')).toBe(true);
  });

  it('a Node certificate name becomes an RFC 4514 string, most specific first', () => {
    expect(x509NameToDn('O=mmp.test\nOU=alice\nCN=Alice, Example')).toBe(
      'CN=Alice\\, Example,OU=alice,O=mmp.test',
    );
  });

  it('certificateNames reads SAN DNS entries', () => {
    const fake = {
      subjectAltName: 'DNS:a.example, IP Address:127.0.0.1, DNS:*.b.example',
      subject: 'CN=x',
    };
    expect(certificateNames(fake as unknown as X509Certificate)).toEqual([
      'a.example',
      '*.b.example',
    ]);
    const cnOnly = { subjectAltName: undefined, subject: 'O=o\nCN=Host.Example' };
    expect(certificateNames(cnOnly as unknown as X509Certificate)).toEqual(['host.example']);
  });
});
