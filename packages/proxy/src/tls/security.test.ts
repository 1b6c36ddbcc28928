import { describe, expect, it } from 'vitest';
import { cipherList } from './ciphers.js';
import { x509NameToDn } from './clientTls.js';
import { certificateNames, nameMatches } from './serverTls.js';
import {
  imapCapabilityText,
  isPop3Plaintext,
  pop3AuthorizationCapabilities,
  sessionSecurity,
} from './security.js';
import type { X509Certificate } from 'node:crypto';

const CONFIGURED = 'IMAP4rev1 LITERAL+ SASL-IR ID AUTH=PLAIN AUTH=LOGIN';
const TLS = { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384' };
const VERIFIED = { ...TLS, peer: { verified: true, subject: 'CN=a', issuer: 'CN=ca' } };
const POP3_BASE = ['USER', 'SASL PLAIN', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING'];

describe('capabilities per connection', () => {
  const policy = {
    startTlsConfigured: true,
    restrictPlainPasswords: true,
    certLoginConfigured: true,
  };

  it('IMAP before TLS: STARTTLS second, LOGINDISABLED, no plaintext mechanisms', () => {
    const s = sessionSecurity(policy, undefined);
    expect(imapCapabilityText(CONFIGURED, s)).toBe(
      'IMAP4rev1 STARTTLS LITERAL+ SASL-IR ID LOGINDISABLED',
    );
  });

  it('IMAP after TLS: no STARTTLS nor LOGINDISABLED; EXTERNAL only with a verified certificate', () => {
    expect(imapCapabilityText(CONFIGURED, sessionSecurity(policy, TLS))).toBe(CONFIGURED);
    expect(imapCapabilityText(CONFIGURED, sessionSecurity(policy, VERIFIED))).toBe(
      `${CONFIGURED} AUTH=EXTERNAL`,
    );
    const unverified = { ...TLS, peer: { ...VERIFIED.peer, verified: false } };
    expect(imapCapabilityText(CONFIGURED, sessionSecurity(policy, unverified))).toBe(CONFIGURED);
  });

  it('a configured STARTTLS or LOGINDISABLED is ignored: the proxy decides', () => {
    const plain = sessionSecurity(
      { startTlsConfigured: false, restrictPlainPasswords: false, certLoginConfigured: false },
      undefined,
    );
    expect(imapCapabilityText(`${CONFIGURED} STARTTLS LOGINDISABLED`, plain)).toBe(CONFIGURED);
  });

  it('POP3 CAPA: STLS before TLS, no USER nor PLAIN when restricted, EXTERNAL with a certificate', () => {
    expect(pop3AuthorizationCapabilities(POP3_BASE, sessionSecurity(policy, undefined))).toEqual([
      'RESP-CODES',
      'AUTH-RESP-CODE',
      'PIPELINING',
      'STLS',
    ]);
    expect(pop3AuthorizationCapabilities(POP3_BASE, sessionSecurity(policy, VERIFIED))).toEqual([
      'USER',
      'SASL PLAIN EXTERNAL',
      'RESP-CODES',
      'AUTH-RESP-CODE',
      'PIPELINING',
    ]);
  });

  it('POP3 plaintext commands', () => {
    expect(isPop3Plaintext('USER', Buffer.from('alice'))).toBe(true);
    expect(isPop3Plaintext('PASS', Buffer.from('x'))).toBe(true);
    expect(isPop3Plaintext('AUTH', Buffer.from('plain AGFsaWNl'))).toBe(true);
    expect(isPop3Plaintext('AUTH', Buffer.from('EXTERNAL ='))).toBe(false);
    expect(isPop3Plaintext('CAPA', undefined)).toBe(false);
  });
});

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
