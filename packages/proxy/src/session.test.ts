import { describe, expect, it } from 'vitest';
import { MAX_BAD_COMMANDS, MAX_COMMANDS_BEFORE_LOGIN, MAX_FAILED_LOGINS } from './limits.js';
import { recordingLog } from './test-support/recordingLog.js';
import { RefusalCounts, logLoginOutcome, readSaslResponse } from './session.js';

describe('RefusalCounts', () => {
  it('ends the session at MAX_BAD_COMMANDS invalid commands in a row, and logs it once', () => {
    const { log, records } = recordingLog();
    const counts = new RefusalCounts(log);
    for (let i = 1; i < MAX_BAD_COMMANDS; i++) expect(counts.badCommand()).toBe(false);
    counts.commandAccepted(); // a valid command starts the run again
    for (let i = 1; i < MAX_BAD_COMMANDS; i++) expect(counts.badCommand()).toBe(false);
    expect(records).toEqual([]);
    expect(counts.badCommand()).toBe(true);
    expect(records.map((r) => r.msg)).toEqual(['too many invalid commands, closing']);
  });

  it('counts every command, valid or not, and ends the session at one past the limit', () => {
    const { log, records } = recordingLog();
    const counts = new RefusalCounts(log);
    for (let i = 0; i < MAX_COMMANDS_BEFORE_LOGIN; i++) {
      expect(counts.command()).toBe(false);
      counts.commandAccepted();
    }
    expect(records).toEqual([]);
    expect(counts.command()).toBe(true);
    expect(records.map((r) => r.msg)).toEqual(['too many commands before login, closing']);
  });

  it('counts failed logins for the whole session, whatever commands came between', () => {
    const { log, records } = recordingLog();
    const counts = new RefusalCounts(log);
    for (let i = 1; i < MAX_FAILED_LOGINS; i++) {
      expect(counts.failedLogin()).toBe(false);
      counts.commandAccepted();
    }
    expect(counts.failedLogin()).toBe(true);
    expect(records.map((r) => r.msg)).toEqual(['too many failed logins, closing']);
  });
});

describe('logLoginOutcome', () => {
  it('adds the session’s own fields only when no store was reachable', () => {
    const { log, records } = recordingLog();
    const ctx = { log, clientIp: '192.0.2.1' };
    logLoginOutcome(ctx, 'ann', { kind: 'stores-down', detail: 'refused' }, { spoof: true });
    logLoginOutcome(ctx, 'ann', { kind: 'unknown-user', reason: 'no entry' }, { spoof: true });
    expect(records).toEqual([
      {
        level: 'session',
        msg: 'login failed: no store reachable',
        fields: { user: 'ann', error: 'refused', spoof: true },
      },
      {
        level: 'session',
        msg: 'login failed: unknown user',
        fields: { user: 'ann', reason: 'no entry', client: '192.0.2.1' },
      },
    ]);
  });
});

describe('readSaslResponse', () => {
  it('decodes the response and logs only its length', () => {
    const { log, records } = recordingLog();
    const line = Buffer.from(Buffer.from('\0ann\0secret').toString('base64'));
    const decoded = readSaslResponse(log, line);
    expect(decoded.ok && decoded.value !== 'cancel' && decoded.value.toString()).toBe(
      '\0ann\0secret',
    );
    expect(records).toEqual([
      { level: 'trace', msg: 'C: <SASL response redacted>', fields: { bytes: line.length } },
    ]);
    expect(readSaslResponse(log, Buffer.from('*'))).toEqual({ ok: true, value: 'cancel' });
  });
});
