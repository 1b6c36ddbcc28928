/**
 * MaxConcurrentConnectionAttempts (later releases): at most that many login attempts in flight to
 * one store, from connecting to the store's answer to the replayed login. When a store is dead or
 * hung, every user on it would otherwise wait the whole StoreConnectTimeout, piling up sessions
 * (and descriptors) behind it; and when a store restarts, the whole population reconnecting at
 * once would be thrown at it in one burst. An attempt over the cap is not made: the store is
 * skipped like a down one (the next mailHost is tried at once, or the user gets the
 * temporary-failure answer).
 *
 * A store that did not answer in time (connect or greeting timeout) counts as down for
 * STORE_DOWN_AFTER_TIMEOUT_MS; after that, one probe attempt goes through while the others are
 * still skipped, and its outcome decides: an answer clears the mark, another timeout renews it.
 * Refusals (ECONNREFUSED) are not marked: they cost nothing to retry.
 *
 * Per process (like the stores' connections themselves): with NumThreads each worker counts its
 * own attempts, so a store sees at most NumThreads × the cap.
 */

import { STORE_DOWN_AFTER_TIMEOUT_MS } from './limits.js';

export type AttemptOutcome =
  /** The store answered (accepted, refused, or failed quickly): it is alive or cheaply dead. */
  | 'answered'
  /** No connection or no greeting within the time allowed: the store may be hung. */
  | 'timeout';

export type Acquired =
  { ok: true; release(outcome: AttemptOutcome): void } | { ok: false; reason: string };

interface StoreState {
  inFlight: number;
  /** Marked down until this time (0: not marked). */
  downUntil: number;
  /** A probe attempt is in flight after the down period. */
  probing: boolean;
}

export class StoreAttempts {
  private readonly stores = new Map<string, StoreState>();

  constructor(
    private readonly downMs: number = STORE_DOWN_AFTER_TIMEOUT_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Ask to start one attempt on `store` (its `host:port`), under a cap of `max` in flight. */
  acquire(store: string, max: number): Acquired {
    let s = this.stores.get(store);
    if (s === undefined) {
      s = { inFlight: 0, downUntil: 0, probing: false };
      this.stores.set(store, s);
    }
    let probe = false;
    if (s.downUntil > 0) {
      if (this.now() < s.downUntil) return { ok: false, reason: 'marked down after a timeout' };
      if (s.probing) return { ok: false, reason: 'marked down, a probe is in flight' };
      probe = true;
    } else if (s.inFlight >= max) {
      return { ok: false, reason: `${max} connection attempts already in flight` };
    }
    const state = s;
    state.inFlight++;
    if (probe) state.probing = true;
    let released = false;
    return {
      ok: true,
      release: (outcome) => {
        if (released) return;
        released = true;
        state.inFlight--;
        if (probe) state.probing = false;
        if (outcome === 'timeout') state.downUntil = this.now() + this.downMs;
        else if (probe || state.downUntil > 0) state.downUntil = 0;
        // Forget idle, healthy stores: the map stays as small as the stores in use.
        if (state.inFlight === 0 && state.downUntil === 0) this.stores.delete(store);
      },
    };
  }

  /** Attempts in flight to `store` (tests, logs). */
  inFlight(store: string): number {
    return this.stores.get(store)?.inFlight ?? 0;
  }
}
