import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../test-support/tempDirs.js';
import { MAX_SPOOF_MESSAGE_BYTES } from '../limits.js';
import {
  SpoofInbox,
  dotStuff,
  loadSpoofMessage,
  parseSpoofMessage,
  rfc5322Date,
  spoofWarnings,
  userAddress,
} from './spoof.js';

const HEADER =
  'From: Postmaster <p@mmp.test>\nTo: users@mmp.test\nDate: Mon, 01 Jan 2024 00:00:00 +0000\nSubject: down';
/** A session of alice's whose stores were found down at noon, on host mx.mmp.test. */
const SESSION = { outage: new Date(2026, 11, 2, 12, 0, 5), user: 'alice', host: 'mx.mmp.test' };
const file = (text: string): Buffer => Buffer.from(text, 'latin1');

function parsed(text: string) {
  const r = parseSpoofMessage(file(text));
  if (!r.ok) throw new Error(r.error);
  return r.value;
}

describe('parseSpoofMessage', () => {
  it('takes the lines before the final "." line, with CRLF line ends', () => {
    const m = parsed(`${HEADER}\n\nBody\n.\n`);
    expect(m.bytes.toString()).toBe(`${HEADER.replaceAll('\n', '\r\n')}\r\n\r\nBody\r\n`);
    expect(m.headerEnd).toBe(4);
    expect(m.lines).toHaveLength(6);
  });

  it('accepts CRLF files, no line end after the dot, folded headers, and no body', () => {
    expect(parsed(`${HEADER.replaceAll('\n', '\r\n')}\r\n\r\nBody\r\n.`).bytes.toString()).toBe(
      `${HEADER.replaceAll('\n', '\r\n')}\r\n\r\nBody\r\n`,
    );
    expect(parsed(`${HEADER}\n  folded\n.\n`).headerEnd).toBe(5);
  });

  it('gives the same unique-id for the same message and another for another', () => {
    const a = parsed(`${HEADER}\n\nA\n.\n`);
    expect(parsed(`${HEADER}\r\n\r\nA\r\n.\r\n`.replaceAll('\r\n', '\n')).uid).toBe(a.uid);
    expect(parsed(`${HEADER}\n\nB\n.\n`).uid).not.toBe(a.uid);
    expect(a.uid).toMatch(/^mmp-spoof-[0-9a-f]{32}$/);
  });

  it('refuses unusable files with the reason', () => {
    const cases: [string, RegExp][] = [
      ['', /empty/],
      [`${HEADER}\n\nBody\n`, /last line must hold only "\."/],
      [`${HEADER}\n\nBody\n.\nmore\n`, /last line must hold only "\."/],
      ['.\n', /no message before/],
      [`\n\nBody\n.\n`, /must start with header fields/],
      [`${HEADER}\nnot a header\n\nBody\n.\n`, /line 5: not a header field/],
      [` folded first\n${HEADER}\n.\n`, /continuation line cannot come first/],
      [`${HEADER}\n\nNUL\0here\n.\n`, /NUL/],
      [`${HEADER}\n\nbare\rCR\n.\n`, /line 6: a CR without LF/],
      [`${HEADER}\n\n${'x'.repeat(999)}\n.\n`, /line 6 is longer than 998/],
    ];
    for (const [text, message] of cases) {
      const r = parseSpoofMessage(file(text));
      expect(r.ok, text).toBe(false);
      if (!r.ok) expect(r.error).toMatch(message);
    }
  });
});

describe('loadSpoofMessage', () => {
  it('reads a good file and explains a missing, a directory or an oversized one', async () => {
    const dir = await tempDir('mmp-spoof-');
    const good = join(dir, 'good');
    await writeFile(good, `${HEADER}\n\nBody\n.\n`);
    expect(loadSpoofMessage(good).ok).toBe(true);
    expect(loadSpoofMessage(join(dir, 'missing'))).toEqual({
      ok: false,
      error: 'cannot read it: ENOENT',
    });
    expect(loadSpoofMessage(dir)).toEqual({ ok: false, error: 'not a regular file' });
    const big = join(dir, 'big');
    await writeFile(big, Buffer.alloc(MAX_SPOOF_MESSAGE_BYTES + 1, 0x41));
    const r = loadSpoofMessage(big);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(/at most 1048576 are accepted/);
  });
});

describe('dotStuff (RFC 1939 §3)', () => {
  it('doubles a leading dot and ends with the termination line', () => {
    const lines = ['a', '.', '..b', ' .c', ''].map((l) => Buffer.from(l));
    expect(dotStuff(lines).toString()).toBe('a\r\n..\r\n...b\r\n .c\r\n\r\n.\r\n');
  });
});

describe('SpoofInbox', () => {
  const message = parsed(`${HEADER}\n\nLine 1\n.dot\nLine 3\n.\n`);
  const size = message.bytes.length;

  it('STAT, LIST and UIDL show one message', () => {
    const inbox = new SpoofInbox(message, SESSION);
    expect(inbox.stat()).toEqual({ kind: 'ok', line: `1 ${size}` });
    expect(inbox.list(undefined)).toEqual({
      kind: 'ok',
      line: '1 messages',
      body: Buffer.from(`1 ${size}\r\n.\r\n`),
    });
    expect(inbox.list(1)).toEqual({ kind: 'ok', line: `1 ${size}` });
    expect(inbox.list(2)).toEqual({ kind: 'err', line: 'no such message' });
    expect(inbox.uidl(1)).toEqual({ kind: 'ok', line: `1 ${message.uid}` });
    expect(inbox.uidl(undefined)).toMatchObject({ body: Buffer.from(`1 ${message.uid}\r\n.\r\n`) });
  });

  it('RETR gives the message dot-stuffed; its size is the unstuffed size', () => {
    const r = new SpoofInbox(message, SESSION).retr(1);
    expect(r).toMatchObject({ kind: 'ok', line: `${size} octets` });
    if (r.kind === 'ok') {
      expect(r.body?.toString()).toBe(
        `${HEADER.replaceAll('\n', '\r\n')}\r\n\r\nLine 1\r\n..dot\r\nLine 3\r\n.\r\n`,
      );
    }
  });

  it('TOP gives the header, the blank line and n body lines', () => {
    const inbox = new SpoofInbox(message, SESSION);
    const head = `${HEADER.replaceAll('\n', '\r\n')}\r\n\r\n`;
    expect(inbox.top(1, 0)).toMatchObject({ body: Buffer.from(`${head}.\r\n`) });
    expect(inbox.top(1, 2)).toMatchObject({ body: Buffer.from(`${head}Line 1\r\n..dot\r\n.\r\n`) });
    expect(inbox.top(1, 99)).toMatchObject({
      body: Buffer.from(`${head}Line 1\r\n..dot\r\nLine 3\r\n.\r\n`),
    });
    expect(inbox.top(2, 1)).toEqual({ kind: 'err', line: 'no such message' });
    const headerOnly = new SpoofInbox(parsed(`${HEADER}\n.\n`), SESSION);
    expect(headerOnly.top(1, 5)).toMatchObject({ body: Buffer.from(`${head}.\r\n`) });
  });

  it('DELE marks the message for the session only; RSET unmarks it', () => {
    const inbox = new SpoofInbox(message, SESSION);
    expect(inbox.dele(1)).toEqual({ kind: 'ok', line: 'message 1 deleted' });
    expect(inbox.stat()).toEqual({ kind: 'ok', line: '0 0' });
    expect(inbox.list(undefined)).toMatchObject({ line: '0 messages', body: Buffer.from('.\r\n') });
    expect(inbox.retr(1)).toEqual({ kind: 'err', line: 'message 1 already deleted' });
    expect(inbox.dele(1)).toEqual({ kind: 'err', line: 'message 1 already deleted' });
    expect(inbox.rset()).toEqual({ kind: 'ok', line: `maildrop has 1 message (${size} octets)` });
    expect(inbox.stat()).toEqual({ kind: 'ok', line: `1 ${size}` });
    // Another session's inbox never saw the DELE.
    inbox.dele(1);
    expect(new SpoofInbox(message, SESSION).stat()).toEqual({ kind: 'ok', line: `1 ${size}` });
  });
});

describe('a message without Date:, From: or To: (issue 17)', () => {
  const bare = parsed('Subject: Your mailbox is unavailable\n\nTry again later.\n.\n');

  it('is accepted, with a start-up warning per field a session fills in', () => {
    expect(bare.missing).toEqual(['Date', 'From', 'To']);
    expect(spoofWarnings(bare)).toEqual([
      'the message has no Date: field; each session is served one with the date each session found its stores down',
      expect.stringMatching(
        /^the message has no From: field; each session is served one with postmaster@\S+$/,
      ),
      "the message has no To: field; each session is served one with the user's address",
    ]);
    expect(spoofWarnings(parsed(`${HEADER}\n\nb\n.\n`))).toEqual([]);
  });

  it("is served with the outage's date, the host's postmaster and the user's address", () => {
    const inbox = new SpoofInbox(bare, SESSION);
    const head =
      `Date: ${rfc5322Date(SESSION.outage)}\r\nFrom: postmaster@mx.mmp.test\r\n` +
      'To: alice@mx.mmp.test\r\nSubject: Your mailbox is unavailable\r\n\r\n';
    const r = inbox.retr(1);
    expect(r).toMatchObject({
      kind: 'ok',
      line: `${head.length + 'Try again later.\r\n'.length} octets`,
    });
    if (r.kind === 'ok') expect(r.body?.toString()).toBe(`${head}Try again later.\r\n.\r\n`);
    expect(inbox.top(1, 0)).toMatchObject({ body: Buffer.from(`${head}.\r\n`) });
    // The unique-id is the file's: the same whatever the session fills in.
    expect(inbox.uidl(1)).toEqual({ kind: 'ok', line: `1 ${bare.uid}` });
    expect(new SpoofInbox(bare, { ...SESSION, user: 'bob@one.example' }).uidl(1)).toEqual(
      inbox.uidl(1),
    );
  });

  it('keeps the fields the file has and fills in only the others', () => {
    const dated = parsed('Date: Mon, 01 Jan 2024 00:00:00 +0000\nSubject: s\n\nb\n.\n');
    const r = new SpoofInbox(dated, SESSION).top(1, 0);
    expect(r).toMatchObject({
      body: Buffer.from(
        'From: postmaster@mx.mmp.test\r\nTo: alice@mx.mmp.test\r\n' +
          'Date: Mon, 01 Jan 2024 00:00:00 +0000\r\nSubject: s\r\n\r\n.\r\n',
      ),
    });
  });

  it('writes an RFC 5322 date in local time with its offset', () => {
    expect(rfc5322Date(new Date(2026, 11, 2, 12, 0, 5))).toMatch(
      /^Wed, 02 Dec 2026 12:00:05 [+-]\d{4}$/,
    );
  });

  it("takes the user's address as typed, or at this host, and never writes a name that is none", () => {
    expect(userAddress('alice', 'mx.mmp.test')).toBe('alice@mx.mmp.test');
    expect(userAddress('alice@one.example', 'mx.mmp.test')).toBe('alice@one.example');
    // A client chooses the name: no header line of its own making can get into the message.
    for (const hostile of ['a\r\nBcc: x@y', 'sp ace', 'ünï', '"q"@x', 'a@', '@b', ''])
      expect(userAddress(hostile, 'mx.mmp.test')).toBe('undisclosed-recipients:;');
  });
});
