/**
 * Property tests as fuzz targets (issue 13, point 7), in the same shape as the proxy's
 * (`packages/proxy/src/test-support/fuzz.ts`), so that `scripts/fuzz` runs and tabulates both:
 * one `fuzzTest` is one target, a fast-check property checked `MMP_FUZZ_RUNS` times (10^6 from
 * `pnpm fuzz` / scripts/fuzz), else the small CI count given, so that `pnpm test` stays quick.
 * `MMP_FUZZ_SEED` replays a failure (the report prints the seed and the shrunk counterexample).
 * Each target records `meta.fuzz` (inputs, failures, seed) for scripts/fuzz's table.
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
  if (!Number.isSafeInteger(n)) throw new Error(`${name} must be an integer`);
  return n;
}

/** Cases per target: MMP_FUZZ_RUNS when set, else the CI count. */
export function fuzzRuns(ciRuns: number): number {
  const n = envNumber('MMP_FUZZ_RUNS');
  return n !== undefined && n > 0 ? n : ciRuns;
}

/** A target: `property` checked on `fuzzRuns(ciRuns)` inputs; a failure throws fast-check's report. */
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
