// The parent side of the load generator: forks worker processes (each under the 20,000 open
// files a process may hold), hands them jobs, collects results; kills them on exit.
import { fork, type ChildProcess } from 'node:child_process';
import { setPriority } from 'node:os';
import { pinProcesses } from '../pin.js';
import type { IdleJob, IdleProgress } from './scenarios.js';
import type { AnyJob, AnyResult } from './jobs.js';

const WORKER = new URL('./worker.js', import.meta.url);
const live = new Set<ChildProcess>();
let hooked = false;

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

function spawnWorker(): ChildProcess {
  hook();
  const child = fork(WORKER, [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: ['--max-old-space-size=4096'],
  });
  live.add(child);
  child.once('exit', () => live.delete(child));
  // a message to a worker that has just exited (EPIPE) must not end the benchmark
  child.on('error', () => undefined);
  return child;
}

export interface RunOptions {
  /** a job reached a mark of its measured window ('start', 'end') */
  onMark?: (job: number, name: 'start' | 'end') => void;
  /** pin the worker processes to these CPUs (taskset list) */
  cpus?: string;
  /** a job's worker's nice value (setpriority), e.g. 19 for work that must only take idle CPU */
  niceOf?: (job: AnyJob) => number | undefined;
}

/** Run each job in a worker process of its own, all at once; resolves with every result. */
export function runJobs<R extends AnyResult>(
  jobs: readonly AnyJob[],
  timeoutMs: number,
  options: RunOptions = {},
): Promise<R[]> {
  return Promise.all(
    jobs.map(
      (job, index) =>
        new Promise<R>((resolve, reject) => {
          const child = spawnWorker();
          if (options.cpus !== undefined && child.pid !== undefined)
            pinProcesses([child.pid], options.cpus);
          const nice = options.niceOf?.(job);
          if (nice !== undefined && child.pid !== undefined) setPriority(child.pid, nice);
          let settled = false;
          const timer = setTimeout(() => {
            child.kill('SIGKILL');
            finish(new Error(`load worker (${job.kind}) did not finish within ${timeoutMs} ms`));
          }, timeoutMs);
          const finish = (error: Error | undefined, result?: R): void => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            if (error !== undefined) reject(error);
            else resolve(result as R);
          };
          child.on(
            'message',
            (m: {
              type: string;
              result?: R;
              message?: string;
              name?: 'start' | 'end';
              id?: number;
            }) => {
              if (m.type === 'result') finish(undefined, m.result);
              else if (m.type === 'error') finish(new Error(m.message));
              else if (m.type === 'mark' && m.name !== undefined) {
                options.onMark?.(index, m.name);
                // a login job's worker may already be gone: its marks need no answer
                if (child.connected) child.send({ type: 'marked', id: m.id }, () => undefined);
              }
            },
          );
          // 'close', not 'exit': a worker exits right after sending a large result, and 'exit'
          // can come before the last messages of its channel have been read
          child.once('close', (code, signal) =>
            finish(new Error(`load worker exited (${code ?? signal}) without a result`)),
          );
          child.send({ type: 'job', job });
        }),
    ),
  );
}

/** Idle sessions held by several worker processes, ramped up together. */
export class IdleFleet {
  private readonly children: ChildProcess[] = [];
  private readonly progress: IdleProgress[] = [];
  private readonly errors: string[] = [];

  constructor(jobs: readonly IdleJob[]) {
    jobs.forEach((job, i) => {
      const child = spawnWorker();
      this.children.push(child);
      this.progress[i] = { kind: 'idle', held: 0, failed: 0, opening: true, sampleErrors: [] };
      child.on('message', (m: { type: string; progress?: IdleProgress; message?: string }) => {
        if (m.type === 'progress' && m.progress !== undefined) this.progress[i] = m.progress;
        else if (m.type === 'error') {
          this.errors.push(m.message ?? 'error');
          const p = this.progress[i];
          if (p !== undefined) p.opening = false;
        }
      });
      child.once('exit', () => {
        const p = this.progress[i];
        if (p !== undefined) p.opening = false;
      });
      child.send({ type: 'job', job });
    });
  }

  get held(): number {
    return this.progress.reduce((sum, p) => sum + p.held, 0);
  }

  get failed(): number {
    return this.progress.reduce((sum, p) => sum + p.failed, 0);
  }

  get opening(): boolean {
    return this.progress.some((p) => p.opening);
  }

  get sampleErrors(): string[] {
    return [...this.errors, ...this.progress.flatMap((p) => p.sampleErrors)].slice(0, 5);
  }

  stopOpening(): void {
    for (const c of this.children) if (c.connected) c.send({ type: 'stop' });
  }

  /** Close every session and end the workers. */
  async release(): Promise<void> {
    await Promise.all(
      this.children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            const timer = setTimeout(() => {
              c.kill('SIGKILL');
              resolve();
            }, 10_000);
            c.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            if (c.connected) c.send({ type: 'release' });
            else c.kill('SIGKILL');
          }),
      ),
    );
  }
}
