// The messages seeded in every mailbox. All have CRLF line endings, so the bytes a client
// receives (IMAP BODY[], POP3 RETR without dot-stuffing) are exactly the bytes listed here.
import { createHash } from 'node:crypto';

export interface SeededMessage {
  /** 1-based sequence number in INBOX (also its IMAP UID and POP3 message number). */
  number: number;
  subject: string;
  bytes: Buffer;
  size: number;
  sha256: string;
}

export const BIG_MESSAGE_SIZE = 1024 * 1024;
export const BIG_MESSAGE_SUBJECT = 'One mebibyte of text';

function message(number: number, text: string): SeededMessage {
  const bytes = Buffer.from(text, 'utf8');
  const subject = /^Subject: (.*)$/m.exec(text)?.[1]?.replace(/\r$/, '') ?? '';
  return {
    number,
    subject,
    bytes,
    size: bytes.length,
    sha256: createHash('sha256').update(bytes).digest('hex'),
  };
}

const crlf = (lines: readonly string[]): string => lines.map((l) => `${l}\r\n`).join('');

/** The subject of the marker message: it names the store and the user. */
export function markerSubject(store: string, uid: string): string {
  return `Welcome to store ${store}, ${uid}`;
}

/** Message 1: names the store and the user in its Subject. */
export function markerMessage(store: string, uid: string, mail: string): SeededMessage {
  return message(
    1,
    crlf([
      'From: mmp test bed <testbed@mmp.test>',
      `To: <${mail}>`,
      `Subject: ${markerSubject(store, uid)}`,
      'Date: Mon, 01 Jan 2024 00:00:01 +0000',
      `Message-ID: <welcome.${store}.${uid}@mmp.test>`,
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=us-ascii',
      '',
      `Hello ${uid}, this mailbox lives on store ${store}.`,
    ]),
  );
}

/** Message 2: a small message whose body has lines starting with dots (POP3 dot-stuffing). */
export function secondMessage(store: string, uid: string, mail: string): SeededMessage {
  return message(
    2,
    crlf([
      'From: mmp test bed <testbed@mmp.test>',
      `To: <${mail}>`,
      `Subject: Second message for ${uid}`,
      'Date: Mon, 01 Jan 2024 00:00:02 +0000',
      `Message-ID: <second.${store}.${uid}@mmp.test>`,
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=us-ascii',
      '',
      'Lines below start with dots.',
      '.',
      '.. two dots',
      '. one dot',
      'End.',
    ]),
  );
}

let big: SeededMessage | undefined;

/**
 * Message 3: exactly 1 MiB (1,048,576 bytes, CRLF lines), the same bytes in every mailbox and
 * every run. Lines are `NNNNNNN ` plus the hex SHA-256 of `mmp-testbed-line-N`.
 */
export function bigMessage(): SeededMessage {
  if (big !== undefined) return big;
  const header = crlf([
    'From: mmp test bed <testbed@mmp.test>',
    'To: undisclosed-recipients:;',
    `Subject: ${BIG_MESSAGE_SUBJECT}`,
    'Date: Mon, 01 Jan 2024 00:00:03 +0000',
    'Message-ID: <one-mebibyte@mmp.test>',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=us-ascii',
    '',
  ]);
  const parts = [header];
  let size = header.length;
  for (let n = 1; ; n++) {
    const hex = createHash('sha256').update(`mmp-testbed-line-${n}`).digest('hex');
    const line = `${String(n).padStart(7, '0')} ${hex}\r\n`;
    const room = BIG_MESSAGE_SIZE - size;
    if (room <= line.length + 2) {
      // last line: fills the remaining room exactly (room >= 3 here)
      parts.push(`${'x'.repeat(room - 2)}\r\n`);
      break;
    }
    parts.push(line);
    size += line.length;
  }
  const text = parts.join('');
  big = message(3, text);
  if (big.size !== BIG_MESSAGE_SIZE) throw new Error(`big message is ${big.size} bytes`);
  return big;
}

/** The three messages of a mailbox, in INBOX order. */
export function mailboxMessages(store: string, uid: string, mail: string): SeededMessage[] {
  return [markerMessage(store, uid, mail), secondMessage(store, uid, mail), bigMessage()];
}
