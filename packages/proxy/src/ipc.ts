/**
 * Typed requests between the serving processes and the primary: the extension point for state
 * that must be one across NumThreads workers (per-address connection counts, login-failure
 * penalties, metrics) and for the primary's own messages to its workers.
 *
 * How a module uses it:
 * 1. Declare a kind once, beside the code that owns it:
 *    `export const COUNT = messageKind<{ ip: string }, number>('hostile.count', isCountRequest)`.
 *    The name is unique across the proxy (prefix it with the module's name). The check is
 *    required: a worker is the internet-facing, unprivileged side of the proxy, so the primary
 *    (possibly root) trusts nothing a worker sends and a request that fails the check is answered
 *    with an error and never reaches the handler.
 * 2. In the primary, answer it: `primary.handle(COUNT, (req, from) => …)`; the handler may be
 *    async; what it returns (or throws) goes back to the asker. `main.ts` calls every
 *    `PrimaryService` in `PRIMARY_SERVICES` with the primary's channel: add yours there.
 *    `primary.onWorkerGone` tells which worker died or exited, so that what it held can be
 *    released (a crashed worker never says goodbye).
 * 3. In a serving process, ask: `const r = await runtime.shared.fleet.request(COUNT, { ip })`;
 *    `r` is a `Result`: an answer, or an `IpcError` (timeout, no handler, handler failed, primary
 *    gone), which the caller decides how to survive (a limit fails open, a metric is dropped).
 *    `notify` sends one-way messages (no reply, no waiting) for counters; across processes a worker
 *    holds them up to `IPC_NOTE_BATCH_MS` for its next request to carry (issue 18: a login's
 *    admission then carries the release and success notes of those before it).
 * 4. The other way, the primary asks every worker (`askWorkers`, e.g. a metrics scrape) and
 *    workers `answer` such kinds.
 *
 * With NumThreads 0 and no root primary there is one process: `localFleet` gives both ends in it,
 * with the same checks and the same timeouts, so a module is written once. There a handler that
 * does not wait answers in the caller's turn (`requestNow`, and `notify` runs it at once): the
 * primary's services are plain calls then, with no turn of the event loop and no timer per
 * message (issue 18: admitting a connection and releasing it took two such hops per login).
 * Messages travel over node:cluster's channel with `serialization: 'advanced'` (structured clone:
 * bytes, Maps, bigints survive; a Buffer arrives as a Uint8Array); in-process they are passed as they are, so treat every request
 * and reply as immutable.
 */

import type { Serializable } from 'node:child_process';
import type { Worker } from 'node:cluster';
import { type ConfigValues, type Result, err, ok } from '@mmp/config';
import type { Log } from './log.js';
import { IPC_NOTE_BATCH_MS, IPC_REPLY_TIMEOUT_MS } from './limits.js';

/** A kind of message: its name, the check of its requests, and (in the type only) its reply. */
export interface MessageKind<Req, Res> {
  readonly name: string;
  /** Checks a request that crossed from another process. */
  readonly isRequest: (value: unknown) => value is Req;
  /** Never set: carries the reply type. */
  readonly reply?: (value: Res) => void;
}

export function messageKind<Req, Res = void>(
  name: string,
  isRequest: (value: unknown) => value is Req,
): MessageKind<Req, Res> {
  return { name, isRequest };
}

/** Who sent a request: a cluster worker's id (0: the process itself) and its pid. */
export interface Peer {
  readonly id: number;
  readonly pid: number;
}

export type IpcError =
  /** No reply within the time allowed (the primary busy, or the message lost with its process). */
  | { readonly kind: 'timeout'; readonly ms: number }
  /** Nobody handles this kind on the other side. */
  | { readonly kind: 'unhandled'; readonly name: string }
  /** The request failed its check, or the handler threw: its message. */
  | { readonly kind: 'failed'; readonly message: string }
  /** The other side is gone (the channel closed) before or while asking. */
  | { readonly kind: 'gone' };

export function ipcErrorText(e: IpcError): string {
  switch (e.kind) {
    case 'timeout':
      return `no reply within ${e.ms} ms`;
    case 'unhandled':
      return `nobody handles ${e.name}`;
    case 'failed':
      return e.message;
    case 'gone':
      return 'the other process is gone';
  }
}

/**
 * Something the primary runs for its workers (a shared count, a metrics scrape): registered once
 * per primary, whatever the process layout, with `values()` the configuration in force.
 */
export type PrimaryService = (
  primary: PrimaryChannel,
  context: { readonly log: Log; readonly values: () => ConfigValues },
) => void;

type Handler<Req, Res> = (request: Req, from: Peer) => Res | Promise<Res>;

/** The primary's end: answers workers, asks them. */
export interface PrimaryChannel {
  handle<Req, Res>(kind: MessageKind<Req, Res>, handler: Handler<Req, Res>): void;
  /** Ask every running worker; one result per worker, in no particular order. */
  askWorkers<Req, Res>(
    kind: MessageKind<Req, Res>,
    request: Req,
    timeoutMs?: number,
  ): Promise<Result<Res, IpcError>[]>;
  /** Called with each worker that exits or loses its channel. */
  onWorkerGone(listener: (peer: Peer) => void): void;
}

/** A serving process's end: asks the primary, answers its questions. */
export interface WorkerChannel {
  request<Req, Res>(
    kind: MessageKind<Req, Res>,
    request: Req,
    timeoutMs?: number,
  ): Promise<Result<Res, IpcError>>;
  notify<Req>(kind: MessageKind<Req, void>, request: Req): void;
  answer<Req, Res>(
    kind: MessageKind<Req, Res>,
    handler: (request: Req) => Res | Promise<Res>,
  ): void;
  /**
   * Only where the primary's services run in this process (`localFleet`, `withServicesHere`): the
   * answer in this turn when the handler does not wait, else (an async handler, or a kind the
   * primary serves) the same promise `request` gives. Absent across processes: ask with `request`.
   */
  requestNow?<Req, Res>(
    kind: MessageKind<Req, Res>,
    request: Req,
    timeoutMs?: number,
  ): Result<Res, IpcError> | Promise<Result<Res, IpcError>>;
}

/** A one-way message as it travels: its kind's name and its body. */
interface Note {
  readonly name: string;
  readonly body: unknown;
}

/**
 * The envelope on the wire; `mmp: 'ipc'` tells it from node:cluster's and other messages. A
 * request carries the notes its sender held back (`IPC_NOTE_BATCH_MS`), to be run before it, in
 * order; `notes` carries them alone when no request came.
 */
type Envelope =
  | { mmp: 'ipc'; type: 'request'; name: string; id: number; body: unknown; notes?: Note[] }
  | { mmp: 'ipc'; type: 'notes'; notes: Note[] }
  | { mmp: 'ipc'; type: 'reply'; id: number; result: Result<unknown, IpcError> };

function isNotes(v: unknown): v is Note[] {
  return (
    Array.isArray(v) &&
    v.every(
      (n) =>
        typeof n === 'object' && n !== null && typeof (n as { name?: unknown }).name === 'string',
    )
  );
}

function envelope(m: unknown): Envelope | undefined {
  if (typeof m !== 'object' || m === null) return undefined;
  const e = m as Partial<Record<string, unknown>>;
  if (e.mmp !== 'ipc') return undefined;
  if (e.type === 'notes' && isNotes(e.notes)) return { mmp: 'ipc', type: 'notes', notes: e.notes };
  if (e.type === 'request' && typeof e.name === 'string') {
    if (typeof e.id === 'number' && (e.notes === undefined || isNotes(e.notes)))
      return {
        mmp: 'ipc',
        type: 'request',
        name: e.name,
        id: e.id,
        body: e.body,
        ...(e.notes === undefined ? {} : { notes: e.notes }),
      };
  }
  if (e.type === 'reply' && typeof e.id === 'number' && typeof e.result === 'object')
    return { mmp: 'ipc', type: 'reply', id: e.id, result: e.result as Result<unknown, IpcError> };
  return undefined;
}

/** One side of a process-to-process channel (a cluster Worker, or `process` in a worker). */
export interface Endpoint {
  send(message: unknown): void;
  /** Subscribe to incoming messages; returns the unsubscribe. */
  listen(onMessage: (message: unknown) => void): () => void;
}

/** A cluster worker, seen from the primary. */
export function workerEndpoint(worker: Worker): Endpoint {
  return {
    send(message) {
      if (worker.isConnected()) worker.send(message as Serializable);
    },
    listen(onMessage) {
      worker.on('message', onMessage);
      return () => worker.off('message', onMessage);
    },
  };
}

/** The primary, seen from a cluster worker. */
export function primaryEndpoint(): Endpoint {
  return {
    send(message) {
      if (process.connected) process.send?.(message);
    },
    listen(onMessage) {
      process.on('message', onMessage);
      return () => process.off('message', onMessage);
    },
  };
}

/** A handler table: checks, runs, and turns every failure into an `IpcError`. */
class Handlers {
  private readonly table = new Map<
    string,
    { check: (v: unknown) => boolean; run: Handler<unknown, unknown> }
  >();

  add<Req, Res>(kind: MessageKind<Req, Res>, handler: Handler<Req, Res>): void {
    if (this.table.has(kind.name)) throw new Error(`ipc: ${kind.name} is handled twice`);
    this.table.set(kind.name, {
      check: kind.isRequest,
      run: handler as Handler<unknown, unknown>,
    });
  }

  async run(name: string, body: unknown, from: Peer): Promise<Result<unknown, IpcError>> {
    return this.runNow(name, body, from);
  }

  /** `run`, answered in this turn when the handler returns a value rather than a promise. */
  runNow(
    name: string,
    body: unknown,
    from: Peer,
  ): Result<unknown, IpcError> | Promise<Result<unknown, IpcError>> {
    const h = this.table.get(name);
    if (h === undefined) return err({ kind: 'unhandled', name });
    if (!h.check(body)) return err({ kind: 'failed', message: `malformed ${name} request` });
    const failed = (e: unknown): Result<unknown, IpcError> =>
      err({ kind: 'failed', message: e instanceof Error ? e.message : String(e) });
    try {
      const answer = h.run(body, from);
      return answer instanceof Promise ? answer.then(ok, failed) : ok(answer);
    } catch (e) {
      return failed(e);
    }
  }
}

/** Requests in flight from one side, each settled by its reply, its timeout or the channel's end. */
class Pending {
  private nextId = 1;
  private readonly waiting = new Map<
    number,
    { settle: (r: Result<unknown, IpcError>) => void; timer: NodeJS.Timeout }
  >();

  open(timeoutMs: number): { id: number; reply: Promise<Result<unknown, IpcError>> } {
    const id = this.nextId++;
    const reply = new Promise<Result<unknown, IpcError>>((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        resolve(err({ kind: 'timeout', ms: timeoutMs }));
      }, timeoutMs);
      // A request in flight never keeps a stopping process alive.
      timer.unref();
      this.waiting.set(id, { settle: resolve, timer });
    });
    return { id, reply };
  }

  settle(id: number, result: Result<unknown, IpcError>): void {
    const w = this.waiting.get(id);
    if (w === undefined) return; // timed out already
    this.waiting.delete(id);
    clearTimeout(w.timer);
    w.settle(result);
  }

  fail(id: number, error: IpcError): void {
    this.settle(id, err(error));
  }

  failAll(error: IpcError): void {
    for (const id of [...this.waiting.keys()]) this.fail(id, error);
  }
}

/** Serve one endpoint's incoming messages: requests and notes to `handlers`, replies to `pending`. */
function serveEndpoint(
  endpoint: Endpoint,
  from: Peer,
  handlers: Handlers,
  pending: Pending,
  onBad: (reason: string) => void,
): () => void {
  return endpoint.listen((m) => {
    const e = envelope(m);
    if (e === undefined) {
      if (typeof m === 'object' && m !== null && (m as { mmp?: unknown }).mmp === 'ipc')
        onBad('malformed ipc envelope');
      return;
    }
    if (e.type === 'reply') return pending.settle(e.id, e.result);
    // Notes first, in order: their sender made them before the request.
    for (const n of e.notes ?? []) {
      const ran = handlers.runNow(n.name, n.body, from);
      const bad = (r: Result<unknown, IpcError>): void => {
        if (!r.ok) onBad(`${n.name}: ${ipcErrorText(r.error)}`);
      };
      if (ran instanceof Promise) void ran.then(bad);
      else bad(ran);
    }
    if (e.type !== 'request') return;
    void handlers.run(e.name, e.body, from).then((result) => {
      try {
        endpoint.send({ mmp: 'ipc', type: 'reply', id: e.id, result } satisfies Envelope);
      } catch {
        // The asker is gone; its own timeout or exit settles the rest.
      }
    });
  });
}

function sendRequest(
  endpoint: Endpoint,
  pending: Pending,
  name: string,
  body: unknown,
  timeoutMs: number,
  notes: Note[] = [],
): Promise<Result<unknown, IpcError>> {
  const { id, reply } = pending.open(timeoutMs);
  try {
    endpoint.send({
      mmp: 'ipc',
      type: 'request',
      name,
      id,
      body,
      ...(notes.length === 0 ? {} : { notes }),
    } satisfies Envelope);
  } catch {
    pending.fail(id, { kind: 'gone' });
  }
  return reply;
}

/** In the primary: the channel to its workers, each attached as it is forked. */
export class ClusterPrimary implements PrimaryChannel {
  private readonly handlers = new Handlers();
  private readonly workers = new Map<
    number,
    { endpoint: Endpoint; pending: Pending; stop: () => void }
  >();
  private readonly goneListeners: ((peer: Peer) => void)[] = [];

  /** `onBad`: a worker sent something that is not a valid message (logged by the caller). */
  constructor(private readonly onBad: (peer: Peer, reason: string) => void = () => undefined) {}

  handle<Req, Res>(kind: MessageKind<Req, Res>, handler: Handler<Req, Res>): void {
    this.handlers.add(kind, handler);
  }

  onWorkerGone(listener: (peer: Peer) => void): void {
    this.goneListeners.push(listener);
  }

  /** Start serving a worker's messages. */
  attach(peer: Peer, endpoint: Endpoint): void {
    const pending = new Pending();
    const stop = serveEndpoint(endpoint, peer, this.handlers, pending, (r) => this.onBad(peer, r));
    this.workers.set(peer.id, { endpoint, pending, stop });
  }

  /** The worker exited or its channel closed: fail what was asked of it, tell the listeners. */
  detach(peer: Peer): void {
    const w = this.workers.get(peer.id);
    if (w === undefined) return;
    this.workers.delete(peer.id);
    w.stop();
    w.pending.failAll({ kind: 'gone' });
    for (const l of this.goneListeners) l(peer);
  }

  async askWorkers<Req, Res>(
    kind: MessageKind<Req, Res>,
    request: Req,
    timeoutMs = IPC_REPLY_TIMEOUT_MS,
  ): Promise<Result<Res, IpcError>[]> {
    const asked = [...this.workers.values()].map((w) =>
      sendRequest(w.endpoint, w.pending, kind.name, request, timeoutMs),
    );
    return (await Promise.all(asked)) as Result<Res, IpcError>[];
  }
}

/** In a worker: the channel to the primary over `endpoint` (`process` in a cluster worker). */
export class ClusterWorker implements WorkerChannel {
  private readonly handlers = new Handlers();
  private readonly pending = new Pending();
  /** Notes held back for the next request to carry (`IPC_NOTE_BATCH_MS`). */
  private held: Note[] = [];
  private flushTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly endpoint: Endpoint,
    self: Peer,
    onBad: (reason: string) => void = () => undefined,
  ) {
    serveEndpoint(endpoint, self, this.handlers, this.pending, onBad);
  }

  /** The channel closed (the primary died): every request in flight fails now. */
  closed(): void {
    this.pending.failAll({ kind: 'gone' });
  }

  request<Req, Res>(
    kind: MessageKind<Req, Res>,
    request: Req,
    timeoutMs = IPC_REPLY_TIMEOUT_MS,
  ): Promise<Result<Res, IpcError>> {
    return sendRequest(
      this.endpoint,
      this.pending,
      kind.name,
      request,
      timeoutMs,
      this.takeHeld(),
    ) as Promise<Result<Res, IpcError>>;
  }

  notify<Req>(kind: MessageKind<Req, void>, request: Req): void {
    this.held.push({ name: kind.name, body: request });
    if (this.flushTimer !== undefined) return;
    this.flushTimer = setTimeout(() => this.flush(), IPC_NOTE_BATCH_MS);
    // Held notes never keep a stopping worker alive (what it held, the primary releases when
    // the worker is gone).
    this.flushTimer.unref();
  }

  /** Send the held notes now, on their own. */
  flush(): void {
    const notes = this.takeHeld();
    if (notes.length === 0) return;
    try {
      this.endpoint.send({ mmp: 'ipc', type: 'notes', notes } satisfies Envelope);
    } catch {
      // A note to a primary that is gone is lost with it.
    }
  }

  private takeHeld(): Note[] {
    if (this.flushTimer !== undefined) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    const notes = this.held;
    this.held = [];
    return notes;
  }

  answer<Req, Res>(
    kind: MessageKind<Req, Res>,
    handler: (request: Req) => Res | Promise<Res>,
  ): void {
    this.handlers.add(kind, handler);
  }
}

/**
 * One process, both ends: requests run the primary's handlers here, after the same check, on a
 * later turn of the event loop and within the same timeout as across processes.
 */
export function localFleet(): { primary: PrimaryChannel; worker: WorkerChannel } {
  const self: Peer = { id: 0, pid: process.pid };
  const toPrimary = new Handlers();
  const toWorker = new Handlers();
  const within = async (
    run: Promise<Result<unknown, IpcError>>,
    timeoutMs: number,
  ): Promise<Result<unknown, IpcError>> => {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<Result<unknown, IpcError>>((resolve) => {
      timer = setTimeout(() => resolve(err({ kind: 'timeout', ms: timeoutMs })), timeoutMs);
      timer.unref();
    });
    try {
      return await Promise.race([run, late]);
    } finally {
      clearTimeout(timer);
    }
  };
  const later = (
    name: string,
    body: unknown,
    table: Handlers,
  ): Promise<Result<unknown, IpcError>> =>
    new Promise((resolve) => setImmediate(() => resolve(table.run(name, body, self))));
  const primary: PrimaryChannel = {
    handle: (kind, handler) => toPrimary.add(kind, handler),
    async askWorkers<Req, Res>(
      kind: MessageKind<Req, Res>,
      request: Req,
      timeoutMs = IPC_REPLY_TIMEOUT_MS,
    ): Promise<Result<Res, IpcError>[]> {
      return [
        (await within(later(kind.name, request, toWorker), timeoutMs)) as Result<Res, IpcError>,
      ];
    },
    // The one process never leaves while it runs.
    onWorkerGone: () => undefined,
  };
  // A handler that waits gets the timeout a worker's request has; one that answers at once needs
  // none.
  const now = <Req, Res>(
    kind: MessageKind<Req, Res>,
    request: Req,
    timeoutMs = IPC_REPLY_TIMEOUT_MS,
  ): Result<Res, IpcError> | Promise<Result<Res, IpcError>> => {
    const answer = toPrimary.runNow(kind.name, request, self);
    return (answer instanceof Promise ? within(answer, timeoutMs) : answer) as
      Result<Res, IpcError> | Promise<Result<Res, IpcError>>;
  };
  const worker: WorkerChannel = {
    request: async (kind, request, timeoutMs) => now(kind, request, timeoutMs),
    requestNow: now,
    notify(kind, request) {
      void toPrimary.runNow(kind.name, request, self);
    },
    answer: (kind, handler) => toWorker.add(kind, (req) => handler(req)),
  };
  return { primary, worker };
}

/**
 * A worker's channel where some of the primary's services run in the worker itself: requests and
 * notices of `kinds` go to the services `register` puts on a `localFleet` here, as plain calls in
 * the caller's turn (as in the one process); every other kind goes to the primary (`remote`).
 * For state that this worker holds whole: the only worker's connection counts are the server's,
 * and asking the primary for them cost four messages per login (issue 18).
 */
export function withServicesHere(
  remote: WorkerChannel,
  kinds: readonly { readonly name: string }[],
  register: (primary: PrimaryChannel) => void,
): WorkerChannel {
  const here = localFleet();
  register(here.primary);
  const names = new Set(kinds.map((k) => k.name));
  const to = (name: string): WorkerChannel => (names.has(name) ? here.worker : remote);
  return {
    request: (kind, request, timeoutMs) => to(kind.name).request(kind, request, timeoutMs),
    requestNow: (kind, request, timeoutMs) =>
      names.has(kind.name)
        ? (here.worker.requestNow?.(kind, request, timeoutMs) ??
          here.worker.request(kind, request, timeoutMs))
        : remote.request(kind, request, timeoutMs),
    notify: (kind, request) => to(kind.name).notify(kind, request),
    answer: (kind, handler) => remote.answer(kind, handler),
  };
}
