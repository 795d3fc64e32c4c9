/**
 * Per-client concurrency of proxied HTTP requests (streams included): how many one client may
 * have in progress at once on one handler instance, so that one client cannot take the upstream
 * pool. Keyed like the rate limits (`Limits.clientOf`), counted in memory (a request in
 * progress belongs to this instance, not to the store). A slot is taken after admission and the
 * rate limit, before anything is sent upstream, and released exactly once when the answer ends,
 * is cut, or the client leaves. Runtime-neutral.
 */
import { invalidOption } from '../token/errors.js';
import type { Admitted, Refused } from './admission.js';
import type { ErrorAnswer } from './answers.js';
import { clientIdentity } from './client-identity.js';
import type { ClientFacts, Limits } from './limits.js';

/** Default proxied requests one client may have in progress at once (per handler instance). */
export const DEFAULT_CONCURRENT_REQUESTS = 16;

/** Counters of the per-client concurrency, in `stats().limits.concurrency`. */
export interface ConcurrencyStats {
  /** Proxied requests in progress, every client together. */
  inFlight: number;
  /** Clients with at least one proxied request in progress. */
  clients: number;
  /** Requests answered 429 `Throttling.ClientConcurrency`. */
  refused: number;
  /** The most one client may have in progress (`limits.concurrentRequests`). */
  perClient: number;
}

/** A request's place among its client's requests in progress: give it back once. */
export interface ConcurrencySlot {
  /** Gives the slot back; calls after the first do nothing. */
  release(): void;
}

/** The slot of a request nothing counts (per-client concurrency off). */
const UNCOUNTED: ConcurrencySlot = Object.freeze({ release() {} });

/**
 * `limits.concurrentRequests` resolved: the per-client maximum, or `undefined` when `false`.
 * @throws DashScopeError `InvalidParameter` for anything but an integer >= 1 or `false`.
 */
export function resolveConcurrentRequests(value: unknown): number | undefined {
  if (value === false) return undefined;
  if (value === undefined) return DEFAULT_CONCURRENT_REQUESTS;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw invalidOption(
      `Invalid limits.concurrentRequests ${String(value)}: expected an integer >= 1 (or false).`,
    );
  }
  return value;
}

function tooManyInProgress(max: number): ErrorAnswer {
  return {
    status: 429,
    code: 'Throttling.ClientConcurrency',
    message: `Too many requests in progress from this client (at most ${max} at once); retry when one has finished.`,
    retryAfterSeconds: 1,
    retryable: true,
  };
}

/** The requests in progress per client of one handler instance. */
export class ClientConcurrency {
  readonly #max: number;
  readonly #inFlight = new Map<string, number>();
  #total = 0;
  #refused = 0;

  constructor(max: number) {
    this.#max = max;
  }

  /** A slot for one more request of `client`, or the 429 to answer when it has its maximum. */
  take(client: string): ConcurrencySlot | ErrorAnswer {
    const current = this.#inFlight.get(client) ?? 0;
    if (current >= this.#max) {
      this.#refused++;
      return tooManyInProgress(this.#max);
    }
    this.#inFlight.set(client, current + 1);
    this.#total++;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.#total--;
        const left = (this.#inFlight.get(client) ?? 1) - 1;
        if (left <= 0) this.#inFlight.delete(client);
        else this.#inFlight.set(client, left);
      },
    };
  }

  stats(): ConcurrencyStats {
    return {
      inFlight: this.#total,
      clients: this.#inFlight.size,
      refused: this.#refused,
      perClient: this.#max,
    };
  }
}

/** A proxied request admitted within its client's concurrency. */
export interface Entered {
  /** The client it counts against (`key:…`, `id:…` or `ip:…`), also its place in the pool queue. */
  client: string;
  /** Its slot: release it once when the answer ends, is cut, or the client leaves. */
  slot: ConcurrencySlot;
}

/**
 * Takes a slot of the client's concurrency for an admitted proxied request (Model Studio or a
 * PAI-EAS service): a 429 `Throttling.ClientConcurrency` (retryable, `Retry-After: 1`) when the
 * client already has `limits.concurrentRequests` in progress, before anything is sent
 * upstream. With `limits: false` nothing is counted, and the client is named by its identity
 * or address alone (for the pool queue). A throwing `limits.key` answers 500 at admission
 * already, so it is not called again here for a refusal.
 */
export function enterProxy<Ctx>(
  limits: Limits<Ctx> | undefined,
  ctx: Ctx,
  admitted: Admitted,
  facts: ClientFacts,
): Entered | Refused {
  if (limits === undefined) {
    return { client: clientIdentity(undefined, ctx, admitted, facts).key, slot: UNCOUNTED };
  }
  let client: string;
  try {
    client = limits.clientOf(ctx, admitted, facts);
  } catch {
    // `limits.key` threw after it returned at admission: count the request by its address.
    client = `ip:${limits.addressOf(facts)}`;
  }
  const concurrency = limits.concurrency;
  if (concurrency === undefined) return { client, slot: UNCOUNTED };
  const slot = concurrency.take(client);
  if ('code' in slot) return { refused: slot };
  return { client, slot };
}
