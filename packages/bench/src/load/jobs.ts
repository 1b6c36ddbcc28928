// Every job a load process can run, and the one dispatcher the worker calls.
import { type AttackJob, type AttackSummary, runAttack } from './hostile.js';
import { type Job, type JobResult, type Mark, runJob } from './scenarios.js';
import { type SteadyJob, type SteadyResult, runSteady } from './steady.js';

export type AnyJob = Job | SteadyJob | AttackJob;
export type AnyResult = JobResult | SteadyResult | AttackSummary;

export function runAnyJob(job: AnyJob, mark: Mark): Promise<AnyResult> {
  switch (job.kind) {
    case 'steady':
      return runSteady(job);
    case 'attack':
      return runAttack(job);
    default:
      return runJob(job, mark);
  }
}
