/**
 * What the stores' POP3 CAPA (RFC 2449 §5) said, of what the login replay uses (`replay.ts`):
 * asked once per store at its first login, believed for STORE_CAPA_TTL_MS.
 */

/** How long what a store said to CAPA is believed. */
export const STORE_CAPA_TTL_MS = 10 * 60_000;

/** What a store's CAPA listed, of what the replay uses. */
export interface StoreCapa {
  /** RFC 2449 §6.6: USER and PASS may go in one write. */
  pipelining: boolean;
  /** The store takes the client's address by XCLIENT. */
  xclient: boolean;
}

/** What each store's CAPA said, by `host:port`: one per runtime (`proxyRuntime.ts`). */
export class StoreCapabilities {
  private readonly known = new Map<string, { capa: StoreCapa; until: number }>();

  constructor(
    private readonly ttlMs = STORE_CAPA_TTL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** What the store said, or undefined when it was not asked yet (or too long ago). */
  get(store: string): StoreCapa | undefined {
    const entry = this.known.get(store);
    if (entry === undefined || entry.until <= this.now()) return undefined;
    return entry.capa;
  }

  set(store: string, capa: StoreCapa): void {
    this.known.set(store, { capa, until: this.now() + this.ttlMs });
  }
}
