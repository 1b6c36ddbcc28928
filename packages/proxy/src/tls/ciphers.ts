/**
 * SSLCipherSpecs (guide, Table 13.3): `all`, or a colon-separated list. The guide's list is made of
 * 1999's ciphers, every one of which is broken today; they are refused with the reason, so that an
 * operator who copies an old configuration learns why instead of getting a weaker server.
 * Otherwise the names are OpenSSL's (`ECDHE-RSA-AES128-GCM-SHA256`, TLS 1.3 `TLS_AES_128_GCM_SHA256`);
 * each is checked against the OpenSSL Node was built with, so a typo is an error at start-up, not
 * a cipher silently missing.
 */

import { createSecureContext } from 'node:tls';
import { type Result, err, ok } from '@mmp/config';

interface Weakness {
  test: RegExp;
  reason: string;
}

/** Checked in order: the first match gives the reason. */
const WEAK: readonly Weakness[] = [
  {
    test: /NULL/i,
    reason: 'NULL ciphers do not encrypt at all',
  },
  {
    test: /EXPORT|(^|[-_])EXP[-_]/i,
    reason: 'export ciphers use 40- or 56-bit keys and are broken (FREAK, Logjam)',
  },
  {
    test: /RC4/i,
    reason: 'RC4 is broken; RFC 7465 forbids it in TLS',
  },
  {
    test: /RC2/i,
    reason: 'RC2 is an export-grade 40-bit cipher',
  },
  {
    test: /3DES|DES[-_]CBC3|DES[-_]EDE/i,
    reason: '3DES has 64-bit blocks (Sweet32, CVE-2016-2183); RFC 8996 era TLS no longer uses it',
  },
  {
    test: /(^|[-_])DES([-_]|$)/i,
    reason: 'DES has a 56-bit key, found by brute force in hours',
  },
  {
    test: /MD5/i,
    reason: 'MD5 is broken as a MAC/hash for TLS',
  },
];

/** The ciphers option for Node's TLS: undefined for `all` (Node's secure defaults). */
export function cipherList(spec: string | undefined): Result<string | undefined, string> {
  const text = (spec ?? '').trim();
  if (text === '' || text.toLowerCase() === 'all') return ok(undefined);
  const names = text
    .split(':')
    .map((n) => n.trim())
    .filter((n) => n !== '');
  for (const name of names) {
    const weak = WEAK.find((w) => w.test.test(name));
    if (weak !== undefined) {
      return err(`SSLCipherSpecs: ${name} is refused: ${weak.reason}; use "all" or modern names`);
    }
  }
  for (const name of names) {
    // OpenSSL ignores unknown names in a list; alone, an unknown name fails ("no cipher match").
    if (name.startsWith('!') || name.startsWith('-') || name.startsWith('+')) continue;
    try {
      createSecureContext({ ciphers: name });
    } catch {
      return err(`SSLCipherSpecs: ${name} is not a cipher OpenSSL knows`);
    }
  }
  return ok(names.join(':'));
}
