/**
 * MaxConcurrentConnectionAttempts (later releases): at most that many login attempts in flight to
 * one store, from connecting to the store's greeting (or its answer, when it fails before
 * greeting). Not through the authentication that follows: a store takes its time to refuse a
 * wrong password on purpose, and an attacker's wrong passwords would hold every slot. When a store is dead or
 * hung, every user on it would otherwise wait the whole StoreConnectTimeout, piling up sessions
 * (and descriptors) behind it; and when a store restarts, the whole population reconnecting at
 * once would be thrown at it in one burst.
 *
 * An attempt over the cap waits for a slot while the store is making progress (a healthy store
 * finishes a login in milliseconds, so a burst of logins is only smoothed, never refused). It is
 * refused at once — the store skipped like a down one: the next mailHost is tried, or the user
 * gets the temporary-failure answer — when the store is not making progress: no attempt finished
 * for STORE_STALLED_AFTER_MS while the cap is reached (a hung store), or it is marked down.
 *
 * A store that did not answer in time (connect or greeting timeout) counts as down for
 * STORE_DOWN_AFTER_TIMEOUT_MS; after that, one probe attempt goes through while the others are
 * still skipped, and its outcome decides: an answer clears the mark, another timeout renews it.
 * Refusals (ECONNREFUSED) are not marked: they cost nothing to retry. While marked, a background
 * probe (`probe`, given by the login path: connect and read a greeting) runs every
 * STORE_PROBE_INTERVAL_MS; the first greeting clears the mark, so that a store that was only frozen
 * (SIGSTOP, a long pause) serves again within seconds of answering, not after the whole down
 * period (issue 14: a chaos run saw 30 s).
 *
 * Per process (like the stores' connections themselves): with NumThreads each worker counts its
 * own attempts, so a store sees at most NumThreads × the cap.
 */

import {
  STORE_DOWN_AFTER_TIMEOUT_MS,
  STORE_PROBE_INTERVAL_MS,
  STORE_STALLED_AFTER_MS,
} from './limits.js';

/** Whether the store greets now (a new connection, closed at once). */
export type StoreProbe = () => Promise<boolean>;

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
  /** When an attempt last finished, or the store last became busy. */
  progressAt: number;
  /** Attempts waiting for a slot, oldest first. */
  waiting: ((a: Acquired) => void)[];
  /** Fires when the store would count as stalled (one timer per store, not per waiter). */
  stallTimer: NodeJS.Timeout | undefined;
  /** The background probe while marked down. */
  probeTimer: NodeJS.Timeout | undefined;
}

export class StoreAttempts {
  private readonly stores = new Map<string, StoreState>();

  constructor(
    private readonly downMs: number = STORE_DOWN_AFTER_TIMEOUT_MS,
    private readonly stalledMs: number = STORE_STALLED_AFTER_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Ask to start one attempt on `store` (its `host:port`), under a cap of `max` in flight. */
  acquire(store: string, max: number, probe?: StoreProbe): Promise<Acquired> {
    let s = this.stores.get(store);
    if (s === undefined) {
      s = {
        inFlight: 0,
        downUntil: 0,
        probing: false,
        progressAt: this.now(),
        waiting: [],
        stallTimer: undefined,
        probeTimer: undefined,
      };
      this.stores.set(store, s);
    }
    if (s.downUntil > 0) {
      if (this.now() < s.downUntil)
        return Promise.resolve({ ok: false, reason: 'marked down after a timeout' });
      if (s.probing)
        return Promise.resolve({ ok: false, reason: 'marked down, a probe is in flight' });
      s.probing = true;
      return Promise.resolve(this.grant(store, s, true, probe));
    }
    if (s.inFlight < max) return Promise.resolve(this.grant(store, s, false, probe));
    if (this.now() - s.progressAt >= this.stalledMs) return Promise.resolve(this.stalled(max));
    const state = s;
    return new Promise((resolve) => {
      state.waiting.push(resolve);
      this.armStallTimer(store, state, max);
    });
  }

  /** The stores with attempts in flight, waiting, or marked down (metrics, status page); idle
   * healthy stores are forgotten (tidy). */
  states(): { store: string; inFlight: number; down: boolean }[] {
    const t = this.now();
    return [...this.stores].map(([store, s]) => ({
      store,
      inFlight: s.inFlight,
      down: s.downUntil > t || s.probing,
    }));
  }

  /** Attempts in flight to `store` (tests, logs). */
  inFlight(store: string): number {
    return this.stores.get(store)?.inFlight ?? 0;
  }

  private stalled(max: number): Acquired {
    return {
      ok: false,
      reason: `${max} connection attempts in flight, none finished for ${this.stalledMs} ms`,
    };
  }

  private grant(
    store: string,
    state: StoreState,
    probe: boolean,
    check: StoreProbe | undefined,
  ): Acquired {
    if (state.inFlight === 0) state.progressAt = this.now();
    state.inFlight++;
    let released = false;
    return {
      ok: true,
      release: (outcome) => {
        if (released) return;
        released = true;
        state.inFlight--;
        state.progressAt = this.now();
        if (probe) state.probing = false;
        if (outcome === 'timeout') {
          state.downUntil = this.now() + this.downMs;
          // Whoever waits for this store would only wait for the next timeout.
          for (const w of state.waiting.splice(0))
            w({ ok: false, reason: 'marked down after a timeout' });
          if (check !== undefined) this.armProbe(store, state, check);
        } else if (probe || state.downUntil > 0) {
          state.downUntil = 0;
        }
        const next = state.downUntil === 0 ? state.waiting.shift() : undefined;
        if (next !== undefined) next(this.grant(store, state, false, check));
        this.tidy(store, state);
      },
    };
  }

  private armStallTimer(store: string, state: StoreState, max: number): void {
    if (state.stallTimer !== undefined) return;
    const wait = Math.max(1, state.progressAt + this.stalledMs - this.now());
    state.stallTimer = setTimeout(() => {
      state.stallTimer = undefined;
      if (state.waiting.length === 0) return this.tidy(store, state);
      if (this.now() - state.progressAt >= this.stalledMs) {
        for (const w of state.waiting.splice(0)) w(this.stalled(max));
        this.tidy(store, state);
      } else this.armStallTimer(store, state, max);
    }, wait);
    state.stallTimer.unref();
  }

  /** While `state` is marked down: probe every STORE_PROBE_INTERVAL_MS; a greeting clears it. */
  private armProbe(store: string, state: StoreState, check: StoreProbe): void {
    if (state.probeTimer !== undefined) return;
    state.probeTimer = setTimeout(() => {
      void check().then((alive) => {
        state.probeTimer = undefined;
        if (state.downUntil === 0) return this.tidy(store, state);
        if (alive && !state.probing) {
          state.downUntil = 0;
          this.tidy(store, state);
        } else this.armProbe(store, state, check);
      });
    }, STORE_PROBE_INTERVAL_MS);
    state.probeTimer.unref();
  }

  /** Forget idle, healthy stores: the map stays as small as the stores in use. */
  private tidy(store: string, state: StoreState): void {
    if (state.inFlight > 0 || state.downUntil > 0 || state.waiting.length > 0) return;
    if (state.probeTimer !== undefined) return;
    if (state.stallTimer !== undefined) clearTimeout(state.stallTimer);
    state.stallTimer = undefined;
    this.stores.delete(store);
  }
}
