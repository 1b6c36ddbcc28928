/**
 * Property tests as fuzz targets (issue 13, point 7), for every package's `.property.test.ts`
 * (imported as `@mmp/testbed/fuzz`). One `fuzzTest` is one target: a fast-check
 * property run `MMP_FUZZ_RUNS` times (`scripts/fuzz` sets 1,000,000), or the small CI count the
 * test names when the variable is unset, so that `pnpm test` stays quick. `MMP_FUZZ_SEED`
 * replays a run (the failure message prints the seed and the shrunk counterexample).
 *
 * Each target records what it did in the test's `meta.fuzz` (inputs, failures, seed), which
 * `scripts/fuzz` reads from vitest's JSON report to print its table.
 */

import fc from 'fast-check';
import { it } from 'vitest';

export interface FuzzMeta {
  /** Inputs the property was checked on (up to and including a failing one). */
  inputs: number;
  failures: number;
  seed: number;
}

declare module 'vitest' {
  interface TaskMeta {
    fuzz?: FuzzMeta;
  }
}

function envNumber(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${name} must be a positive integer`);
  return n;
}

/** Cases per target: MMP_FUZZ_RUNS when set, else the CI count. */
export function fuzzRuns(ciRuns: number): number {
  return envNumber('MMP_FUZZ_RUNS') ?? ciRuns;
}

/**
 * A target: `property` checked on `fuzzRuns(ciRuns)` inputs. A failure throws fast-check's own
 * report (seed, path, shrunk counterexample).
 */
export function fuzzTest<Ts extends [unknown, ...unknown[]]>(
  name: string,
  property: fc.IProperty<Ts>,
  ciRuns: number,
): void {
  const runs = fuzzRuns(ciRuns);
  const seed = envNumber('MMP_FUZZ_SEED');
  // A million inputs take minutes on a loaded machine; the CI count stays within the default.
  const timeout = runs > ciRuns ? 0 : undefined;
  it(
    name,
    ({ task }) => {
      const details = fc.check(property, {
        numRuns: runs,
        ...(seed === undefined ? {} : { seed }),
      });
      task.meta.fuzz = {
        inputs: details.numRuns,
        failures: details.failed ? 1 : 0,
        seed: details.seed,
      };
      if (details.failed) throw new Error(fc.defaultReportMessage(details));
    },
    timeout,
  );
}

/** Input split into chunks at the given cut points (sorted, deduplicated), as reads would be. */
export function splitAt(input: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (input.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const p of [...points, input.length]) {
    if (p > from) chunks.push(Buffer.from(input.subarray(from, p)));
    from = Math.max(from, p);
  }
  return chunks;
}

/** The same input one byte per read. */
export function bytewise(input: Buffer): Buffer[] {
  return [...input].map((b) => Buffer.of(b));
}
