/**
 * The token provider: a cache of temporary keys, one entry per API key (hashed), with
 * single-flight minting, refresh-ahead, clock-skew correction, stale-on-error and negative
 * caching of `InvalidApiKey`.
 */
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { DashScopeError, isDashScopeError } from './errors.js';
import { checkExpireInSeconds, mintTokenWithTiming, type TimedToken } from './mint.js';
import { resolveBaseUrl } from './regions.js';
import { resolveRetryOptions, retrying } from './retry.js';
import type {
  GetTokenOptions,
  MintTokenOptions,
  TemporaryToken,
  TokenProvider,
  TokenProviderOptions,
  TokenProviderStats,
} from './types.js';
import { withSecrets } from './upstream-errors.js';

/** Default most API keys with a cached token. */
export const DEFAULT_MAX_KEYS = 1000;
/** Default minimum remaining life of a token handed out, seconds. */
export const DEFAULT_MIN_VALIDITY_SECONDS = 5;
/** Default seconds an `InvalidApiKey` answer is remembered. */
export const DEFAULT_NEGATIVE_CACHE_SECONDS = 10;

/** A cached token and where its life ends on the local clock. */
interface Entry {
  /** Frozen: handed to every caller. */
  readonly token: TemporaryToken;
  /** Already resolved with `token`: what a cache hit returns (no allocation). */
  readonly promise: Promise<TemporaryToken>;
  /** Local ms after which the token must be treated as expired (skew-corrected, conservative). */
  readonly expiresAt: number;
  /** Local ms before which no background refresh starts (half the token's life). */
  readonly refreshFrom: number;
}

/** A mint in progress for one cache key, shared by every caller of that key. */
interface Flight {
  promise: Promise<Entry>;
  /** Started by a cache hit in the refresh window (no caller waits for it). */
  readonly background: boolean;
  /** Whether its failure was already reported to `onRefreshError`. */
  reported: boolean;
}

interface NegativeEntry {
  readonly error: DashScopeError;
  /** Local ms until which the error is re-thrown without asking upstream. */
  readonly until: number;
}

function invalid(message: string): DashScopeError {
  return new DashScopeError({ code: 'InvalidParameter', status: 400, retryable: false, message });
}

function nonNegative(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw invalid(`Invalid ${name} ${String(value)}: expected a number >= 0.`);
  }
  return value;
}

function closedError(): DashScopeError {
  return new DashScopeError({
    code: 'ProviderClosed',
    status: 503,
    retryable: false,
    message: 'The token provider is closed (close() was called); create a new one.',
  });
}

function missingKeyError(): DashScopeError {
  return new DashScopeError({
    code: 'MissingApiKey',
    status: 500,
    retryable: false,
    message:
      'No Model Studio API key: pass `apiKey` to createTokenProvider or getToken, or set the DASHSCOPE_API_KEY environment variable.',
  });
}

function abortedWaitError(): DashScopeError {
  return new DashScopeError({
    code: 'Aborted',
    status: 499,
    retryable: false,
    message: 'Aborted by the caller while waiting for a temporary key.',
  });
}

const noop = (): void => {};

/**
 * Creates a cache of temporary keys in front of {@link mintToken}.
 *
 * - A call gets a cached token when it has at least `minValiditySeconds` of life left (hit).
 *   Within the refresh window it still gets it at once, and one background mint replaces it.
 * - Otherwise (miss, `forceRefresh`) it waits for the one mint in flight for that key, or starts
 *   it: 10,000 concurrent cold calls make one request.
 * - When a mint fails but the cached token still satisfies the call, the call gets the cached
 *   token (the failure is counted and passed to `onRefreshError`); otherwise the error surfaces.
 * - An `InvalidApiKey` answer drops the key's token and is re-thrown without asking Model Studio
 *   for `negativeCacheSeconds`.
 * - Expiry is placed on the local clock using the server's `Date` header (1 s resolution,
 *   corrected conservatively) and is never later than the request's start plus the TTL.
 *
 * Entries are keyed by a SHA-256 hash of API key, base URL and TTL; the raw key is not stored.
 *
 * @throws DashScopeError `InvalidParameter` at once for invalid options (endpoint, TTL, windows).
 * @example
 * const tokens = createTokenProvider({ region: 'ap-southeast-1' }); // key from DASHSCOPE_API_KEY
 * const { token } = await tokens.getToken();
 */
export function createTokenProvider(options: TokenProviderOptions = {}): TokenProvider {
  const opts: TokenProviderOptions = options ?? {};
  const baseUrl = withSecrets(
    () => resolveBaseUrl(opts),
    typeof opts.apiKey === 'string' ? [opts.apiKey] : [],
  );
  const ttl = checkExpireInSeconds(opts.expireInSeconds);
  const ttlMs = ttl * 1000;

  const maxKeys = opts.maxKeys ?? DEFAULT_MAX_KEYS;
  if (typeof maxKeys !== 'number' || !Number.isInteger(maxKeys) || maxKeys < 1) {
    throw invalid(`Invalid maxKeys ${String(maxKeys)}: expected an integer >= 1.`);
  }
  const refreshAheadMs =
    opts.refreshAheadSeconds === undefined
      ? Math.min(Math.max(0.2 * ttl, 5), ttl / 2) * 1000
      : Math.min(nonNegative(opts.refreshAheadSeconds, 'refreshAheadSeconds'), ttl) * 1000;
  const toMinValidityMs = (value: unknown): number => {
    const seconds = nonNegative(value, 'minValiditySeconds');
    if (seconds >= ttl) {
      throw invalid(
        `minValiditySeconds ${seconds} is not below expireInSeconds ${ttl}: no token can have that much life left. Lower minValiditySeconds or raise expireInSeconds.`,
      );
    }
    // Never hand out a token at the very instant it expires.
    return Math.max(1, seconds * 1000);
  };
  const defaultMinValidityMs = toMinValidityMs(
    opts.minValiditySeconds ?? Math.min(DEFAULT_MIN_VALIDITY_SECONDS, ttl / 2),
  );
  const negativeMs =
    nonNegative(
      opts.negativeCacheSeconds ?? DEFAULT_NEGATIVE_CACHE_SECONDS,
      'negativeCacheSeconds',
    ) * 1000;
  const retryPolicy = resolveRetryOptions(opts.retry);
  const now = opts.now ?? Date.now;
  const onRefreshError = opts.onRefreshError;

  const mintOptions: Omit<MintTokenOptions, 'apiKey'> = {
    baseUrl,
    expireInSeconds: ttl,
    ...(opts.dispatcher !== undefined && { dispatcher: opts.dispatcher }),
    ...(opts.connectTimeoutMs !== undefined && { connectTimeoutMs: opts.connectTimeoutMs }),
    ...(opts.timeoutMs !== undefined && { timeoutMs: opts.timeoutMs }),
  };
  const customMint = opts.mint;
  const mint: (apiKey: string, signal: AbortSignal) => Promise<TimedToken> =
    customMint === undefined
      ? (apiKey, signal) => mintTokenWithTiming({ ...mintOptions, apiKey, signal, now })
      : async (apiKey, signal) => {
          const requestStartedAt = now();
          const token = await customMint({ ...mintOptions, apiKey, signal });
          if (
            token === null ||
            typeof token !== 'object' ||
            typeof token.token !== 'string' ||
            token.token === '' ||
            typeof token.expiresAt !== 'number' ||
            !Number.isFinite(token.expiresAt)
          ) {
            throw new DashScopeError({
              code: 'BadGateway',
              status: 502,
              retryable: false,
              message: 'The custom mint function returned no {token, expiresAt}.',
            });
          }
          return { token, requestStartedAt, responseReceivedAt: now() };
        };

  const envKey = process.env.DASHSCOPE_API_KEY;
  const defaultKey =
    opts.apiKey !== undefined
      ? opts.apiKey
      : envKey !== undefined && envKey !== ''
        ? envKey
        : undefined;
  const hashKey = (apiKey: string): string =>
    createHash('sha256').update(`${apiKey}\0${baseUrl}\0${ttl}`).digest('base64url').slice(0, 32);
  const defaultHash =
    typeof defaultKey === 'string' && defaultKey !== '' ? hashKey(defaultKey) : undefined;

  const cache = new LRUCache<string, Entry>({ max: maxKeys });
  const negative = new LRUCache<string, NegativeEntry>({ max: maxKeys });
  const inflight = new Map<string, Flight>();
  const closer = new AbortController();
  let closed = false;
  let closing: Promise<void> | undefined;
  let hits = 0;
  let misses = 0;
  let mints = 0;
  let errors = 0;

  const report = (error: DashScopeError): void => {
    if (onRefreshError === undefined) return;
    try {
      onRefreshError(error);
    } catch {
      // A broken reporter must not break the cache.
    }
  };

  const toEntry = (timed: TimedToken): Entry => {
    const { token, serverDate, requestStartedAt, responseReceivedAt } = timed;
    // The server stamped `Date` somewhere between our request start and its receipt, and `Date`
    // is truncated to the second: assume the largest server-ahead offset that fits.
    const corrected =
      serverDate === undefined
        ? token.expiresAt * 1000
        : token.expiresAt * 1000 - (serverDate + 1000 - requestStartedAt);
    const expiresAt = Math.min(requestStartedAt + ttlMs, corrected);
    const frozen: TemporaryToken = Object.freeze({
      token: token.token,
      expiresAt: token.expiresAt,
    });
    return {
      token: frozen,
      promise: Promise.resolve(frozen),
      expiresAt,
      refreshFrom: responseReceivedAt + (expiresAt - responseReceivedAt) / 2,
    };
  };

  const runFlight = async (key: string, apiKey: string, flight: Flight): Promise<Entry> => {
    try {
      const timed = await retrying(() => mint(apiKey, closer.signal), retryPolicy, {
        signal: closer.signal,
        onAttemptError: () => {
          errors++;
        },
      });
      if (closed) throw closedError();
      mints++;
      const entry = toEntry(timed);
      cache.set(key, entry);
      negative.delete(key);
      return entry;
    } catch (caught) {
      const error = closed
        ? closedError()
        : isDashScopeError(caught)
          ? caught
          : new DashScopeError({
              code: 'InternalError',
              status: 500,
              retryable: false,
              message: `Minting a temporary key failed: ${caught instanceof Error ? caught.message : String(caught)}`,
              secrets: [apiKey],
            });
      if (error.code === 'InvalidApiKey') {
        cache.delete(key);
        if (negativeMs > 0) negative.set(key, { error, until: now() + negativeMs });
      }
      if (flight.background && !closed) {
        flight.reported = true;
        report(error);
      }
      throw error;
    } finally {
      if (inflight.get(key) === flight) inflight.delete(key);
    }
  };

  const startFlight = (key: string, apiKey: string, background: boolean): Flight => {
    const flight: Flight = {
      promise: undefined as unknown as Promise<Entry>,
      background,
      reported: false,
    };
    flight.promise = runFlight(key, apiKey, flight);
    // Waiters attach their own handlers; this one keeps a refresh nobody awaits from being "unhandled".
    flight.promise.catch(noop);
    inflight.set(key, flight);
    return flight;
  };

  const waitWithSignal = (promise: Promise<Entry>, signal: AbortSignal): Promise<Entry> =>
    new Promise<Entry>((resolve, reject) => {
      const onAbort = (): void => reject(abortedWaitError());
      signal.addEventListener('abort', onAbort, { once: true });
      promise.then(
        (entry) => {
          signal.removeEventListener('abort', onAbort);
          resolve(entry);
        },
        (error: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(error);
        },
      );
    });

  const miss = async (
    key: string,
    apiKey: string,
    minValidityMs: number,
    signal: AbortSignal | undefined,
  ): Promise<TemporaryToken> => {
    misses++;
    const refused = negative.get(key);
    if (refused !== undefined) {
      if (refused.until > now()) throw refused.error;
      negative.delete(key);
    }
    if (signal?.aborted) throw abortedWaitError();
    const flight = inflight.get(key) ?? startFlight(key, apiKey, false);
    let entry: Entry;
    try {
      entry = await (signal === undefined
        ? flight.promise
        : waitWithSignal(flight.promise, signal));
    } catch (error) {
      if (closed) throw closedError();
      if (signal?.aborted) throw error;
      // Stale-on-error: the token we still hold may be good enough for this caller.
      const current = cache.peek(key);
      if (current !== undefined && current.expiresAt - now() >= minValidityMs) {
        if (!flight.reported && isDashScopeError(error)) {
          flight.reported = true;
          report(error);
        }
        return current.token;
      }
      throw error;
    }
    const remainingMs = entry.expiresAt - now();
    if (remainingMs >= minValidityMs) return entry.token;
    throw new DashScopeError({
      code: 'BadGateway',
      status: 502,
      retryable: false,
      message: `A freshly minted temporary key has ${Math.max(0, Math.floor(remainingMs / 1000))} s of life left (after clock-skew correction), less than minValiditySeconds ${minValidityMs / 1000}. Lower minValiditySeconds, raise expireInSeconds, or check the server clock.`,
    });
  };

  const getToken = (call?: GetTokenOptions): Promise<TemporaryToken> => {
    if (closed) return Promise.reject(closedError());
    let key = defaultHash;
    let apiKey = defaultKey;
    let minValidityMs = defaultMinValidityMs;
    let forceRefresh = false;
    let signal: AbortSignal | undefined;
    if (call !== undefined) {
      const callKey = call.apiKey;
      if (callKey !== undefined && callKey !== defaultKey) {
        if (typeof callKey !== 'string' || callKey === '') return Promise.reject(missingKeyError());
        apiKey = callKey;
        key = hashKey(callKey);
      }
      if (call.minValiditySeconds !== undefined) {
        try {
          minValidityMs = toMinValidityMs(call.minValiditySeconds);
        } catch (error) {
          return Promise.reject(error);
        }
      }
      forceRefresh = call.forceRefresh === true;
      signal = call.signal;
    }
    if (key === undefined || apiKey === undefined) return Promise.reject(missingKeyError());
    if (!forceRefresh) {
      const entry = cache.get(key);
      if (entry !== undefined) {
        const t = now();
        const remainingMs = entry.expiresAt - t;
        if (remainingMs >= minValidityMs) {
          if (
            remainingMs < minValidityMs + refreshAheadMs &&
            t >= entry.refreshFrom &&
            !inflight.has(key)
          ) {
            startFlight(key, apiKey, true);
          }
          hits++;
          return entry.promise;
        }
      }
    }
    return miss(key, apiKey, minValidityMs, signal);
  };

  const keyOf = (apiKey: string | undefined): string | undefined => {
    if (apiKey === undefined || apiKey === defaultKey) return defaultHash;
    return typeof apiKey === 'string' && apiKey !== '' ? hashKey(apiKey) : undefined;
  };

  return {
    getToken,
    invalidate(apiKey?: string): void {
      const key = keyOf(apiKey);
      if (key === undefined) return;
      cache.delete(key);
      negative.delete(key);
    },
    stats(): TokenProviderStats {
      return { hits, misses, mints, errors, size: cache.size };
    },
    close(): Promise<void> {
      if (closing !== undefined) return closing;
      closed = true;
      closer.abort(closedError());
      cache.clear();
      negative.clear();
      const pending = [...inflight.values()].map((flight) => flight.promise.catch(noop));
      closing = Promise.all(pending).then(noop);
      return closing;
    },
  };
}
