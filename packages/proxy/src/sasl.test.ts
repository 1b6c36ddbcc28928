/**
 * The OAuth2 messages (XOAUTH2, OAUTHBEARER RFC 7628): the user name read from them, and every
 * malformed form refused with a reason; the token is never looked at beyond its `Bearer` scheme.
 */

import { describe, expect, it } from 'vitest';
import { bearerRefusal, decodeOauthbearer, decodeXoauth2, startSasl } from './sasl.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

describe('XOAUTH2', () => {
  it('reads user= in any position of the key-value list', () => {
    expect(decodeXoauth2(b('user=alice@one.example\x01auth=Bearer t0k\x01\x01'))).toEqual({
      ok: true,
      value: b('alice@one.example'),
    });
    expect(decodeXoauth2(b('auth=bearer t0k\x01user=bob\x01\x01'))).toEqual({
      ok: true,
      value: b('bob'),
    });
  });

  it('refuses a message that is not user=…^Aauth=Bearer …^A^A', () => {
    for (const m of [
      'user=alice\x01auth=Bearer t0k\x01', // one ^A at the end
      'user=\x01auth=Bearer t0k\x01\x01', // empty user
      'user=alice\x01auth=Basic dXNlcg==\x01\x01', // not a bearer token
      'user=alice\x01auth=Bearer \x01\x01', // empty token
      'auth=Bearer t0k\x01\x01', // no user
      'user=a\x01user=b\x01auth=Bearer t\x01\x01', // twice
      '',
    ])
      expect(decodeXoauth2(b(m)), JSON.stringify(m)).toEqual({
        ok: false,
        error: 'Malformed XOAUTH2 message',
      });
  });
});

describe('OAUTHBEARER (RFC 7628 §3.1)', () => {
  const msg = (header: string): Buffer =>
    b(`${header}\x01host=mail.mmp.test\x01port=143\x01auth=Bearer t0k\x01\x01`);

  it('reads the authorization identity of the GS2 header, unescaping =2C and =3D', () => {
    expect(decodeOauthbearer(msg('n,a=alice,'))).toEqual({ ok: true, value: b('alice') });
    expect(decodeOauthbearer(msg('y,a=o=3Dx=2Cy,'))).toEqual({ ok: true, value: b('o=x,y') });
  });

  it('needs the user name: without a=, the mailbox cannot be found', () => {
    expect(decodeOauthbearer(msg('n,,'))).toEqual({
      ok: false,
      error: 'OAUTHBEARER needs the user name (a=) to find the mailbox',
    });
  });

  it('refuses channel binding, a bad saslname, a missing token or terminator', () => {
    for (const m of [
      msg('p=tls-unique,a=alice,'),
      msg('n,a=al=ice,'),
      b('n,a=alice,\x01host=x\x01\x01'),
      b('n,a=alice,\x01auth=Bearer t0k\x01'),
      b('\x01'), // the client's reply to an error challenge is no login
    ])
      expect(decodeOauthbearer(m)).toEqual({ ok: false, error: 'Malformed OAUTHBEARER message' });
  });
});

describe('the bearer exchange', () => {
  it('gives the user and the message, byte for byte', () => {
    const message = b('n,a=alice,\x01auth=Bearer t0k\x01\x01');
    const exchange = startSasl('OAUTHBEARER');
    expect(exchange.start(undefined)).toEqual({ kind: 'challenge', challenge: Buffer.alloc(0) });
    expect(exchange.next(message)).toEqual({
      kind: 'bearer',
      mechanism: 'OAUTHBEARER',
      user: b('alice'),
      message,
    });
    expect(startSasl('XOAUTH2').start(b('nonsense'))).toEqual({
      kind: 'failed',
      message: 'Malformed XOAUTH2 message',
    });
  });

  it("says a Dovecot store's error challenge for an unknown user (the test bed's transcripts)", () => {
    expect(bearerRefusal('XOAUTH2').toString()).toBe(
      '+ eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwic2NvcGUiOiJtYWlsIn0=',
    );
    expect(bearerRefusal('OAUTHBEARER').toString()).toBe('+ eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0=');
  });
});
