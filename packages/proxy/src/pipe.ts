/**
 * After the store accepted the login, the multiplexor is a transparent two-way pipe (admin guide,
 * "How Multiplexor Works", step 3): each socket's chunks are written to the other as they come, and
 * a socket whose peer cannot take more is paused until the peer drains, so backpressure holds (a
 * slow client slows the store, not our memory) and no work is done per line. The store's chunks
 * come from the process's shared read buffer (`storeReads.ts`) and are written from it without a
 * copy when the client's socket takes them at once, the common case.
 *
 * Hand-written rather than two `stream.pipeline`s: an idle session costs only its sockets and a
 * handful of listeners. The pipelines (legacy `pipe`, end-of-stream watchers and a Transform per
 * session) cost about 25 KiB of heap per idle session, which is most of what 50,000 idle sessions
 * would need (issue 8: at most 8 KiB per session).
 *
 * Closing: the client's end of stream half-closes the store (a pipelined LOGOUT still gets its
 * answer), and a client that vanishes takes the store connection with it. When the store closes
 * first, the client gets every byte the store sent and then a protocol farewell (IMAP `* BYE`,
 * RFC 3501 §7.1.5) unless the store's last bytes already said goodbye. An error on either socket
 * closes both. Protocol-neutral.
 */

import type { Socket } from 'node:net';
import { retain, storeReaderOf } from './storeReads.js';

/** Bytes of the store's output kept to tell whether it said goodbye itself. */
const TAIL_BYTES = 256;

export interface Farewell {
  bytes: Buffer;
  /** Whether the store's last bytes (`tail`) already contain its own goodbye. */
  alreadySaid(tail: Buffer): boolean;
}

export interface PipeOptions {
  client: Socket;
  store: Socket;
  /** Bytes the client sent after its login command: they go to the store first. */
  fromClient: Buffer;
  /** Bytes the store sent after its login answer: they go to the client first. */
  fromStore: Buffer;
  farewell?: Farewell;
}

export interface PipeResult {
  /** Bytes sent to the store / to the client through the pipe. */
  toStore: number;
  toClient: number;
  /** Who ended the session. */
  closedBy: 'client' | 'store';
  /** First socket error, if any (ECONNRESET…). */
  error?: string;
}

export function startPipe(opts: PipeOptions): Promise<PipeResult> {
  const { client, store, farewell } = opts;
  client.setTimeout(0);
  store.setTimeout(0);
  let toClient = 0;
  /** The store's last TAIL_BYTES bytes, kept only to tell whether it said goodbye itself. */
  let tail: Buffer = Buffer.alloc(0);
  let clientGone = false;
  let storeEnded = false;
  let closedBy: 'client' | 'store' | undefined;
  let firstError: string | undefined;

  // The store's bytes go to the client as they come. A chunk the client's socket did not take at
  // once stops reading from the store until it has been written (backpressure); if it lives in
  // the shared read buffer (`storeReads.ts`), that buffer is retained until then.
  let issued = 0;
  let done = 0;
  let waitingFor = 0;
  let release: (() => void) | undefined;
  const written = (): void => {
    done++;
    if (waitingFor === 0 || done < waitingFor) return;
    waitingFor = 0;
    release?.();
    release = undefined;
    store.resume();
  };
  const fromStore = (bytes: Buffer, owned = true): void => {
    // While a write waits, reads are stopped; bytes that still come from a shared buffer (the
    // reader's early ones never do) are copied rather than retained a second time.
    const chunk = owned || waitingFor === 0 ? bytes : Buffer.from(bytes);
    toClient += chunk.length;
    if (farewell !== undefined) {
      // Constant work per chunk, not per line.
      tail =
        chunk.length >= TAIL_BYTES
          ? Buffer.from(chunk.subarray(chunk.length - TAIL_BYTES))
          : Buffer.concat([tail, chunk]).subarray(-TAIL_BYTES);
    }
    issued++;
    client.write(chunk, written);
    if (waitingFor === 0 && client.writableLength > 0) {
      waitingFor = issued;
      if (!owned) release = retain(chunk);
      store.pause();
    }
  };
  const fromClient = (chunk: Buffer): void => {
    if (!store.write(chunk)) client.pause();
  };
  const onError = (e: NodeJS.ErrnoException): void => {
    firstError ??= e.code ?? e.message;
    client.destroy();
    store.destroy();
  };

  if (opts.fromStore.length > 0) fromStore(opts.fromStore);
  if (opts.fromClient.length > 0) fromClient(opts.fromClient);

  return new Promise((resolve) => {
    // `on`, not `once`, for 'end' and 'close' (each comes at most once per socket): a `once`
    // wrapper costs about 200 bytes that an idle session would keep.
    let open = 2;
    const closed = (): void => {
      if (--open > 0) return;
      const result: PipeResult = {
        toStore: store.bytesWritten,
        toClient,
        closedBy: closedBy ?? 'client',
      };
      if (firstError !== undefined) result.error = firstError;
      resolve(result);
    };
    client.on('data', fromClient);
    const reader = storeReaderOf(store);
    if (reader !== undefined) reader.listen(fromStore);
    else store.on('data', fromStore);
    store.on('drain', () => client.resume());
    client.on('error', onError);
    store.on('error', onError);
    client.on('end', () => {
      closedBy ??= 'client';
      clientGone = true;
      store.end();
    });
    store.on('end', () => {
      closedBy ??= 'store';
      storeEnded = true;
      if (farewell !== undefined && !clientGone && !farewell.alreadySaid(tail)) {
        client.write(farewell.bytes);
      }
      tail = Buffer.alloc(0);
      // The store is gone: once the client has our last bytes, its connection ends too.
      client.destroySoon();
    });
    client.on('close', () => {
      closedBy ??= 'client';
      clientGone = true;
      // The client is gone for good: nothing the store says can reach it.
      store.destroy();
      closed();
    });
    store.on('close', () => {
      // Cut without an end of stream (reset): the session is over.
      if (!storeEnded) client.destroy();
      closed();
    });
    // A client that half-closed during its login: its end of stream came before the pipe
    // (issue 14), so it is passed on now, or the store's connection would stay open.
    if (client.readableEnded) {
      closedBy ??= 'client';
      clientGone = true;
      store.end();
    }
    store.resume();
    client.resume();
  });
}
