import { describe, expect, it } from 'vitest';
import { answerIn, classifyFailure } from './outcome.js';

describe('answerIn', () => {
  it('takes the server line out of the load generator’s error texts', () => {
    expect(answerIn('LOGIN: a NO [UNAVAILABLE] User directory temporarily unavailable')).toBe(
      'a NO [UNAVAILABLE] User directory temporarily unavailable',
    );
    expect(answerIn('bad greeting: * BYE Too many connections')).toBe('* BYE Too many connections');
    expect(answerIn('PASS: -ERR [SYS/TEMP] try later')).toBe('-ERR [SYS/TEMP] try later');
    expect(answerIn('connection closed')).toBeUndefined();
    expect(answerIn('timeout waiting after "a LOGIN"')).toBeUndefined();
  });
});

describe('classifyFailure', () => {
  it('tells temporary failures from authentication failures by the answer', () => {
    expect(classifyFailure('login', 'a NO [UNAVAILABLE] try again later', '')).toBe('temporary');
    expect(classifyFailure('login', 'a NO [ALERT] server temporarily out of service', '')).toBe(
      'temporary',
    );
    expect(classifyFailure('login', 'a NO [AUTHENTICATIONFAILED] Authentication failed.', '')).toBe(
      'auth',
    );
  });
  it('calls connection trouble by what happened and where', () => {
    expect(classifyFailure('connect', undefined, 'connect ECONNREFUSED 127.0.0.1:143')).toBe(
      'refused',
    );
    expect(classifyFailure('connect', undefined, 'connect timeout 127.0.0.1:143')).toBe('timeout');
    expect(classifyFailure('greeting', '* BYE full', 'bad greeting: * BYE full')).toBe('refused');
    expect(classifyFailure('greeting', undefined, 'connection closed')).toBe('closed');
    expect(classifyFailure('login', undefined, 'read ECONNRESET')).toBe('closed');
    expect(classifyFailure('login', undefined, 'timeout waiting after "a LOGIN "')).toBe('timeout');
  });
  it('counts anything after the login as a dropped session', () => {
    expect(classifyFailure('session', 'c NO nope', 'FETCH: c NO nope')).toBe('dropped');
    expect(classifyFailure('session', undefined, 'connection closed')).toBe('dropped');
  });
});
