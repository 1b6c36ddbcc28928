/**
 * The channel between real processes: a node:cluster worker running the built `dist/ipc.js`,
 * forked the way `workers.ts` forks (structured-clone serialization).
 */
import cluster, { type Worker } from 'node:cluster';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from './test-support/tempDirs.js';
import { ClusterPrimary, type Peer, messageKind, workerEndpoint } from './ipc.js';

const IPC_JS = new URL('../dist/ipc.js', import.meta.url).href;

const COUNT = messageKind<{ ip: string }, number>(
  'test.count',
  (v): v is { ip: string } => typeof (v as { ip?: unknown } | null)?.ip === 'string',
);
const FILES = messageKind<null, { name: string; bytes: Uint8Array }>(
  'test.files',
  (v): v is null => v === null,
);

/** The worker: asks COUNT twice, answers FILES with bytes, reports what it got, then waits. */
const WORKER = `
import cluster from 'node:cluster';
import { ClusterWorker, messageKind, primaryEndpoint } from ${JSON.stringify(IPC_JS)};
const COUNT = messageKind('test.count', (v) => typeof v?.ip === 'string');
const FILES = messageKind('test.files', (v) => v === null);
const REPORT = messageKind('test.report', () => true);
const w = new ClusterWorker(primaryEndpoint(), { id: cluster.worker.id, pid: process.pid });
w.answer(FILES, () => ({ name: 'key.pem', bytes: Buffer.from([0, 1, 2, 255]) }));
const a = await w.request(COUNT, { ip: '192.0.2.1' });
const b = await w.request(COUNT, { ip: 42 });
w.notify(REPORT, { a, b });
`;

let worker: Worker | undefined;
afterAll(() => {
  worker?.kill();
});

describe('ipc between a real primary and a cluster worker', () => {
  it('requests, checks, replies, notes and the primary asking the worker, with bytes intact', async () => {
    const dir = await tempDir('mmp-ipc-');
    const script = join(dir, 'worker.mjs');
    await writeFile(script, WORKER);
    cluster.setupPrimary({ exec: script, serialization: 'advanced', silent: false });
    const primary = new ClusterPrimary();
    let n = 0;
    primary.handle(COUNT, () => ++n);
    const report = new Promise<unknown>((resolve) =>
      primary.handle(
        messageKind<unknown>('test.report', (_v): _v is unknown => true),
        (r) => resolve(r),
      ),
    );
    const gone = new Promise<Peer>((resolve) => primary.onWorkerGone(resolve));
    worker = cluster.fork();
    const peer = { id: worker.id, pid: worker.process.pid ?? 0 };
    primary.attach(peer, workerEndpoint(worker));
    worker.once('exit', () => primary.detach(peer));

    expect(await report).toEqual({
      a: { ok: true, value: 1 },
      b: { ok: false, error: { kind: 'failed', message: 'malformed test.count request' } },
    });
    const [files] = await primary.askWorkers(FILES, null);
    expect(files?.ok).toBe(true);
    if (files?.ok) {
      expect(files.value.name).toBe('key.pem');
      expect([...files.value.bytes]).toEqual([0, 1, 2, 255]);
    }
    worker.kill();
    expect(await gone).toEqual(peer);
  });
});
