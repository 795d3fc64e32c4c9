/**
 * Refreshing a key's token: one mint (with retries) that replaces the cached entry, forgets or
 * records an `InvalidApiKey`, and reports failures nobody saw; and the refresh-ahead window in
 * which a cache hit starts such a mint in the background.
 */
import type { LRUCache } from 'lru-cache';
import { DashScopeError, isDashScopeError } from '../errors.js';
import { apiKeyHash } from '../key-hash.js';
import { retrying } from '../retry.js';
import { closedError } from './errors.js';
import { type Entry, toEntry } from './expiry.js';
import type { ProviderSettings } from './options.js';
import type { Flight } from './single-flight.js';

/** An `InvalidApiKey` answer remembered for a key. */
export interface NegativeEntry {
  readonly error: DashScopeError;
  /** Local ms until which the error is re-thrown without asking upstream. */
  readonly until: number;
}

/** Counters shared by the parts of one provider. */
export interface Counters {
  hits: number;
  misses: number;
  mints: number;
  errors: number;
}

/** What a refresh reads and writes. */
export interface RefreshContext {
  readonly settings: ProviderSettings;
  readonly cache: LRUCache<string, Entry>;
  readonly negative: LRUCache<string, NegativeEntry>;
  readonly counters: Counters;
  /** Fires on `close()`: aborts mints and retry waits. */
  readonly closing: AbortSignal;
}

/**
 * Passes `error` to `onRefreshError`, ignoring anything the reporter throws, and publishes it
 * on `dashscope-token:token:refresh-error`.
 */
export function reportRefreshError(
  settings: ProviderSettings,
  error: DashScopeError,
  apiKey: string,
): void {
  settings.telemetry?.refreshFailed(apiKeyHash(apiKey), error);
  if (settings.onRefreshError === undefined) return;
  try {
    settings.onRefreshError(error);
  } catch {
    // A broken reporter must not break the cache.
  }
}

/**
 * Whether a cache hit at local time `t` should start a background refresh: the entry has less
 * than `minValidityMs + refreshAheadMs` of life left and half of its life has passed.
 */
export function inRefreshWindow(
  entry: Entry,
  t: number,
  minValidityMs: number,
  refreshAheadMs: number,
): boolean {
  return entry.expiresAt - t < minValidityMs + refreshAheadMs && t >= entry.refreshFrom;
}

/** What a flight is for. */
export interface RefreshRequest {
  readonly key: string;
  readonly apiKey: string;
  /** Life the token must have left, ms (for a token read from the shared store). */
  readonly minValidityMs: number;
  /** Mint rather than read the shared store first (`forceRefresh`). */
  readonly fresh: boolean;
}

/**
 * Gets a new token for `apiKey` (from the shared store when one is configured, else or failing
 * that by minting, retrying what is retryable) and caches it under `key`; the body of a flight.
 * Failures become `DashScopeError`s; `ProviderClosed` once the provider is closed.
 */
export async function refresh(
  context: RefreshContext,
  request: RefreshRequest,
  flight: Flight<Entry>,
): Promise<Entry> {
  const { settings, cache, negative, counters, closing } = context;
  const { key, apiKey } = request;
  const telemetry = settings.telemetry;
  const mint = async (): Promise<Entry> => {
    const startedAt = telemetry?.mintsWanted === true ? performance.now() : undefined;
    let timed: Awaited<ReturnType<ProviderSettings['mint']>>;
    try {
      timed = await retrying(() => settings.mint(apiKey, closing), settings.retryPolicy, {
        signal: closing,
        onAttemptError: () => {
          counters.errors++;
        },
      });
    } catch (error) {
      if (startedAt !== undefined) publishMint(settings, apiKey, startedAt, flight, error);
      throw error;
    }
    if (closing.aborted) throw closedError();
    counters.mints++;
    if (startedAt !== undefined) publishMint(settings, apiKey, startedAt, flight, undefined);
    return toEntry(timed, settings.ttlMs);
  };
  try {
    const entry =
      settings.shared === undefined
        ? await mint()
        : await settings.shared.tier.obtain(
            { ...request, current: cache.peek(key), signal: closing },
            mint,
          );
    if (closing.aborted) throw closedError();
    cache.set(key, entry);
    negative.delete(key);
    return entry;
  } catch (caught) {
    const error = closing.aborted
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
      if (settings.negativeMs > 0) {
        negative.set(key, { error, until: settings.now() + settings.negativeMs });
      }
    }
    if (flight.background && !closing.aborted) {
      flight.reported = true;
      reportRefreshError(settings, error, apiKey);
    }
    throw error;
  }
}

/** Publishes one mint (`failure` undefined: minted) on `dashscope-token:token:mint`. */
function publishMint(
  settings: ProviderSettings,
  apiKey: string,
  startedAt: number,
  flight: Flight<Entry>,
  failure: unknown,
): void {
  settings.telemetry?.minted({
    keyHash: apiKeyHash(apiKey),
    expireInSeconds: settings.ttl,
    durationMs: performance.now() - startedAt,
    outcome: failure === undefined ? 'minted' : 'failed',
    code:
      failure === undefined
        ? undefined
        : isDashScopeError(failure)
          ? failure.code
          : 'InternalError',
    background: flight.background,
  });
}
