/**
 * The token provider's options, checked and resolved once: TTL and windows in milliseconds, the
 * retry policy, the default key and the mint function (through the injected transport).
 */
import { sha256 } from '@noble/hashes/sha2';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils';
import { processEnv } from '../env.js';
import { DashScopeError } from '../errors.js';
import type { Telemetry } from '../policy/telemetry.js';
import { resolveBaseUrl } from '../regions.js';
import { resolveRetryOptions } from '../retry.js';
import { DEFAULT_STORE_TIMEOUT_MS, StoreGuard } from '../store/guard.js';
import type { MintTokenOptions, RetryOptions, TokenProviderOptions } from '../types.js';
import { withSecrets } from '../upstream-errors.js';
import { invalidOption } from './errors.js';
import {
  checkExpireInSeconds,
  DEFAULT_TIMEOUT_MS,
  type DefaultTransport,
  mintWithTransport,
  type TimedToken,
} from './mint.js';
import { SharedTier } from './shared-tier.js';

/** Default most API keys with a cached token. */
export const DEFAULT_MAX_KEYS = 1000;
/** Default minimum remaining life of a token handed out, seconds. */
export const DEFAULT_MIN_VALIDITY_SECONDS = 5;
/** Default seconds an `InvalidApiKey` answer is remembered. */
export const DEFAULT_NEGATIVE_CACHE_SECONDS = 10;

/** Mints one token for `apiKey`, with the timing needed for skew correction. */
export type MintFunction = (apiKey: string, signal: AbortSignal) => Promise<TimedToken>;

/** {@link TokenProviderOptions}, resolved. */
export interface ProviderSettings {
  /** Base URL every mint goes to. */
  readonly baseUrl: string;
  /** Token lifetime, seconds. */
  readonly ttl: number;
  /** Token lifetime, ms. */
  readonly ttlMs: number;
  readonly maxKeys: number;
  /** Refresh window beyond the minimum validity, ms. */
  readonly refreshAheadMs: number;
  /** The provider's `minValiditySeconds`, in ms. */
  readonly defaultMinValidityMs: number;
  /** How long an `InvalidApiKey` is remembered, ms (0: not at all). */
  readonly negativeMs: number;
  readonly retryPolicy: Readonly<Required<RetryOptions>>;
  readonly now: () => number;
  readonly onRefreshError: ((error: DashScopeError) => void) | undefined;
  /** Where mints and refresh failures are published (`undefined`: nowhere). */
  readonly telemetry: Telemetry | undefined;
  readonly mint: MintFunction;
  /** The key used when a call passes none (option, else `DASHSCOPE_API_KEY`). */
  readonly defaultKey: string | undefined;
  /** {@link cacheKey} of `defaultKey`, computed once. */
  readonly defaultCacheKey: string | undefined;
  /** The shared store tier, when a `store` is configured. */
  readonly shared: { readonly tier: SharedTier; readonly guard: StoreGuard } | undefined;
  /** A `minValiditySeconds` value checked against the TTL, in ms (at least 1). */
  minValidityMs(value: unknown): number;
  /** The cache key of an API key: a hash of key, base URL and TTL (the raw key is not kept). */
  cacheKey(apiKey: string): string;
}

function nonNegative(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw invalidOption(`Invalid ${name} ${String(value)}: expected a number >= 0.`);
  }
  return value;
}

/** A custom `mint` option wrapped to return timings and to refuse a malformed result. */
function customMintFunction(
  customMint: NonNullable<TokenProviderOptions['mint']>,
  mintOptions: Omit<MintTokenOptions, 'apiKey'>,
  now: () => number,
): MintFunction {
  return async (apiKey, signal) => {
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
}

function resolveStore(
  opts: TokenProviderOptions,
  baseUrl: string,
  ttl: number,
  retryPolicy: Readonly<Required<RetryOptions>>,
  maxKeys: number,
  now: () => number,
): ProviderSettings['shared'] {
  const store = opts.store;
  if (store === undefined) return undefined;
  if (
    store === null ||
    typeof store !== 'object' ||
    typeof store.get !== 'function' ||
    typeof store.set !== 'function' ||
    typeof store.setIfAbsent !== 'function' ||
    typeof store.deleteIfEquals !== 'function'
  ) {
    throw invalidOption(
      'Invalid store: expected an object with get, set, setIfAbsent and deleteIfEquals (see SharedStore).',
    );
  }
  const timeoutMs = opts.storeTimeoutMs ?? DEFAULT_STORE_TIMEOUT_MS;
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw invalidOption(
      `Invalid storeTimeoutMs ${String(timeoutMs)}: expected a positive number of milliseconds.`,
    );
  }
  const guard = new StoreGuard(timeoutMs, now, opts.onStoreError);
  // The lock outlives the longest mint: every retry, the last attempt's whole timeout.
  const lockMs = retryPolicy.maxElapsedMs + (opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  const tier = new SharedTier(store, guard, `${baseUrl}\0${ttl}`, lockMs, now, maxKeys);
  return { tier, guard };
}

/**
 * Checks and resolves the provider's options.
 * @throws DashScopeError `InvalidParameter` for invalid options (endpoint, TTL, windows).
 */
export function resolveProviderOptions(
  options: TokenProviderOptions,
  defaultTransport: DefaultTransport,
  telemetry?: Telemetry,
): ProviderSettings {
  const opts: TokenProviderOptions = options ?? {};
  const baseUrl = withSecrets(
    () => resolveBaseUrl(opts),
    typeof opts.apiKey === 'string' ? [opts.apiKey] : [],
  );
  const ttl = checkExpireInSeconds(opts.expireInSeconds);

  const maxKeys = opts.maxKeys ?? DEFAULT_MAX_KEYS;
  if (typeof maxKeys !== 'number' || !Number.isInteger(maxKeys) || maxKeys < 1) {
    throw invalidOption(`Invalid maxKeys ${String(maxKeys)}: expected an integer >= 1.`);
  }
  const refreshAheadMs =
    opts.refreshAheadSeconds === undefined
      ? Math.min(Math.max(0.2 * ttl, 5), ttl / 2) * 1000
      : Math.min(nonNegative(opts.refreshAheadSeconds, 'refreshAheadSeconds'), ttl) * 1000;
  const minValidityMs = (value: unknown): number => {
    const seconds = nonNegative(value, 'minValiditySeconds');
    if (seconds >= ttl) {
      throw invalidOption(
        `minValiditySeconds ${seconds} is not below expireInSeconds ${ttl}: no token can have that much life left. Lower minValiditySeconds or raise expireInSeconds.`,
      );
    }
    // Never hand out a token at the very instant it expires.
    return Math.max(1, seconds * 1000);
  };
  const defaultMinValidityMs = minValidityMs(
    opts.minValiditySeconds ?? Math.min(DEFAULT_MIN_VALIDITY_SECONDS, ttl / 2),
  );
  const negativeMs =
    nonNegative(
      opts.negativeCacheSeconds ?? DEFAULT_NEGATIVE_CACHE_SECONDS,
      'negativeCacheSeconds',
    ) * 1000;
  const retryPolicy = resolveRetryOptions(opts.retry);
  const now = opts.now ?? Date.now;

  const mintOptions: Omit<MintTokenOptions, 'apiKey'> = {
    baseUrl,
    expireInSeconds: ttl,
    ...(opts.dispatcher !== undefined && { dispatcher: opts.dispatcher }),
    ...(opts.connectTimeoutMs !== undefined && { connectTimeoutMs: opts.connectTimeoutMs }),
    ...(opts.timeoutMs !== undefined && { timeoutMs: opts.timeoutMs }),
    ...(opts.transport !== undefined && { transport: opts.transport }),
  };
  const mint: MintFunction =
    opts.mint === undefined
      ? (apiKey, signal) =>
          mintWithTransport({ ...mintOptions, apiKey, signal, now }, defaultTransport)
      : customMintFunction(opts.mint, mintOptions, now);

  const envKey = processEnv().DASHSCOPE_API_KEY;
  const defaultKey =
    opts.apiKey !== undefined
      ? opts.apiKey
      : envKey !== undefined && envKey !== ''
        ? envKey
        : undefined;
  const cacheKey = (apiKey: string): string =>
    bytesToHex(sha256(utf8ToBytes(`${apiKey}\0${baseUrl}\0${ttl}`))).slice(0, 32);

  return {
    shared: resolveStore(opts, baseUrl, ttl, retryPolicy, maxKeys, now),
    baseUrl,
    ttl,
    ttlMs: ttl * 1000,
    maxKeys,
    refreshAheadMs,
    defaultMinValidityMs,
    negativeMs,
    retryPolicy,
    now,
    onRefreshError: opts.onRefreshError,
    telemetry,
    mint,
    defaultKey,
    defaultCacheKey:
      typeof defaultKey === 'string' && defaultKey !== '' ? cacheKey(defaultKey) : undefined,
    minValidityMs,
    cacheKey,
  };
}
