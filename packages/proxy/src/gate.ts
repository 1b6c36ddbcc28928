/**
 * A bounded number of operations in flight, with a bounded queue of waiters each waiting a bounded
 * time: what keeps a login flood, or a slow neighbour, from turning into an unbounded pile of
 * requests on it (directory searches, PreAuth binds; the limits are in `limits.ts`). A waiter that
 * cannot get in is told so, as a value, at once (queue full) or when its wait is over.
 */

export type Entered = { ok: true; leave(): void } | { ok: false; reason: string };

interface Waiter {
  admit(entered: Entered): void;
  timer: NodeJS.Timeout;
}

export class Gate {
  private inside = 0;
  private readonly waiting: Waiter[] = [];

  constructor(
    /** Operations in flight at once. */
    private readonly max: number,
    /** Waiters beyond them; one more is refused at once. */
    private readonly maxWaiting: number,
  ) {}

  get inFlight(): number {
    return this.inside;
  }

  /** Enter within `waitMs`; leave() exactly once when done. */
  enter(waitMs: number): Promise<Entered> {
    if (this.inside < this.max) return Promise.resolve(this.admitted());
    if (this.waiting.length >= this.maxWaiting)
      return Promise.resolve({
        ok: false,
        reason: `${this.max} in flight and ${this.maxWaiting} waiting`,
      });
    return new Promise((resolve) => {
      const waiter: Waiter = {
        admit: resolve,
        timer: setTimeout(() => {
          const i = this.waiting.indexOf(waiter);
          if (i >= 0) this.waiting.splice(i, 1);
          resolve({
            ok: false,
            reason: `${this.max} in flight, none finished within ${waitMs} ms`,
          });
        }, waitMs),
      };
      waiter.timer.unref();
      this.waiting.push(waiter);
    });
  }

  private admitted(): Entered {
    this.inside++;
    let left = false;
    return {
      ok: true,
      leave: () => {
        if (left) return;
        left = true;
        this.inside--;
        const next = this.waiting.shift();
        if (next === undefined) return;
        clearTimeout(next.timer);
        next.admit(this.admitted());
      },
    };
  }
}
