import { describe, expect, it } from 'vitest';
import {
  AdminLimitExceededError,
  BusyError,
  InsufficientAccessError,
  InvalidCredentialsError,
  UnavailableError,
  UnwillingToPerformError,
} from 'ldapts';
import { classifyLdapError, parseMailHost } from './directory.js';

describe('parseMailHost', () => {
  it('reads host, host:port, bracketed and bare IPv6', () => {
    expect(parseMailHost('store.example')).toEqual({ host: 'store.example' });
    expect(parseMailHost(' 127.0.0.2:1143 ')).toEqual({ host: '127.0.0.2', port: 1143 });
    expect(parseMailHost('[::1]:143')).toEqual({ host: '::1', port: 143 });
    expect(parseMailHost('[::1]')).toEqual({ host: '::1' });
    expect(parseMailHost('::1')).toEqual({ host: '::1' });
  });

  it('refuses what is not a host', () => {
    for (const bad of [
      '',
      'a b',
      'host:0',
      'host:65536',
      'host:x',
      ':143',
      '[::1]x',
      'imap://host',
      'u@host',
    ]) {
      expect(parseMailHost(bad), bad).toBeUndefined();
    }
  });
});

describe('classifyLdapError', () => {
  it('busy, unavailable, unwilling and admin limit are temporary; a wrong password is not', () => {
    for (const e of [
      new BusyError(),
      new UnavailableError(),
      new UnwillingToPerformError(),
      new AdminLimitExceededError(),
    ])
      expect(classifyLdapError(e)).toBe('temporary');
    expect(classifyLdapError(new InvalidCredentialsError())).toBe('refused');
    expect(classifyLdapError(new InsufficientAccessError())).toBe('refused');
    expect(classifyLdapError(new Error('BindRequest: Operation timed out'))).toBe('timeout');
    expect(classifyLdapError(new Error('Connection timeout'))).toBe('timeout');
    expect(classifyLdapError(new Error('connect ECONNREFUSED 127.0.0.1:1'))).toBe('lost');
  });
});
