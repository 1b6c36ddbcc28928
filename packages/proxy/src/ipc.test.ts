import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import {
  ClusterPrimary,
  ClusterWorker,
  type Endpoint,
  type Peer,
  localFleet,
  messageKind,
  withServicesHere,
} from './ipc.js';

interface Count {
  ip: string;
}
const isCount = (v: unknown): v is Count =>
  typeof v === 'object' && v !== null && typeof (v as { ip?: unknown }).ip === 'string';
const COUNT = messageKind<Count, number>('test.count', isCount);
const NOTE = messageKind<Count>('test.note', isCount);
const SCRAPE = messageKind<null, string>('test.scrape', (v): v is null => v === null);

/** Two ends of a channel between "processes": messages are cloned and arrive on a later turn. */
function pipePair(): { a: Endpoint; b: Endpoint; cut(): void } {
  const toA = new EventEmitter();
  const toB = new EventEmitter();
  let open = true;
  const end = (inbox: EventEmitter, outbox: EventEmitter): Endpoint => ({
    send(m) {
      if (!open) throw new Error('channel closed');
      const copy = structuredClone(m);
      setImmediate(() => outbox.emit('message', copy));
    },
    listen(f) {
      inbox.on('message', f);
      return () => inbox.off('message', f);
    },
  });
  return { a: end(toA, toB), b: end(toB, toA), cut: () => (open = false) };
}

function cluster(n: number): { primary: ClusterPrimary; workers: ClusterWorker[]; peers: Peer[] } {
  const primary = new ClusterPrimary();
  const workers: ClusterWorker[] = [];
  const peers: Peer[] = [];
  for (let i = 1; i <= n; i++) {
    const { a, b } = pipePair();
    const peer = { id: i, pid: 1000 + i };
    primary.attach(peer, a);
    workers.push(new ClusterWorker(b, peer));
    peers.push(peer);
  }
  return { primary, workers, peers };
}

describe('ipc across processes', () => {
  it('one count shared by every worker: each request answered by the primary, with who asked', async () => {
    const { primary, workers } = cluster(2);
    const counts = new Map<string, number>();
    const askers: number[] = [];
    primary.handle(COUNT, (req, from) => {
      askers.push(from.id);
      const n = (counts.get(req.ip) ?? 0) + 1;
      counts.set(req.ip, n);
      return n;
    });
    const [w1, w2] = workers;
    expect(await w1?.request(COUNT, { ip: '192.0.2.1' })).toEqual({ ok: true, value: 1 });
    expect(await w2?.request(COUNT, { ip: '192.0.2.1' })).toEqual({ ok: true, value: 2 });
    expect(await w2?.request(COUNT, { ip: '192.0.2.9' })).toEqual({ ok: true, value: 1 });
    expect(askers).toEqual([1, 2, 2]);
  });

  it('an async handler answers; a throwing one becomes a failed reply, not a crash', async () => {
    const { primary, workers } = cluster(1);
    primary.handle(COUNT, async (req) => {
      await new Promise((r) => setTimeout(r, 5));
      if (req.ip === 'bad') throw new Error('no such address');
      return 7;
    });
    const w = workers[0];
    expect(await w?.request(COUNT, { ip: '192.0.2.1' })).toEqual({ ok: true, value: 7 });
    expect(await w?.request(COUNT, { ip: 'bad' })).toEqual({
      ok: false,
      error: { kind: 'failed', message: 'no such address' },
    });
  });

  it('a request failing its check never reaches the handler (the worker is the untrusted side)', async () => {
    const { primary, workers } = cluster(1);
    let called = 0;
    primary.handle(COUNT, () => ++called);
    const forged = workers[0]?.request(COUNT, { ip: 42 } as unknown as Count);
    expect(await forged).toEqual({
      ok: false,
      error: { kind: 'failed', message: 'malformed test.count request' },
    });
    expect(called).toBe(0);
  });

  it('a kind nobody handles is an error value', async () => {
    const { workers } = cluster(1);
    expect(await workers[0]?.request(COUNT, { ip: '192.0.2.1' })).toEqual({
      ok: false,
      error: { kind: 'unhandled', name: 'test.count' },
    });
  });

  it('a primary that does not answer in time: a timeout error, and the late reply is ignored', async () => {
    const { primary, workers } = cluster(1);
    let release: () => void = () => undefined;
    primary.handle(COUNT, () => new Promise<number>((r) => (release = () => r(1))));
    const r = await workers[0]?.request(COUNT, { ip: '192.0.2.1' }, 20);
    expect(r).toEqual({ ok: false, error: { kind: 'timeout', ms: 20 } });
    release();
    await new Promise((res) => setTimeout(res, 10));
  });

  it('notes arrive one-way, in order', async () => {
    const { primary, workers } = cluster(1);
    const seen: string[] = [];
    let done: () => void = () => undefined;
    const all = new Promise<void>((r) => (done = r));
    primary.handle(NOTE, (req) => {
      seen.push(req.ip);
      if (seen.length === 3) done();
    });
    for (const ip of ['a', 'b', 'c']) workers[0]?.notify(NOTE, { ip });
    await all;
    expect(seen).toEqual(['a', 'b', 'c']);
  });

  it('notes wait for the next request and travel in its message, run before it; without one they go on their own', async () => {
    const { a, b } = pipePair();
    const sent: unknown[] = [];
    const counted: Endpoint = {
      send: (m) => {
        sent.push(m);
        b.send(m);
      },
      listen: (f) => b.listen(f),
    };
    const peer = { id: 1, pid: 1001 };
    const primary = new ClusterPrimary();
    primary.attach(peer, a);
    const worker = new ClusterWorker(counted, peer);
    const seen: string[] = [];
    primary.handle(NOTE, (req) => {
      seen.push(`note ${req.ip}`);
    });
    primary.handle(COUNT, (req) => seen.push(`count ${req.ip}`));
    worker.notify(NOTE, { ip: 'a' });
    worker.notify(NOTE, { ip: 'b' });
    expect(await worker.request(COUNT, { ip: 'c' })).toEqual({ ok: true, value: 3 });
    expect(seen).toEqual(['note a', 'note b', 'count c']);
    expect(sent).toHaveLength(1);
    worker.notify(NOTE, { ip: 'd' });
    const deadline = Date.now() + 2_000;
    while (!seen.includes('note d') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 5));
    expect(seen.at(-1)).toBe('note d');
    expect(sent).toHaveLength(2);
  });

  it('a request whose notes are malformed is refused whole as a bad message', async () => {
    const { a, b } = pipePair();
    const bad: string[] = [];
    const primary = new ClusterPrimary((_peer, reason) => bad.push(reason));
    primary.attach({ id: 1, pid: 1001 }, a);
    let counted = 0;
    primary.handle(COUNT, () => ++counted);
    b.send({ mmp: 'ipc', type: 'request', name: 'test.count', id: 1, body: { ip: 'x' }, notes: 7 });
    b.send({ mmp: 'ipc', type: 'notes', notes: [{ body: 1 }] });
    await new Promise((r) => setTimeout(r, 20));
    expect(bad).toEqual(['malformed ipc envelope', 'malformed ipc envelope']);
    expect(counted).toBe(0);
  });

  it('the primary asks every worker and gets one answer each', async () => {
    const { primary, workers } = cluster(3);
    workers.forEach((w, i) => w.answer(SCRAPE, () => `worker ${i + 1}`));
    const replies = await primary.askWorkers(SCRAPE, null);
    expect(replies.map((r) => (r.ok ? r.value : r.error)).sort()).toEqual([
      'worker 1',
      'worker 2',
      'worker 3',
    ]);
  });

  it('a worker that goes away: its pending questions fail, and the listeners hear of it', async () => {
    const { primary, peers } = cluster(2);
    const gone: Peer[] = [];
    primary.onWorkerGone((p) => gone.push(p));
    // Nobody answers SCRAPE in the workers: the first one leaves while asked.
    const asked = primary.askWorkers(SCRAPE, null, 1_000);
    const [first] = peers;
    if (first !== undefined) primary.detach(first);
    const replies = await asked;
    expect(replies.map((r) => (r.ok ? 'ok' : r.error.kind)).sort()).toEqual(['gone', 'unhandled']);
    expect(gone).toEqual([first]);
  });

  it('the primary gone: a worker request in flight fails at once', async () => {
    const primary = new ClusterPrimary();
    const { a, b } = pipePair();
    const worker = new ClusterWorker(b, { id: 1, pid: 1 });
    primary.attach({ id: 1, pid: 1 }, a);
    primary.handle(COUNT, () => new Promise<number>(() => undefined));
    const r = worker.request(COUNT, { ip: '192.0.2.1' }, 10_000);
    await new Promise((res) => setTimeout(res, 5));
    worker.closed();
    expect(await r).toEqual({ ok: false, error: { kind: 'gone' } });
  });

  it('a kind handled twice is a programming error, said at once', () => {
    const primary = new ClusterPrimary();
    primary.handle(COUNT, () => 1);
    expect(() => primary.handle(COUNT, () => 2)).toThrow(/handled twice/);
  });
});

describe('ipc in one process (NumThreads 0)', () => {
  it('the same calls answer in-process, with the same check', async () => {
    const { primary, worker } = localFleet();
    let n = 0;
    primary.handle(COUNT, (_req, from) => {
      expect(from).toEqual({ id: 0, pid: process.pid });
      return ++n;
    });
    expect(await worker.request(COUNT, { ip: '192.0.2.1' })).toEqual({ ok: true, value: 1 });
    expect(await worker.request(COUNT, { ip: 1 } as unknown as Count)).toEqual({
      ok: false,
      error: { kind: 'failed', message: 'malformed test.count request' },
    });
    expect(await worker.request(NOTE, { ip: 'x' })).toEqual({
      ok: false,
      error: { kind: 'unhandled', name: 'test.note' },
    });
  });

  it('a handler that answers at once is answered in this turn (requestNow) and notify runs it at once; one that waits keeps its timeout', async () => {
    const { primary, worker } = localFleet();
    let n = 0;
    primary.handle(COUNT, () => ++n);
    primary.handle(NOTE, () => {
      n += 10;
    });
    expect(worker.requestNow?.(COUNT, { ip: '192.0.2.1' })).toEqual({ ok: true, value: 1 });
    worker.notify(NOTE, { ip: '192.0.2.1' });
    expect(n).toBe(11);
    expect(worker.requestNow?.(COUNT, { ip: 1 } as unknown as Count)).toEqual({
      ok: false,
      error: { kind: 'failed', message: 'malformed test.count request' },
    });
    const slow = localFleet();
    slow.primary.handle(COUNT, () => new Promise<number>(() => undefined));
    const waiting = slow.worker.requestNow?.(COUNT, { ip: 'a' }, 20);
    expect(waiting).toBeInstanceOf(Promise);
    expect(await waiting).toEqual({ ok: false, error: { kind: 'timeout', ms: 20 } });
  });

  it('asking "every worker" asks this process; a slow handler times out', async () => {
    const { primary, worker } = localFleet();
    worker.answer(SCRAPE, () => 'me');
    expect(await primary.askWorkers(SCRAPE, null)).toEqual([{ ok: true, value: 'me' }]);
    primary.handle(COUNT, () => new Promise<number>(() => undefined));
    expect(await worker.request(COUNT, { ip: 'a' }, 20)).toEqual({
      ok: false,
      error: { kind: 'timeout', ms: 20 },
    });
  });
});

describe('services run in the one worker (withServicesHere)', () => {
  it('kinds named are answered in the worker, in this turn; every other kind still goes to the primary', async () => {
    const { primary, workers } = cluster(1);
    const [remote] = workers;
    if (remote === undefined) throw new Error('no worker');
    let primaryCounts = 0;
    primary.handle(COUNT, () => ++primaryCounts);
    primary.handle(SCRAPE, () => 'from the primary');
    let hereCounts = 0;
    let notes = 0;
    const fleet = withServicesHere(remote, [COUNT, NOTE], (here) => {
      here.handle(COUNT, () => ++hereCounts);
      here.handle(NOTE, () => {
        notes++;
      });
    });
    expect(fleet.requestNow?.(COUNT, { ip: '192.0.2.1' })).toEqual({ ok: true, value: 1 });
    expect(await fleet.request(COUNT, { ip: '192.0.2.1' })).toEqual({ ok: true, value: 2 });
    fleet.notify(NOTE, { ip: '192.0.2.1' });
    expect(notes).toBe(1);
    expect(primaryCounts).toBe(0);
    // Not one of its kinds: across the channel, and a promise even through requestNow.
    const scraped = fleet.requestNow?.(SCRAPE, null);
    expect(scraped).toBeInstanceOf(Promise);
    expect(await scraped).toEqual({ ok: true, value: 'from the primary' });
    // The check still applies to what runs here.
    expect(fleet.requestNow?.(COUNT, { ip: 1 } as unknown as Count)).toEqual({
      ok: false,
      error: { kind: 'failed', message: 'malformed test.count request' },
    });
  });

  it('what the primary asks the worker is answered as before', async () => {
    const { primary, workers } = cluster(1);
    const [remote] = workers;
    if (remote === undefined) throw new Error('no worker');
    const fleet = withServicesHere(remote, [COUNT], () => undefined);
    fleet.answer(SCRAPE, () => 'the worker');
    expect(await primary.askWorkers(SCRAPE, null)).toEqual([{ ok: true, value: 'the worker' }]);
  });
});
