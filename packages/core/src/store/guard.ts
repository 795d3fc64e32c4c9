/**
 * Redis down is not an outage: every store call bounded in time, a failure counted and reported
 * once per outage, and the store left alone for a moment after a failure (then tried again).
 */
import { DashScopeError } from '../errors.js';
import { unrefTimer } from '../timer.js';

/** Default milliseconds a store call may take before the provider gives up on it. */
export const DEFAULT_STORE_TIMEOUT_MS = 500;
/** Milliseconds the store is not asked after a failure (then the next call probes it). */
export const STORE_RETRY_AFTER_MS = 1_000;

/** Counters of the store tier, in `stats().store`. */
export interface StoreCounters {
  /** Tokens taken from the store instead of minted. */
  hits: number;
  /** Store calls that failed or timed out. */
  errors: number;
  /** Mints done locally because the store failed, timed out or was being left alone. */
  fallbacks: number;
}

const FAILED: unique symbol = Symbol('store call failed');
/** What a guarded call yields when the store failed: the caller falls back to local behaviour. */
export type Failed = typeof FAILED;

/** Whether a guarded call failed. */
export function failed<T>(value: T | Failed): value is Failed {
  return value === FAILED;
}

function storeError(detail: string, fallback: string, cause?: unknown): DashScopeError {
  return new DashScopeError({
    code: 'StoreUnavailable',
    status: 503,
    retryable: true,
    message: `The shared store ${detail}; ${fallback} until it answers again.`,
    ...(cause !== undefined && { cause }),
  });
}

/** Bounds and watches the calls to one store. */
export class StoreGuard {
  readonly counters: StoreCounters = { hits: 0, errors: 0, fallbacks: 0 };
  #healthy = true;
  #quietUntil = 0;

  constructor(
    private readonly timeoutMs: number,
    private readonly now: () => number,
    private readonly onStoreError: ((error: DashScopeError) => void) | undefined,
    /** What the caller does meanwhile, for the message. */
    private readonly fallback = 'minting locally',
  ) {}

  /** Whether the last store call answered. */
  get healthy(): boolean {
    return this.#healthy;
  }

  /** Whether the store is being left alone after a failure. */
  resting(): boolean {
    return !this.#healthy && this.now() < this.#quietUntil;
  }

  /** Runs `call` within the timeout; `FAILED` (never a rejection) when it fails or is too slow. */
  async call<T>(call: () => Promise<T>): Promise<T | Failed> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<Failed>((resolve) => {
      timer = setTimeout(() => resolve(FAILED), this.timeoutMs);
      unrefTimer(timer);
    });
    let pending: Promise<T>;
    try {
      pending = call();
    } catch (error) {
      clearTimeout(timer);
      this.#failure(storeError('threw', this.fallback, error));
      return FAILED;
    }
    // A late rejection after the timeout must not be "unhandled".
    pending.catch(() => {});
    try {
      const result = await Promise.race([pending, timeout]);
      if (failed(result)) {
        this.#failure(storeError(`did not answer within ${this.timeoutMs} ms`, this.fallback));
        return FAILED;
      }
      this.#healthy = true;
      return result;
    } catch (error) {
      this.#failure(
        storeError(
          `failed (${error instanceof Error ? error.message : String(error)})`,
          this.fallback,
          error,
        ),
      );
      return FAILED;
    } finally {
      clearTimeout(timer);
    }
  }

  #failure(error: DashScopeError): void {
    this.counters.errors++;
    this.#quietUntil = this.now() + STORE_RETRY_AFTER_MS;
    if (!this.#healthy) return;
    this.#healthy = false;
    if (this.onStoreError === undefined) return;
    try {
      this.onStoreError(error);
    } catch {
      // A broken reporter must not break the cache.
    }
  }
}
