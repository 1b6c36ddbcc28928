import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Conn } from './conn.js';

const servers: net.Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/** A server that answers each command line with `reply(line)`, written in tiny pieces. */
async function server(reply: (line: string) => Buffer, greeting: string): Promise<number> {
  const s = net.createServer((socket) => {
    const write = async (bytes: Buffer): Promise<void> => {
      // split at every 3 bytes: terminators and literal headers straddle chunks
      for (let i = 0; i < bytes.length; i += 3) {
        socket.write(bytes.subarray(i, i + 3));
        if (i % 300 === 0) await new Promise((r) => setImmediate(r));
      }
    };
    void write(Buffer.from(greeting));
    let pending = '';
    socket.on('data', (d: Buffer) => {
      pending += d.toString('latin1');
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl).replace(/\r$/, '');
        pending = pending.slice(nl + 1);
        void write(reply(line));
      }
    });
  });
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return (s.address() as net.AddressInfo).port;
}

describe('Conn', () => {
  it('skips IMAP literals (even with a tag-like line inside) and finds the tagged answer', async () => {
    const body = 'x'.repeat(1000) + '\r\nf1 OK fake\r\n' + 'y'.repeat(500);
    const port = await server(
      (line) =>
        Buffer.from(
          `* 3 FETCH (BODY[] {${Buffer.byteLength(body)}}\r\n${body})\r\n${line.split(' ')[0]} OK done\r\n`,
        ),
      '* OK hello\r\n',
    );
    const c = await Conn.connect('127.0.0.1', port, undefined, 2000);
    expect(await c.greeting(2000)).toBe('* OK hello');
    const before = c.bytesIn;
    expect(await c.imap('f1', 'FETCH 3 BODY[]', 2000)).toBe('f1 OK done');
    expect(c.bytesIn - before).toBeGreaterThan(1500);
    expect(await c.imap('f2', 'FETCH 3 BODY[]', 2000)).toBe('f2 OK done');
    c.destroy();
  });

  it('reads POP3 multi-line answers to the dot line, across chunk boundaries', async () => {
    const message = 'Subject: x\r\n\r\n..dot-stuffed\r\nline\r\n';
    const port = await server(
      (line) =>
        line.startsWith('RETR')
          ? Buffer.from(`+OK ${message.length} octets\r\n${message}.\r\n`)
          : line.startsWith('LIST')
            ? Buffer.from('+OK\r\n.\r\n')
            : Buffer.from('+OK\r\n'),
      '+OK ready\r\n',
    );
    const c = await Conn.connect('127.0.0.1', port, undefined, 2000);
    await c.greeting(2000);
    for (let i = 0; i < 5; i++) {
      expect(await c.popMulti('RETR 1', 2000)).toMatch(/^\+OK/);
    }
    expect(await c.popMulti('LIST', 2000)).toBe('+OK');
    expect(await c.pop('NOOP', 2000)).toBe('+OK');
    c.destroy();
  });

  it('rejects a negative answer', async () => {
    const port = await server(
      (line) => Buffer.from(`${line.split(' ')[0]} NO nope\r\n`),
      '* OK\r\n',
    );
    const c = await Conn.connect('127.0.0.1', port, undefined, 2000);
    await c.greeting(2000);
    await expect(c.imap('a', 'LOGIN x y', 2000)).rejects.toThrow(/LOGIN: a NO nope/);
    c.destroy();
  });
});
