/**
 * A misbehaving directory for tests: a TCP relay in front of the test bed's slapd that passes every
 * LDAP message through, except simple binds as the DNs it is told about, which it answers itself
 * with a chosen result code (busy 51, unavailable 52, unwilling 53, admin limit 11…): what an
 * overloaded directory says, which a real slapd cannot be made to say on demand. It counts the
 * connections it accepted (how many the proxy opens). Reads only the BER framing it needs: the
 * message's length, its id and the bind request's name.
 */

import { type Server, type Socket, connect, createServer } from 'node:net';

export interface LdapRelay {
  readonly host: string;
  readonly port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Binds as `dn` get `code` (undefined: passed through again). */
  answerBinds(dn: string, code: number | undefined): void;
  close(): Promise<void>;
}

/** The length of one BER element at `off` (tag included), or undefined when incomplete. */
function elementLength(buf: Buffer, off: number): { header: number; body: number } | undefined {
  if (buf.length < off + 2) return undefined;
  const first = buf[off + 1] as number;
  if (first < 0x80) return { header: 2, body: first };
  const n = first & 0x7f;
  if (buf.length < off + 2 + n) return undefined;
  let body = 0;
  for (let i = 0; i < n; i++) body = body * 256 + (buf[off + 2 + i] as number);
  return { header: 2 + n, body };
}

/** messageID and, for a BindRequest, its name. */
function readMessage(msg: Buffer): { id: Buffer; bindDn: string | undefined } {
  const outer = elementLength(msg, 0);
  if (outer === undefined) return { id: Buffer.from([0]), bindDn: undefined };
  let off = outer.header;
  const idLen = elementLength(msg, off);
  if (idLen === undefined) return { id: Buffer.from([0]), bindDn: undefined };
  const id = msg.subarray(off + idLen.header, off + idLen.header + idLen.body);
  off += idLen.header + idLen.body;
  if (msg[off] !== 0x60) return { id, bindDn: undefined };
  const op = elementLength(msg, off);
  if (op === undefined) return { id, bindDn: undefined };
  off += op.header;
  const version = elementLength(msg, off);
  if (version === undefined) return { id, bindDn: undefined };
  off += version.header + version.body;
  const name = elementLength(msg, off);
  if (name === undefined) return { id, bindDn: undefined };
  return {
    id,
    bindDn: msg.subarray(off + name.header, off + name.header + name.body).toString('utf8'),
  };
}

function bindResponse(id: Buffer, code: number): Buffer {
  const op = Buffer.from([0x61, 0x07, 0x0a, 0x01, code, 0x04, 0x00, 0x04, 0x00]);
  const idTlv = Buffer.concat([Buffer.from([0x02, id.length]), id]);
  return Buffer.concat([Buffer.from([0x30, idTlv.length + op.length]), idTlv, op]);
}

export async function startLdapRelay(target: { host: string; port: number }): Promise<LdapRelay> {
  const answers = new Map<string, number>();
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server: Server = createServer((client) => {
    accepted++;
    sockets.add(client);
    const upstream = connect(target);
    sockets.add(upstream);
    let pending = Buffer.alloc(0);
    client.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        const len = elementLength(pending, 0);
        if (len === undefined || pending.length < len.header + len.body) return;
        const msg = pending.subarray(0, len.header + len.body);
        pending = pending.subarray(len.header + len.body);
        const { id, bindDn } = readMessage(msg);
        const code = bindDn === undefined ? undefined : answers.get(bindDn.toLowerCase());
        if (code === undefined) upstream.write(msg);
        else client.write(bindResponse(id, code));
      }
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', end);
    upstream.on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('relay did not listen');
  return {
    host: '127.0.0.1',
    port: address.port,
    get accepted() {
      return accepted;
    },
    answerBinds(dn, code) {
      if (code === undefined) answers.delete(dn.toLowerCase());
      else answers.set(dn.toLowerCase(), code);
    },
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
