/**
 * Unknown users are answered no sooner than stores refuse a wrong password (`login.ts`): the
 * answers' texts are the same, and their timing must not tell either which names exist.
 */

import { MAX_UNKNOWN_USER_HOLD_MS } from './limits.js';

/**
 * How long stores take to refuse a wrong password (a store adds its own failure delay, Dovecot's
 * auth_failure_delay; the directory alone answers in milliseconds). One per runtime
 * (`proxyRuntime.ts`), a level that jumps to the slowest recent refusal (whole login
 * duration) and decays towards faster ones: erring on the slow side is what hides the difference.
 */
export class RefusalTiming {
  private levelMs: number | undefined;

  observe(ms: number): void {
    this.levelMs = this.levelMs === undefined ? ms : Math.max(ms, this.levelMs * 0.8 + ms * 0.2);
  }

  /** How much longer to hold the answer for an unknown user that took `elapsedMs` so far. */
  holdFor(elapsedMs: number, random: () => number = Math.random): number {
    if (this.levelMs === undefined) return 0;
    // ±10 % jitter, so that the hold itself is not a constant to subtract.
    const target = Math.min(MAX_UNKNOWN_USER_HOLD_MS, this.levelMs * (0.9 + 0.2 * random()));
    return Math.max(0, Math.round(target - elapsedMs));
  }
}
