/**
 * After the store accepted the login, the multiplexor is a transparent two-way pipe (admin guide,
 * "How Multiplexor Works", step 3): `stream.pipeline` in each direction, so backpressure holds
 * (a slow client slows the store, not our memory) and no work is done per line.
 *
 * Closing: the client's end of stream half-closes the store (a pipelined LOGOUT still gets its
 * answer), and a client that vanishes takes the store connection with it. When the store closes
 * first, the client gets every byte the store sent and then a protocol farewell (IMAP `* BYE`,
 * RFC 3501 §7.1.5) unless the store's last bytes already said goodbye. Protocol-neutral.
 */

import type { Socket } from 'node:net';
import { Transform, type TransformCallback, pipeline } from 'node:stream';

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

/** Counts bytes, remembers the last few, and appends the farewell if the store closes first. */
class StoreToClient extends Transform {
  bytes = 0;
  private tail: Buffer = Buffer.alloc(0);
  clientGone = false;

  constructor(private readonly farewell: Farewell | undefined) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.farewell !== undefined) {
      // Constant work per chunk, not per line: keep only the last TAIL_BYTES bytes.
      this.tail =
        chunk.length >= TAIL_BYTES
          ? Buffer.from(chunk.subarray(chunk.length - TAIL_BYTES))
          : Buffer.concat([this.tail, chunk]).subarray(-TAIL_BYTES);
    }
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    const f = this.farewell;
    if (f !== undefined && !this.clientGone && !f.alreadySaid(this.tail)) {
      done(null, f.bytes);
      return;
    }
    done();
  }
}

export function startPipe(opts: PipeOptions): Promise<PipeResult> {
  const { client, store } = opts;
  client.setTimeout(0);
  store.setTimeout(0);
  const down = new StoreToClient(opts.farewell);
  let closedBy: 'client' | 'store' | undefined;
  let firstError: string | undefined;
  const note = (e: NodeJS.ErrnoException | null | undefined): void => {
    if (e && firstError === undefined && e.code !== 'ERR_STREAM_PREMATURE_CLOSE') {
      firstError = e.code ?? e.message;
    }
  };

  if (opts.fromStore.length > 0) down.write(opts.fromStore);
  if (opts.fromClient.length > 0) store.write(opts.fromClient);

  return new Promise((resolve) => {
    let pending = 2;
    const finish = (): void => {
      if (--pending > 0) return;
      client.destroy();
      store.destroy();
      const result: PipeResult = {
        toStore: store.bytesWritten,
        toClient: down.bytes,
        closedBy: closedBy ?? 'client',
      };
      if (firstError !== undefined) result.error = firstError;
      resolve(result);
    };
    client.once('end', () => {
      closedBy ??= 'client';
      down.clientGone = true;
    });
    client.once('close', () => {
      closedBy ??= 'client';
      down.clientGone = true;
      // The client is gone for good: nothing the store says can reach it.
      store.destroy();
    });
    store.once('end', () => {
      closedBy ??= 'store';
    });
    pipeline(client, store, (e) => {
      note(e);
      finish();
    });
    pipeline(store, down, client, (e) => {
      note(e);
      // The store is gone: once the client has our last bytes, its connection ends too.
      if (closedBy === 'store') client.destroySoon();
      finish();
    });
    store.resume();
    client.resume();
  });
}
