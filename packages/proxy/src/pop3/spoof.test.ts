import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MAX_SPOOF_MESSAGE_BYTES } from '../limits.js';
import { SpoofInbox, dotStuff, loadSpoofMessage, parseSpoofMessage } from './spoof.js';

const HEADER =
  'From: Postmaster <p@mmp.test>\nDate: Mon, 01 Jan 2024 00:00:00 +0000\nSubject: down';
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
    expect(m.headerEnd).toBe(3);
    expect(m.lines).toHaveLength(5);
  });

  it('accepts CRLF files, no line end after the dot, folded headers, and no body', () => {
    expect(parsed(`${HEADER.replaceAll('\n', '\r\n')}\r\n\r\nBody\r\n.`).bytes.toString()).toBe(
      `${HEADER.replaceAll('\n', '\r\n')}\r\n\r\nBody\r\n`,
    );
    expect(parsed(`${HEADER}\n  folded\n.\n`).headerEnd).toBe(4);
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
      [`${HEADER}\nnot a header\n\nBody\n.\n`, /line 4: not a header field/],
      [` folded first\n${HEADER}\n.\n`, /continuation line cannot come first/],
      ['Subject: x\nDate: Mon, 01 Jan 2024 00:00:00 +0000\n\nb\n.\n', /no From: field/],
      ['From: a@b\n\nb\n.\n', /no Date: field/],
      [`${HEADER}\n\nNUL\0here\n.\n`, /NUL/],
      [`${HEADER}\n\nbare\rCR\n.\n`, /line 5: a CR without LF/],
      [`${HEADER}\n\n${'x'.repeat(999)}\n.\n`, /line 5 is longer than 998/],
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
    const dir = await mkdtemp(join(tmpdir(), 'mmp-spoof-'));
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
    const inbox = new SpoofInbox(message);
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
    const r = new SpoofInbox(message).retr(1);
    expect(r).toMatchObject({ kind: 'ok', line: `${size} octets` });
    if (r.kind === 'ok') {
      expect(r.body?.toString()).toBe(
        `${HEADER.replaceAll('\n', '\r\n')}\r\n\r\nLine 1\r\n..dot\r\nLine 3\r\n.\r\n`,
      );
    }
  });

  it('TOP gives the header, the blank line and n body lines', () => {
    const inbox = new SpoofInbox(message);
    const head = `${HEADER.replaceAll('\n', '\r\n')}\r\n\r\n`;
    expect(inbox.top(1, 0)).toMatchObject({ body: Buffer.from(`${head}.\r\n`) });
    expect(inbox.top(1, 2)).toMatchObject({ body: Buffer.from(`${head}Line 1\r\n..dot\r\n.\r\n`) });
    expect(inbox.top(1, 99)).toMatchObject({
      body: Buffer.from(`${head}Line 1\r\n..dot\r\nLine 3\r\n.\r\n`),
    });
    expect(inbox.top(2, 1)).toEqual({ kind: 'err', line: 'no such message' });
    const headerOnly = new SpoofInbox(parsed(`${HEADER}\n.\n`));
    expect(headerOnly.top(1, 5)).toMatchObject({ body: Buffer.from(`${head}.\r\n`) });
  });

  it('DELE marks the message for the session only; RSET unmarks it', () => {
    const inbox = new SpoofInbox(message);
    expect(inbox.dele(1)).toEqual({ kind: 'ok', line: 'message 1 deleted' });
    expect(inbox.stat()).toEqual({ kind: 'ok', line: '0 0' });
    expect(inbox.list(undefined)).toMatchObject({ line: '0 messages', body: Buffer.from('.\r\n') });
    expect(inbox.retr(1)).toEqual({ kind: 'err', line: 'message 1 already deleted' });
    expect(inbox.dele(1)).toEqual({ kind: 'err', line: 'message 1 already deleted' });
    expect(inbox.rset()).toEqual({ kind: 'ok', line: `maildrop has 1 message (${size} octets)` });
    expect(inbox.stat()).toEqual({ kind: 'ok', line: `1 ${size}` });
    // Another session's inbox never saw the DELE.
    inbox.dele(1);
    expect(new SpoofInbox(message).stat()).toEqual({ kind: 'ok', line: `1 ${size}` });
  });
});
