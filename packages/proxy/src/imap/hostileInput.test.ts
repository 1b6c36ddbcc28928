/**
 * Issue 13, point 1, as a client meets it: every byte before login is counted (lone CRs too, in
 * command text and in an AUTHENTICATE response), ID up to the RFC 2971 maximum is answered while
 * every other command keeps the 8 KiB bound, and NUL in a literal is refused with the stream in
 * step. The framer's own tests feed the same inputs byte by byte and all at once.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ID_MAX_FIELD_BYTES,
  ID_MAX_PAIRS,
  ID_MAX_VALUE_BYTES,
  MAX_ID_LINE_BYTES,
  MAX_LINE_BYTES,
} from '../limits.js';
import { FakeDirectory, startTestProxy, testRuntime } from '../test-support/harness.js';
import { RawClient } from '../test-support/rawClient.js';
import type { ProxyServer } from '../server.js';

let proxy: { server: ProxyServer; port: number };

beforeAll(async () => {
  proxy = await startTestProxy(testRuntime(new FakeDirectory([])));
});

afterAll(async () => {
  await proxy.server.stop();
});

async function connect(): Promise<RawClient> {
  const c = await RawClient.open(proxy.port);
  expect(await c.line()).toMatch(/^\* OK /);
  return c;
}

/** RFC 2971 §3.3 at its maximum: 30 pairs of 30-octet fields and 1024-octet values, quoted. */
function maximalId(tag: string): string {
  const pairs: string[] = [];
  for (let i = 0; i < ID_MAX_PAIRS; i++) {
    const field = `x-field-${i}`.padEnd(ID_MAX_FIELD_BYTES, '-');
    pairs.push(`"${field}" "${String(i % 10).repeat(ID_MAX_VALUE_BYTES)}"`);
  }
  return `${tag} ID (${pairs.join(' ')})\r\n`;
}

describe('every byte before login is counted', () => {
  it('closes on `a NOOP` followed by lone CRs beyond the line limit', async () => {
    const c = await connect();
    c.send(Buffer.concat([Buffer.from('a1 NOOP'), Buffer.alloc(MAX_LINE_BYTES + 100, 0x0d)]));
    expect(await c.rest()).toEqual(['* BYE Command line too long']);
  });

  it('closes on an AUTHENTICATE response grown with lone CRs', async () => {
    const c = await connect();
    c.send('a1 AUTHENTICATE PLAIN\r\n');
    expect(await c.line()).toBe('+ ');
    c.send(Buffer.concat([Buffer.from('AGFsaWNl'), Buffer.alloc(MAX_LINE_BYTES + 100, 0x0d)]));
    expect(await c.rest()).toEqual(['* BYE Command line too long']);
  });

  it('answers ID at the RFC 2971 maximum, sent at once and in small pieces', async () => {
    const c = await connect();
    const id = maximalId('a1');
    expect(id.length).toBeGreaterThan(31_000);
    c.send(id);
    expect(await c.until('a1')).toEqual(['* ID NIL', 'a1 OK ID completed']);
    const dripped = maximalId('a2');
    for (let i = 0; i < dripped.length; i += 997) c.send(dripped.slice(i, i + 997));
    expect(await c.until('a2')).toEqual(['* ID NIL', 'a2 OK ID completed']);
    c.send('a3 NOOP\r\n');
    expect(await c.line()).toBe('a3 OK NOOP completed');
    c.close();
  });

  it('refuses an ID over RFC 2971 with BAD, and one over MAX_ID_LINE_BYTES by closing', async () => {
    const c = await connect();
    c.send(`a1 ID ("name" "${'v'.repeat(ID_MAX_VALUE_BYTES + 1)}")\r\n`);
    expect(await c.line()).toBe('a1 BAD ID values are NIL or strings of at most 1024 octets');
    c.send(`a2 ID ("name" "${'v'.repeat(MAX_ID_LINE_BYTES)}")\r\n`);
    expect(await c.rest()).toEqual(['* BYE Command line too long']);
  });

  it('keeps every other command at 8 KiB', async () => {
    const c = await connect();
    c.send(`a1 LOGIN "${'u'.repeat(MAX_LINE_BYTES)}" pw\r\n`);
    expect(await c.rest()).toEqual(['* BYE Command line too long']);
  });

  it('refuses NUL in a literal with BAD and reads the next command in step', async () => {
    const c = await connect();
    c.send('a1 LOGIN {5}\r\n');
    expect(await c.line()).toBe('+ Ready for literal data');
    c.send('al\x00ce secret\r\na2 LOGIN alice {3+}\r\np\x00w\r\na3 NOOP\r\n');
    expect(await c.line()).toBe('a1 BAD NUL is not allowed in a literal');
    expect(await c.line()).toBe('a2 BAD NUL is not allowed in a literal');
    expect(await c.line()).toBe('a3 OK NOOP completed');
    c.close();
  });
});
