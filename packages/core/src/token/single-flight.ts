/**
 * Single-flight: at most one mint in progress per cache key, shared by every caller of that key,
 * and a caller's own signal that stops its wait without stopping the shared mint.
 */

/** A task in progress for one key, shared by every caller of that key. */
export interface Flight<T> {
  promise: Promise<T>;
  /** Started without a caller waiting for it (a refresh-ahead). */
  readonly background: boolean;
  /** Whether its failure was already reported. */
  reported: boolean;
}

const noop = (): void => {};

/** The flights in progress, one per key. *
 * @internal Shared with the sibling packages through `@dashscope-token/core/neutral`.
 */
export class SingleFlight<T> {
  readonly #flights = new Map<string, Flight<T>>();

  /** The flight in progress for `key`, if any. */
  get(key: string): Flight<T> | undefined {
    return this.#flights.get(key);
  }

  has(key: string): boolean {
    return this.#flights.has(key);
  }

  /**
   * Starts `run` as the flight of `key`; it leaves the table when it settles. Its rejection is
   * handled here too, so that a flight nobody awaits is never "unhandled".
   */
  start(key: string, background: boolean, run: (flight: Flight<T>) => Promise<T>): Flight<T> {
    const flight: Flight<T> = {
      promise: undefined as unknown as Promise<T>,
      background,
      reported: false,
    };
    flight.promise = (async () => {
      try {
        return await run(flight);
      } finally {
        if (this.#flights.get(key) === flight) this.#flights.delete(key);
      }
    })();
    flight.promise.catch(noop);
    this.#flights.set(key, flight);
    return flight;
  }

  /** Resolves once every flight in progress now has settled (never rejects). */
  settled(): Promise<void> {
    return Promise.all([...this.#flights.values()].map((f) => f.promise.catch(noop))).then(noop);
  }
}

/**
 * `promise`, or a rejection with `abortError()` as soon as `signal` fires (the promise itself
 * goes on for its other waiters).
 *
 * @internal Shared with the sibling packages through `@dashscope-token/core/neutral`.
 */
export function waitWithSignal<T>(
  promise: Promise<T>,
  signal: AbortSignal,
  abortError: () => Error,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortError());
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
