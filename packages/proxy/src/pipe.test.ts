import { createHash, randomBytes } from 'node:crypto';
import { type AddressInfo, type Socket, connect, createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { keepTail, startPipe, tailOf } from './pipe.js';
import { connectStore } from './store.js';

/** Two connected TCP sockets: [our end, their end]. */
async function socketPair(): Promise<[Socket, Socket]> {
  const server = createServer({ allowHalfOpen: true });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const theirs = connect({
    port: (server.address() as AddressInfo).port,
    host: '127.0.0.1',
    allowHalfOpen: true,
  });
  const ours = await accepted;
  server.close();
  await new Promise((r) => theirs.once('connect', r));
  return [ours, theirs];
}

/**
 * A store connection as the proxy makes it (`connectStore`: reads into the shared buffer of
 * `storeReads.ts`): [our end, the store's end].
 */
async function storePair(): Promise<[Socket, Socket]> {
  const server = createServer({ allowHalfOpen: true });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const ours = await connectStore(
    { host: '127.0.0.1', port: (server.address() as AddressInfo).port },
    5_000,
  );
  if (!ours.ok) throw new Error(ours.error.detail);
  const theirs = await accepted;
  server.close();
  return [ours.value, theirs];
}

/** What `from` sends until it ends, with its hash. */
function collect(from: Socket): Promise<{ length: number; sha256: string }> {
  const hash = createHash('sha256');
  let length = 0;
  from.on('data', (d: Buffer) => {
    length += d.length;
    hash.update(d);
  });
  return new Promise((r) => from.once('end', () => r({ length, sha256: hash.digest('hex') })));
}

/** Write `bytes` in 64 KiB pieces, waiting for drains; resolves when all are handed over. */
async function send(to: Socket, bytes: Buffer): Promise<void> {
  for (let at = 0; at < bytes.length; at += 65536) {
    if (!to.write(bytes.subarray(at, at + 65536))) await new Promise((r) => to.once('drain', r));
  }
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

const farewell = {
  bytes: Buffer.from('* BYE store gone\r\n'),
  alreadySaid: (tail: Buffer) => tail.includes('* BYE'),
};

describe('startPipe', () => {
  it.each([
    ['a store socket that emits data', socketPair],
    ['a store socket reading into the shared buffer', storePair],
  ])('holds backpressure with %s: a client that does not read stops the store', async (_, pair) => {
    const [clientSide, client] = await socketPair();
    const [storeSide, store] = await pair();
    client.pause();
    const done = startPipe({
      client: clientSide,
      store: storeSide,
      fromClient: Buffer.alloc(0),
      fromStore: Buffer.alloc(0),
    });
    const total = 64 * 1024 * 1024;
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    let written = 0;
    const hash = createHash('sha256');
    const writer = (async () => {
      while (written < total) {
        written += chunk.length;
        hash.update(chunk);
        if (!store.write(chunk)) await new Promise((r) => store.once('drain', r));
      }
      store.end();
    })();
    await new Promise((r) => setTimeout(r, 500));
    // Only socket buffers (a few MiB on loopback) hold data; the store was made to wait.
    expect(written).toBeLessThan(total / 4);
    const got = createHash('sha256');
    let received = 0;
    client.on('data', (d: Buffer) => {
      received += d.length;
      got.update(d);
    });
    client.resume();
    await writer;
    await new Promise((r) => client.once('end', r));
    expect(received).toBe(total);
    expect(got.digest('hex')).toBe(hash.digest('hex'));
    client.destroy();
    expect((await done).toClient).toBe(total);
  });

  it('sends leftovers first, then says BYE when the store closes without one', async () => {
    const [clientSide, client] = await socketPair();
    const [storeSide, store] = await socketPair();
    const fromStore: Buffer[] = [];
    store.on('data', (d: Buffer) => fromStore.push(d));
    const received: Buffer[] = [];
    client.on('data', (d: Buffer) => received.push(d));
    const done = startPipe({
      client: clientSide,
      store: storeSide,
      fromClient: Buffer.from('a2 NOOP\r\n'),
      fromStore: Buffer.from('* 3 EXISTS\r\n'),
      farewell,
    });
    store.end('a2 OK done\r\n');
    await new Promise((r) => client.once('end', r));
    expect(Buffer.concat(received).toString()).toBe(
      '* 3 EXISTS\r\na2 OK done\r\n* BYE store gone\r\n',
    );
    expect(Buffer.concat(fromStore).toString()).toBe('a2 NOOP\r\n');
    client.destroy();
    expect((await done).closedBy).toBe('store');
  });

  it("adds no BYE after the store's own, and closes the store when the client goes", async () => {
    const [clientSide, client] = await socketPair();
    const [storeSide, store] = await socketPair();
    const received: Buffer[] = [];
    client.on('data', (d: Buffer) => received.push(d));
    const done = startPipe({
      client: clientSide,
      store: storeSide,
      fromClient: Buffer.alloc(0),
      fromStore: Buffer.alloc(0),
      farewell,
    });
    store.end('* BYE logging out\r\na9 OK LOGOUT completed\r\n');
    await new Promise((r) => client.once('end', r));
    expect(Buffer.concat(received).toString()).toBe(
      '* BYE logging out\r\na9 OK LOGOUT completed\r\n',
    );
    client.destroy();
    await done;

    const [clientSide2, client2] = await socketPair();
    const [storeSide2, store2] = await socketPair();
    const storeClosed = new Promise((r) => store2.once('close', r));
    store2.on('end', () => store2.end());
    const done2 = startPipe({
      client: clientSide2,
      store: storeSide2,
      fromClient: Buffer.alloc(0),
      fromStore: Buffer.alloc(0),
      farewell,
    });
    client2.destroy();
    await storeClosed;
    expect((await done2).closedBy).toBe('client');
  });

  it('keeps every byte of two sessions whose store reads share a buffer, one client slow', async () => {
    // Session A's client stalls while its write still sends from the shared buffer that session
    // B's store socket will read into next: B must get its own bytes and A's must stay intact.
    const [clientA, readerA] = await socketPair();
    const [storeA, senderA] = await storePair();
    const [clientB, readerB] = await socketPair();
    const [storeB, senderB] = await storePair();
    readerA.pause();
    const pipes = [
      startPipe({
        client: clientA,
        store: storeA,
        fromClient: Buffer.alloc(0),
        fromStore: Buffer.alloc(0),
      }),
      startPipe({
        client: clientB,
        store: storeB,
        fromClient: Buffer.alloc(0),
        fromStore: Buffer.alloc(0),
      }),
    ];
    const gotB = collect(readerB);
    const firstB = randomBytes(1000);
    senderB.write(firstB);
    await new Promise((r) => setTimeout(r, 100));
    const bytesA = randomBytes(16 * 1024 * 1024);
    const sendingA = send(senderA, bytesA);
    await new Promise((r) => setTimeout(r, 300));
    const bytesB = randomBytes(4 * 1024 * 1024);
    await send(senderB, bytesB);
    senderB.end();
    expect(await gotB).toEqual({
      length: firstB.length + bytesB.length,
      sha256: sha256(Buffer.concat([firstB, bytesB])),
    });
    const gotA = collect(readerA);
    readerA.resume();
    await sendingA;
    senderA.end();
    expect(await gotA).toEqual({ length: bytesA.length, sha256: sha256(bytesA) });
    readerA.destroy();
    readerB.destroy();
    await Promise.all(pipes);
  });
});

describe('an idle pipe', () => {
  it('has the same listeners as every other pipe: no closure of its own to keep', async () => {
    const pipes = [];
    for (let i = 0; i < 2; i++) {
      const [client, clientEnd] = await socketPair();
      const [store, storeEnd] = await storePair();
      const done = startPipe({
        client,
        store,
        fromClient: Buffer.alloc(0),
        fromStore: Buffer.alloc(0),
        farewell,
      });
      pipes.push({ client, store, clientEnd, storeEnd, done });
    }
    const [a, b] = pipes as [(typeof pipes)[0], (typeof pipes)[0]];
    const same = (x: Socket, y: Socket, event: string): boolean => {
      const [fx, fy] = [x.listeners(event), y.listeners(event)];
      return fx.length === fy.length && fx.every((f, i) => f === fy[i]);
    };
    for (const event of ['data', 'end', 'close', 'error', 'drain']) {
      expect(same(a.client, b.client, event), `client '${event}'`).toBe(true);
      expect(same(a.store, b.store, event), `store '${event}'`).toBe(true);
    }
    expect(a.client.listeners('close')).toHaveLength(1);
    expect(a.store.listeners('close')).toHaveLength(1);
    // The pipe still works: the store's bytes reach the client, and the store's end ends it.
    a.storeEnd.end('* BYE bye\r\n');
    const got: Buffer[] = [];
    a.clientEnd.on('data', (d: Buffer) => got.push(d));
    await new Promise((r) => a.clientEnd.once('end', r));
    expect(Buffer.concat(got).toString()).toBe('* BYE bye\r\n');
    for (const p of pipes) {
      p.clientEnd.destroy();
      p.storeEnd.destroy();
    }
    await Promise.all(pipes.map((p) => p.done));
  });
});

describe('a piped socket', () => {
  it("keeps neither Node's cached addresses nor a cleared idle timer, and still tells its address", async () => {
    const [client, clientEnd] = await socketPair();
    const [store, storeEnd] = await storePair();
    client.setTimeout(60_000);
    const address = `${client.remoteAddress}:${client.remotePort} ${store.localAddress}`;
    const done = startPipe({
      client,
      store,
      fromClient: Buffer.alloc(0),
      fromStore: Buffer.alloc(0),
    });
    for (const s of [client, store] as (Socket & Record<string | symbol, unknown>)[]) {
      expect(s._peername).toBeUndefined();
      expect(s._sockname).toBeUndefined();
      const timeout = Object.getOwnPropertySymbols(s).find((k) => k.description === 'timeout');
      expect(timeout).toBeDefined();
      expect(s[timeout as symbol]).toBeNull();
    }
    // Asked again, Node reads them from the socket.
    expect(`${client.remoteAddress}:${client.remotePort} ${store.localAddress}`).toBe(address);
    clientEnd.destroy();
    storeEnd.destroy();
    await done;
  });
});

describe('keepTail', () => {
  it("keeps the store's last 256 bytes across chunks, in a buffer of its own", () => {
    const sent: Buffer[] = [];
    const t = { tail: undefined as Buffer | undefined, tailLength: 0 };
    for (const size of [0, 5, 300, 1, 255, 256, 2, 70_000, 3, 100, 200, 257, 9]) {
      const chunk = randomBytes(size);
      sent.push(chunk);
      keepTail(t, chunk);
      expect(tailOf(t)).toEqual(Buffer.concat(sent).subarray(-256));
      // Not a slice of Node's shared 8 KiB pool, which the session would keep alive.
      expect(t.tail?.buffer.byteLength).toBe(256);
    }
  });
});
