/**
 * Reads from the store connections we open land in one buffer for the whole process (Node's
 * `onread`, which only sockets we connect offer; a store speaks first and sends the large
 * fetches). A 1 MiB fetch then costs no allocation per chunk: no malloc, no zero-filled pages, no
 * Buffer per read for the collector, where the default read path allocates 64 KiB per read and
 * reallocates it to the size read (issue 18: CPU per MiB).
 *
 * The bytes a reader is given are valid only during the call, unless it is told it owns them. A
 * write that does not complete at once keeps reading from the buffer it was given (Node does not
 * copy it): the pipe then calls `retain`, which keeps a copy of those bytes, gives later reads a
 * fresh buffer, and, when a socket that still had the retained buffer reads into it, hands that
 * socket a copy of what it read and puts the pending write's bytes back before anything else runs.
 */

import type { Socket } from 'node:net';

/** The largest read: socat's `-b 65536`, what one loopback read returns at most in practice. */
export const STORE_READ_BYTES = 64 * 1024;

/**
 * A store socket's bytes, called on the socket (as a 'data' listener is). `owned`: the reader may
 * keep `bytes`; otherwise they are valid only during the call.
 */
export type StoreSink = (this: Socket, bytes: Buffer, owned: boolean) => void;

let current: Buffer = Buffer.allocUnsafeSlow(STORE_READ_BYTES);
/** Shared buffers a write still reads from, with a copy of the bytes that write sends. */
const held = new Map<ArrayBufferLike, Buffer>();

/** Node asks for the next buffer after each read (`onread.buffer` as a function). */
export const nextStoreBuffer = (): Buffer => current;

const EMPTY = Buffer.alloc(0);

/** Where a store socket keeps its reader: a property rather than a closure or a WeakMap entry per
 * connection, which an idle piped session would keep for hours. */
const READER = Symbol('mmp.storeReader');
type ReadingSocket = Socket & { [READER]?: StoreReader };

/** Where one store socket's bytes go. */
export class StoreReader {
  private sink: StoreSink | undefined;
  /** Bytes read before anyone listened (the greeting may come before the conversation starts). */
  private early: Buffer = EMPTY;

  /** Send the socket's bytes to `sink` (undefined: keep them until a sink comes). */
  listen(socket: Socket, sink: StoreSink | undefined): void {
    this.sink = sink;
    if (sink !== undefined && this.early.length > 0) {
      const early = this.early;
      this.early = EMPTY;
      sink.call(socket, early, true);
    }
  }

  read(socket: Socket, n: number, buf: Buffer): void {
    const image = held.get(buf.buffer);
    let bytes = buf.subarray(0, n);
    let owned = false;
    if (image !== undefined) {
      // A write still sends from this buffer: take ours out, put its bytes back.
      bytes = Buffer.from(bytes);
      owned = true;
      image.copy(buf, 0, 0, Math.min(n, image.length));
    }
    const sink = this.sink;
    if (sink === undefined) {
      this.early = Buffer.concat([this.early, bytes]);
      return;
    }
    sink.call(socket, bytes, owned);
  }
}

/** `onread.callback` of every store socket (with `nextStoreBuffer` as `onread.buffer`): Node calls
 * it as a method of the socket. */
export function onStoreRead(this: Socket, n: number, buf: Buffer): boolean {
  (this as ReadingSocket)[READER]?.read(this, n, buf);
  return true;
}

/** Say which reader a socket was connected with. */
export function registerStoreReader(socket: Socket, reader: StoreReader): void {
  (socket as ReadingSocket)[READER] = reader;
}

/** The reader of a socket connected with one (a TLS store connection has none: it emits 'data'). */
export function storeReaderOf(socket: Socket): StoreReader | undefined {
  return (socket as ReadingSocket)[READER];
}

/**
 * `bytes` (given by a reader, not owned) are still being written: keep the buffer they live in
 * intact until `release` is called (when that write completed).
 */
export function retain(bytes: Buffer): () => void {
  const key = bytes.buffer;
  held.set(key, Buffer.from(bytes));
  if (key === current.buffer) current = Buffer.allocUnsafeSlow(STORE_READ_BYTES);
  return () => {
    held.delete(key);
  };
}
