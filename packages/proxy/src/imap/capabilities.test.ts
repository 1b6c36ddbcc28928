import { describe, expect, it } from 'vitest';
import { sessionSecurity } from '../tls/security.js';
import { imapCapabilityText } from './capabilities.js';

const CONFIGURED = 'IMAP4rev1 LITERAL+ SASL-IR ID AUTH=PLAIN AUTH=LOGIN';
const TLS = { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384' };
const VERIFIED = { ...TLS, peer: { verified: true, subject: 'CN=a', issuer: 'CN=ca' } };

describe('CAPABILITY per connection', () => {
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

  it('OAuth2Mechanisms: AUTH=XOAUTH2 AUTH=OAUTHBEARER where plaintext logins are allowed, never configured', () => {
    const bearer = ['XOAUTH2', 'OAUTHBEARER'] as const;
    expect(imapCapabilityText(CONFIGURED, sessionSecurity(policy, TLS), bearer)).toBe(
      `${CONFIGURED} AUTH=XOAUTH2 AUTH=OAUTHBEARER`,
    );
    // Before TLS with plaintext refused, a token is as exposed as a password (RFC 7628 §5).
    expect(imapCapabilityText(CONFIGURED, sessionSecurity(policy, undefined), bearer)).toBe(
      'IMAP4rev1 STARTTLS LITERAL+ SASL-IR ID LOGINDISABLED',
    );
    // Listed in Capability but not in OAuth2Mechanisms: not advertised (the stores may refuse it).
    expect(imapCapabilityText(`${CONFIGURED} AUTH=XOAUTH2`, sessionSecurity(policy, TLS), [])).toBe(
      CONFIGURED,
    );
  });
});
