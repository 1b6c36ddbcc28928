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

/** Told once when the pipe is over (both sockets closed). */
export interface PipeEnd {
  pipeEnded(result: PipeResult): void;
}

/**
 * One pipe's state, reachable from both its sockets (`PIPE`). Every listener is one function for
 * all pipes, called on the socket as EventEmitter calls them: an idle piped session keeps this
 * object and its sockets, not a closure per event and a promise (900 bytes less of live heap per
 * idle session, issue 18).
 */
class Pipe implements StoreTail {
  toClient = 0;
  /**
   * The store's last bytes (`tailLength` of them, at most TAIL_BYTES), kept only to tell whether it
   * said goodbye itself: the pipe's own buffer, made at its first byte from the store and updated
   * in place. A slice of what Buffer.from or concat return would keep a whole 8 KiB slab of Node's
   * shared pool alive for each session, and cost an allocation per chunk.
   */
  tail: Buffer | undefined;
  tailLength = 0;
  clientGone = false;
  storeEnded = false;
  closedBy: 'client' | 'store' | undefined;
  firstError: string | undefined;
  /** Sockets not yet closed. */
  open = 2;
  // The store's bytes go to the client as they come. A chunk the client's socket did not take at
  // once stops reading from the store until it has been written (backpressure); if it lives in
  // the shared read buffer (`storeReads.ts`), that buffer is retained until then.
  issued = 0;
  done = 0;
  waitingFor = 0;
  release: (() => void) | undefined;
  /** The write callback, made at the pipe's first write to the client. */
  written: (() => void) | undefined;

  constructor(
    readonly client: Socket,
    readonly store: Socket,
    readonly farewell: Farewell | undefined,
    readonly end: PipeEnd,
  ) {}
}

const PIPE = Symbol('mmp.pipe');
type Piped = Socket & { [PIPE]: Pipe };
const pipeOf = (socket: Socket): Pipe => (socket as Piped)[PIPE];

function wrote(p: Pipe): void {
  p.done++;
  if (p.waitingFor === 0 || p.done < p.waitingFor) return;
  p.waitingFor = 0;
  p.release?.();
  p.release = undefined;
  p.store.resume();
}

function fromStore(p: Pipe, bytes: Buffer, owned: boolean): void {
  // While a write waits, reads are stopped; bytes that still come from a shared buffer (the
  // reader's early ones never do) are copied rather than retained a second time.
  const chunk = owned || p.waitingFor === 0 ? bytes : Buffer.from(bytes);
  p.toClient += chunk.length;
  if (p.farewell !== undefined) keepTail(p, chunk);
  p.issued++;
  p.written ??= (): void => wrote(p);
  p.client.write(chunk, p.written);
  if (p.waitingFor === 0 && p.client.writableLength > 0) {
    p.waitingFor = p.issued;
    if (!owned) p.release = retain(chunk);
    p.store.pause();
  }
}

/** The last bytes the store sent (`Pipe`'s). */
export interface StoreTail {
  tail: Buffer | undefined;
  tailLength: number;
}

/** Keep the last TAIL_BYTES of what the store sent, `chunk` last: constant work per chunk, not per
 * line. */
export function keepTail(p: StoreTail, chunk: Buffer): void {
  const tail = (p.tail ??= Buffer.allocUnsafeSlow(TAIL_BYTES));
  if (chunk.length >= TAIL_BYTES) {
    chunk.copy(tail, 0, chunk.length - TAIL_BYTES);
    p.tailLength = TAIL_BYTES;
    return;
  }
  const kept = Math.min(p.tailLength, TAIL_BYTES - chunk.length);
  tail.copyWithin(0, p.tailLength - kept, p.tailLength);
  chunk.copy(tail, kept);
  p.tailLength = kept + chunk.length;
}

/** What `keepTail` kept. */
export function tailOf(p: StoreTail): Buffer {
  return p.tail?.subarray(0, p.tailLength) ?? Buffer.alloc(0);
}

function fromClient(p: Pipe, chunk: Buffer): void {
  if (!p.store.write(chunk)) p.client.pause();
}

function onClientData(this: Socket, chunk: Buffer): void {
  fromClient(pipeOf(this), chunk);
}

function onStoreBytes(this: Socket, bytes: Buffer, owned: boolean): void {
  fromStore(pipeOf(this), bytes, owned);
}

function onStoreData(this: Socket, chunk: Buffer): void {
  fromStore(pipeOf(this), chunk, true);
}

function onStoreDrain(this: Socket): void {
  pipeOf(this).client.resume();
}

function onError(this: Socket, e: NodeJS.ErrnoException): void {
  const p = pipeOf(this);
  p.firstError ??= e.code ?? e.message;
  p.client.destroy();
  p.store.destroy();
}

function clientEnded(p: Pipe): void {
  p.closedBy ??= 'client';
  p.clientGone = true;
  p.store.end();
}

function onClientEnd(this: Socket): void {
  clientEnded(pipeOf(this));
}

function onStoreEnd(this: Socket): void {
  const p = pipeOf(this);
  p.closedBy ??= 'store';
  p.storeEnded = true;
  const { farewell, client } = p;
  if (farewell !== undefined && !p.clientGone && !farewell.alreadySaid(tailOf(p))) {
    client.write(farewell.bytes);
  }
  p.tail = undefined;
  // The store is gone: once the client has our last bytes, its connection ends too.
  client.destroySoon();
}

function onClientClose(this: Socket): void {
  const p = pipeOf(this);
  p.closedBy ??= 'client';
  p.clientGone = true;
  // The client is gone for good: nothing the store says can reach it.
  p.store.destroy();
  closed(p);
}

function onStoreClose(this: Socket): void {
  const p = pipeOf(this);
  // Cut without an end of stream (reset): the session is over.
  if (!p.storeEnded) p.client.destroy();
  closed(p);
}

function closed(p: Pipe): void {
  if (--p.open > 0) return;
  const result: PipeResult = {
    toStore: p.store.bytesWritten,
    toClient: p.toClient,
    closedBy: p.closedBy ?? 'client',
  };
  if (p.firstError !== undefined) result.error = p.firstError;
  p.written = undefined;
  p.end.pipeEnded(result);
}

/** What Node keeps on a socket that a piped session no longer needs (`forgetCached`). */
type Cached = Socket & { _peername?: unknown; _sockname?: unknown } & Record<symbol, unknown>;

/**
 * Let go of what Node keeps on a socket once asked and a pipe never asks again: its addresses
 * (`_peername`, `_sockname`: an object and a string each, read again from the socket if anyone
 * asks) and, after `setTimeout(0)`, the cleared idle timer, which Node keeps referenced (a
 * Timeout object) though it never runs again.
 */
function forgetCached(socket: Socket): void {
  const s = socket as Cached;
  s._peername = undefined;
  s._sockname = undefined;
  const timeout = Object.getOwnPropertySymbols(s).find((k) => k.description === 'timeout');
  if (timeout !== undefined) s[timeout] = null;
}

/** Join the client to the store; `end` is told when both connections are closed. */
export function pipe(opts: PipeOptions, end: PipeEnd): void {
  const { client, store } = opts;
  client.setTimeout(0);
  store.setTimeout(0);
  forgetCached(client);
  forgetCached(store);
  const p = new Pipe(client, store, opts.farewell, end);
  (client as Piped)[PIPE] = p;
  (store as Piped)[PIPE] = p;
  if (opts.fromStore.length > 0) fromStore(p, opts.fromStore, true);
  if (opts.fromClient.length > 0) fromClient(p, opts.fromClient);
  // `on`, not `once`, for 'end' and 'close' (each comes at most once per socket): a `once`
  // wrapper costs about 200 bytes that an idle session would keep.
  client.on('data', onClientData);
  const reader = storeReaderOf(store);
  if (reader !== undefined) reader.listen(store, onStoreBytes);
  else store.on('data', onStoreData);
  store.on('drain', onStoreDrain);
  client.on('error', onError);
  store.on('error', onError);
  client.on('end', onClientEnd);
  store.on('end', onStoreEnd);
  client.on('close', onClientClose);
  store.on('close', onStoreClose);
  // A client that half-closed during its login: its end of stream came before the pipe
  // (issue 14), so it is passed on now, or the store's connection would stay open.
  if (client.readableEnded) clientEnded(p);
  store.resume();
  client.resume();
}

/** `pipe`, settling when it is over. */
export function startPipe(opts: PipeOptions): Promise<PipeResult> {
  return new Promise((resolve) => pipe(opts, { pipeEnded: resolve }));
}
