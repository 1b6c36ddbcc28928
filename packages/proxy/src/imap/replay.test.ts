import { describe, expect, it } from 'vitest';
import { takesNonSyncLiterals } from './replay.js';

const greeting = (text: string): Buffer => Buffer.from(text, 'latin1');

describe('non-synchronising literals towards the store (RFC 7888)', () => {
  it('are used when the greeting announces LITERAL+', () => {
    const dovecot = greeting(
      '* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN] Dovecot ready.',
    );
    expect(takesNonSyncLiterals(dovecot, [5, 100_000])).toBe(true);
    expect(takesNonSyncLiterals(greeting('* OK [capability imap4rev1 literal+] hi'), [1])).toBe(
      true,
    );
  });

  it('under LITERAL- only up to 4096 bytes each', () => {
    const g = greeting('* OK [CAPABILITY IMAP4rev1 LITERAL-] ready');
    expect(takesNonSyncLiterals(g, [4096, 12])).toBe(true);
    expect(takesNonSyncLiterals(g, [4097, 12])).toBe(false);
  });

  it('are not used without a CAPABILITY code, or when it lacks both', () => {
    expect(takesNonSyncLiterals(greeting('* OK ready'), [3])).toBe(false);
    expect(takesNonSyncLiterals(greeting('* OK [CAPABILITY IMAP4rev1] LITERAL+ ready'), [3])).toBe(
      false,
    );
    expect(takesNonSyncLiterals(greeting('* OK [CAPABILITY IMAP4rev1 LITERAL++] x'), [3])).toBe(
      false,
    );
  });
});
