/**
 * The token provider: a cache of temporary keys, one entry per API key (hashed), composed of
 * resolved options, single-flight minting, refresh-ahead, clock-skew correction, stale-on-error
 * and negative caching of `InvalidApiKey`.
 */
import { LRUCache } from 'lru-cache';
import { DashScopeError, isDashScopeError } from '../errors.js';
import type { Telemetry } from '../policy/telemetry.js';
import type {
  GetTokenOptions,
  TemporaryToken,
  TokenProvider,
  TokenProviderOptions,
  TokenProviderStats,
} from '../types.js';
import { abortedWaitError, closedError, missingKeyError } from './errors.js';
import type { Entry } from './expiry.js';
import type { DefaultTransport } from './mint.js';
import { resolveProviderOptions } from './options.js';
import {
  type Counters,
  inRefreshWindow,
  type NegativeEntry,
  type RefreshContext,
  type RefreshRequest,
  refresh,
  reportRefreshError,
} from './refresh.js';
import { SingleFlight, waitWithSignal } from './single-flight.js';

const noop = (): void => {};

/**
 * The provider behind each entry point's `createTokenProvider`, minting through
 * `options.transport`, else through `defaultTransport(options)`, and publishing its mints and
 * refresh failures on `telemetry`'s channels.
 *
 * @throws DashScopeError `InvalidParameter` at once for invalid options (endpoint, TTL, windows).
 */
export function composeTokenProvider(
  options: TokenProviderOptions,
  defaultTransport: DefaultTransport,
  telemetry?: Telemetry,
): TokenProvider {
  const settings = resolveProviderOptions(options, defaultTransport, telemetry);
  const { now, defaultKey, defaultCacheKey } = settings;
  const cache = new LRUCache<string, Entry>({ max: settings.maxKeys });
  const negative = new LRUCache<string, NegativeEntry>({ max: settings.maxKeys });
  const flights = new SingleFlight<Entry>();
  const closer = new AbortController();
  const counters: Counters = { hits: 0, misses: 0, mints: 0, errors: 0 };
  const context: RefreshContext = {
    settings,
    cache,
    negative,
    counters,
    closing: closer.signal,
  };
  let closing: Promise<void> | undefined;
  const closed = (): boolean => closer.signal.aborted;

  const startRefresh = (request: RefreshRequest, background: boolean) =>
    flights.start(request.key, background, (flight) => refresh(context, request, flight));

  const miss = async (
    request: RefreshRequest,
    signal: AbortSignal | undefined,
  ): Promise<TemporaryToken> => {
    counters.misses++;
    const refused = negative.get(request.key);
    if (refused !== undefined) {
      if (refused.until > now()) throw refused.error;
      negative.delete(request.key);
    }
    if (signal?.aborted) throw abortedWaitError();
    return join(request, signal);
  };

  /** Waits for the flight of the request's key, started if there is none. */
  const join = async (
    request: RefreshRequest,
    signal: AbortSignal | undefined,
  ): Promise<TemporaryToken> => {
    const { key, minValidityMs } = request;
    const flight = flights.get(key) ?? startRefresh(request, false);
    let entry: Entry;
    try {
      entry = await (signal === undefined
        ? flight.promise
        : waitWithSignal(flight.promise, signal, abortedWaitError));
    } catch (error) {
      if (closed()) throw closedError();
      if (signal?.aborted) throw error;
      // Stale-on-error: the token we still hold may be good enough for this caller.
      const current = cache.peek(key);
      if (current !== undefined && current.expiresAt - now() >= minValidityMs) {
        if (!flight.reported && isDashScopeError(error)) {
          flight.reported = true;
          reportRefreshError(settings, error, request.apiKey);
        }
        return current.token;
      }
      throw error;
    }
    const remainingMs = entry.expiresAt - now();
    if (remainingMs >= minValidityMs) return entry.token;
    // Another instance's token, read for a caller that needed less life: mint one for this caller.
    if (entry.shared === true && !request.fresh) return join({ ...request, fresh: true }, signal);
    throw new DashScopeError({
      code: 'BadGateway',
      status: 502,
      retryable: false,
      message: `A freshly minted temporary key has ${Math.max(0, Math.floor(remainingMs / 1000))} s of life left (after clock-skew correction), less than minValiditySeconds ${minValidityMs / 1000}. Lower minValiditySeconds, raise expireInSeconds, or check the server clock.`,
    });
  };

  const getToken = (call?: GetTokenOptions): Promise<TemporaryToken> => {
    if (closed()) return Promise.reject(closedError());
    let key = defaultCacheKey;
    let apiKey = defaultKey;
    let minValidityMs = settings.defaultMinValidityMs;
    let forceRefresh = false;
    let signal: AbortSignal | undefined;
    if (call !== undefined) {
      const callKey = call.apiKey;
      if (callKey !== undefined && callKey !== defaultKey) {
        if (typeof callKey !== 'string' || callKey === '') return Promise.reject(missingKeyError());
        apiKey = callKey;
        key = settings.cacheKey(callKey);
      }
      if (call.minValiditySeconds !== undefined) {
        try {
          minValidityMs = settings.minValidityMs(call.minValiditySeconds);
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
        if (entry.expiresAt - t >= minValidityMs) {
          if (
            inRefreshWindow(entry, t, minValidityMs, settings.refreshAheadMs) &&
            !flights.has(key)
          ) {
            startRefresh(
              { key, apiKey, minValidityMs: settings.defaultMinValidityMs, fresh: false },
              true,
            );
          }
          counters.hits++;
          return entry.promise;
        }
      }
    }
    return miss({ key, apiKey, minValidityMs, fresh: forceRefresh }, signal);
  };

  const keyOf = (apiKey: string | undefined): string | undefined => {
    if (apiKey === undefined || apiKey === defaultKey) return defaultCacheKey;
    return typeof apiKey === 'string' && apiKey !== '' ? settings.cacheKey(apiKey) : undefined;
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
      const { hits, misses, mints, errors } = counters;
      const stats: TokenProviderStats = { hits, misses, mints, errors, size: cache.size };
      const shared = settings.shared;
      if (shared !== undefined)
        stats.store = { ...shared.guard.counters, healthy: shared.guard.healthy };
      return stats;
    },
    close(): Promise<void> {
      if (closing !== undefined) return closing;
      closer.abort(closedError());
      cache.clear();
      negative.clear();
      closing = flights.settled().then(noop);
      return closing;
    },
  };
}
