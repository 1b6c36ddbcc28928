import { describe, expect, it } from 'vitest';
import { type MailDirectory, authAnswer, decodeAuthHeader, parseMailHost } from './authHttp.js';

const ports = { imap: 10143, pop3: 10110 };

function fakeDirectory(entries: Record<string, string[]>): MailDirectory & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    async mailHosts(uid) {
      asked.push(uid);
      return entries[uid] ?? [];
    },
  };
}

describe('authAnswer', () => {
  const directory = fakeDirectory({
    alice: ['127.0.0.2'],
    dual: ['127.0.0.2', '127.0.0.3'],
    ported: ['127.0.0.3:2143'],
    named: ['store.example'],
    'alice+virt.example': ['127.0.0.3'],
  });

  it('answers OK with the first mailHost and the protocol port', async () => {
    expect(
      await authAnswer({ 'auth-user': 'alice', 'auth-protocol': 'imap' }, directory, ports),
    ).toEqual({
      headers: { 'Auth-Status': 'OK', 'Auth-Server': '127.0.0.2', 'Auth-Port': '10143' },
    });
    expect(
      (await authAnswer({ 'auth-user': 'dual', 'auth-protocol': 'pop3' }, directory, ports))
        .headers,
    ).toEqual({ 'Auth-Status': 'OK', 'Auth-Server': '127.0.0.2', 'Auth-Port': '10110' });
  });

  it('uses a port carried by the mailHost value', async () => {
    const a = await authAnswer(
      { 'auth-user': 'ported', 'auth-protocol': 'imap' },
      directory,
      ports,
    );
    expect(a.headers['Auth-Port']).toBe('2143');
  });

  it('decodes the escaped user name', async () => {
    const a = await authAnswer(
      { 'auth-user': 'alice%2Bvirt.example', 'auth-protocol': 'imap' },
      directory,
      ports,
    );
    expect(a.headers['Auth-Server']).toBe('127.0.0.3');
  });

  it('refuses unknown users, host names (nginx needs an address) and other protocols', async () => {
    for (const headers of [
      { 'auth-user': 'nobody', 'auth-protocol': 'imap' },
      { 'auth-user': 'named', 'auth-protocol': 'imap' },
      { 'auth-user': 'alice', 'auth-protocol': 'smtp' },
      { 'auth-protocol': 'imap' },
    ]) {
      expect((await authAnswer(headers, directory, ports)).headers).toEqual({
        'Auth-Status': 'Invalid login or password',
      });
    }
  });

  it('answers a temporary failure when the directory fails', async () => {
    const broken: MailDirectory = {
      mailHosts: () => Promise.reject(new Error('down')),
    };
    const a = await authAnswer({ 'auth-user': 'alice', 'auth-protocol': 'imap' }, broken, ports);
    expect(a.headers['Auth-Status']).toMatch(/^Temporary/);
  });
});

describe('helpers', () => {
  it('parseMailHost accepts addresses with and without a port', () => {
    expect(parseMailHost('127.0.0.2')).toEqual({ host: '127.0.0.2' });
    expect(parseMailHost('127.0.0.2:143')).toEqual({ host: '127.0.0.2', port: 143 });
    expect(parseMailHost('[::1]:143')).toEqual({ host: '::1', port: 143 });
    expect(parseMailHost('mail.example')).toBeUndefined();
  });
  it('decodeAuthHeader leaves malformed escapes alone', () => {
    expect(decodeAuthHeader('a%20b')).toBe('a b');
    expect(decodeAuthHeader('100%')).toBe('100%');
  });
});
