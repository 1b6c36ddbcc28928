// A load-generator process: forked by pool.ts, runs one job and reports over IPC, then exits.
// Messages in:  {type:'job', job} | {type:'stop'} (idle: stop opening) | {type:'release'}
// Messages out: {type:'result', result} | {type:'progress', progress} | {type:'error', message}
// ({type:'mark', name, id}: a job's measured window begins or ends; the parent answers
//  {type:'marked', id} once it has sampled)
import { IdleRamp, type IdleJob } from './scenarios.js';
import { type AnyJob, runAnyJob } from './jobs.js';

type Incoming =
  | { type: 'job'; job: AnyJob | IdleJob }
  | { type: 'stop' }
  | { type: 'release' }
  | { type: 'marked'; id: number };

const markWaiters = new Map<number, () => void>();
let nextMark = 0;

function mark(name: 'start' | 'end'): Promise<void> {
  const id = nextMark++;
  return new Promise((resolve) => {
    markWaiters.set(id, resolve);
    send({ type: 'mark', name, id });
  });
}

function send(message: unknown, then?: () => void): void {
  process.send?.(message, undefined, {}, () => then?.());
}

let ramp: IdleRamp | undefined;

process.on('message', (message: Incoming) => {
  if (message.type === 'job') {
    const { job } = message;
    if (job.kind === 'idle') {
      ramp = new IdleRamp(job);
      const current = ramp;
      const timer = setInterval(
        () => send({ type: 'progress', progress: current.progress() }),
        250,
      );
      current.run().then(
        () => send({ type: 'progress', progress: current.progress() }),
        (error: unknown) => {
          clearInterval(timer);
          send({ type: 'error', message: String(error) });
        },
      );
      return;
    }
    runAnyJob(job, mark).then(
      (result) => {
        // disconnect once the result is written, not while it is still queued
        send({ type: 'result', result }, () => process.disconnect?.());
      },
      (error: unknown) => {
        const text = error instanceof Error ? error.message : String(error);
        send({ type: 'error', message: text }, () => process.disconnect?.());
      },
    );
  } else if (message.type === 'marked') {
    markWaiters.get(message.id)?.();
    markWaiters.delete(message.id);
  } else if (message.type === 'stop') {
    ramp?.stopOpening();
  } else if (message.type === 'release') {
    ramp?.release();
    send({ type: 'released' });
    setTimeout(() => process.exit(0), 50);
  }
});

// The parent went away: nothing to do here any more.
process.on('disconnect', () => {
  ramp?.release();
  setTimeout(() => process.exit(0), 100).unref();
});
