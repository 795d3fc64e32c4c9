/**
 * Re-mints after an upstream 401, rate-limited per permanent key. A 401 to a proxied call
 * means the injected key was refused (expired early, clock skew), and the proxy evicts it and
 * mints another; but a client that can make Model Studio answer 401 at will (a path or
 * parameter that answers 401 whatever the key) would otherwise cost one mint, and an eviction
 * of the key every other request shares, per request. At most one re-mint per key per
 * {@link REMINT_INTERVAL_MS}; a 401 beyond that is answered without a replay (502
 * `InvalidApiKey`, as a 401 to the replay is).
 */

/** Shortest interval between two re-mints after an upstream 401 for one permanent key, ms. */
export const REMINT_INTERVAL_MS = 10_000;

/** Most permanent keys whose last re-mint is remembered (the oldest is forgotten beyond). */
const MAX_TRACKED_KEYS = 1024;

/** When each permanent key was last re-minted after a 401 (per handler). */
export class RemintLimiter {
  private readonly last = new Map<string, number>();

  constructor(private readonly intervalMs: number = REMINT_INTERVAL_MS) {}

  /** Whether `apiKey` may be re-minted at `now` (ms); if so, counts it. */
  allow(apiKey: string, now: number = Date.now()): boolean {
    const last = this.last.get(apiKey);
    if (last !== undefined && now - last < this.intervalMs) return false;
    this.last.delete(apiKey);
    this.last.set(apiKey, now);
    if (this.last.size > MAX_TRACKED_KEYS) {
      const oldest = this.last.keys().next().value;
      if (oldest !== undefined) this.last.delete(oldest);
    }
    return true;
  }
}
