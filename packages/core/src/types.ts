import type { Dispatcher } from 'undici';
import type { DashScopeError } from './errors.js';
import type { SharedStore } from './store/types.js';
import type { HttpTransport } from './transport/types.js';

/** The four Model Studio regions with a shared host. */
export type Region = 'cn-beijing' | 'ap-southeast-1' | 'us-east-1' | 'cn-hongkong';

/** A temporary API key as Model Studio returns it. */
export interface TemporaryToken {
  /** The temporary key, `st-…`. */
  token: string;
  /** Expiry in UNIX seconds, exactly as Model Studio sent it (on Model Studio's clock). */
  expiresAt: number;
}

/** Where Model Studio is. Precedence: `baseUrl`, then `workspaceId` + `region`, then `region`, then the environment. */
export interface EndpointOptions {
  /**
   * Explicit base URL, e.g. `https://dashscope-intl.aliyuncs.com`. Wins over `region` and `workspaceId`.
   * @default process.env.DASHSCOPE_BASE_URL, else the host of `region`
   */
  baseUrl?: string;
  /**
   * Region whose shared host to use.
   * @default process.env.DASHSCOPE_REGION, else `'cn-beijing'`
   */
  region?: Region;
  /**
   * Workspace ID: selects the workspace-dedicated host `{workspaceId}.{region}.maas.aliyuncs.com`.
   * @default undefined (the shared host)
   */
  workspaceId?: string;
}

/** Network options shared by everything that calls Model Studio. */
export interface TransportOptions {
  /**
   * undici dispatcher used for calls to Model Studio (inject one in tests). Used by the undici
   * transport (the default of `@dashscope-token/core`); ignored by the fetch transport and when
   * a `transport` is given.
   * @default one shared keep-alive `Agent` for the process
   */
  dispatcher?: Dispatcher;
  /**
   * Milliseconds to establish the TCP/TLS connection (undici transport only).
   * @default 5000
   */
  connectTimeoutMs?: number;
  /**
   * Milliseconds for one whole token request (connect, headers and body).
   * @default 10000
   */
  timeoutMs?: number;
}

/** Options of {@link mintToken}. */
export interface MintTokenOptions extends EndpointOptions, TransportOptions {
  /** The permanent API key (`sk-…`). Never logged, never in an error. */
  apiKey: string;
  /**
   * Lifetime of the temporary key in seconds, an integer in 1..1800.
   * @default 60
   */
  expireInSeconds?: number;
  /** Aborts the request; the promise rejects with a `DashScopeError` of code `Aborted`. */
  signal?: AbortSignal;
  /**
   * The HTTP transport the token request goes through.
   * @default `undiciTransport({ dispatcher, connectTimeoutMs })` from `@dashscope-token/core`;
   *   `fetchTransport()` from `@dashscope-token/core/neutral`
   */
  transport?: HttpTransport;
}

/** Options of one {@link TokenProvider.getToken} call. */
export interface GetTokenOptions {
  /** API key for this call (multi-tenant). @default the provider's `apiKey` */
  apiKey?: string;
  /**
   * The token handed out has at least this many seconds of life left (local clock, skew-corrected).
   * @default the provider's `minValiditySeconds`
   */
  minValiditySeconds?: number;
  /** Mint a new token even if a cached one satisfies the call. @default false */
  forceRefresh?: boolean;
  /** Stops waiting for this call (the shared mint goes on for other callers). */
  signal?: AbortSignal;
}

/** Counters of a {@link TokenProvider}. */
export interface TokenProviderStats {
  /** Calls answered from the cache without waiting. */
  hits: number;
  /** Calls that had to wait for a mint. */
  misses: number;
  /** Successful mints (requests to the token endpoint that returned a token). */
  mints: number;
  /** Failed mint attempts, including background refreshes and retries. */
  errors: number;
  /** Number of API keys with a cached entry. */
  size: number;
  /** The shared store tier, when a `store` is configured. */
  store?: TokenStoreStats;
}

/** Counters of the shared store tier of a {@link TokenProvider}. */
export interface TokenStoreStats {
  /** Tokens taken from the store (minted by another instance) instead of minted here. */
  hits: number;
  /** Store calls that failed or did not answer within `storeTimeoutMs`. */
  errors: number;
  /** Mints done without the store because it failed, was slow, or was being left alone. */
  fallbacks: number;
  /** Whether the last store call answered. */
  healthy: boolean;
}

/** A cache of temporary keys, one entry per API key, host and TTL. */
export interface TokenProvider {
  getToken(opts?: GetTokenOptions): Promise<TemporaryToken>;
  /** Drops the cached token of `apiKey` (default: the provider's key); the next call mints. */
  invalidate(apiKey?: string): void;
  stats(): TokenProviderStats;
  /** Stops timers and drops every cached token. */
  close(): Promise<void>;
}

/**
 * How a failed mint is retried (only errors with `retryable: true`): exponential backoff with
 * full jitter, `Retry-After` honoured, bounded in attempts and in total time.
 */
export interface RetryOptions {
  /**
   * Attempts in all, the first one included (`1` = no retry).
   * @default 3
   */
  maxAttempts?: number;
  /**
   * Backoff base: the wait before retry `n` is a random delay in `[0, min(maxDelayMs, baseDelayMs * 2^(n-1))]`.
   * @default 200
   */
  baseDelayMs?: number;
  /**
   * Upper bound of one computed backoff delay. A longer `Retry-After` is still honoured, within `maxElapsedMs`.
   * @default 5000
   */
  maxDelayMs?: number;
  /**
   * No retry starts (and no wait is begun) that would end later than this many milliseconds after
   * the first attempt started; the last error surfaces instead.
   * @default 15000
   */
  maxElapsedMs?: number;
}

/** Options of {@link TokenProvider} (see `createTokenProvider`). */
export interface TokenProviderOptions extends EndpointOptions, TransportOptions {
  /**
   * The permanent API key used when a call passes none. May be left unset when every
   * `getToken` call passes its own `apiKey`.
   * @default process.env.DASHSCOPE_API_KEY
   */
  apiKey?: string;
  /**
   * Lifetime of the temporary keys minted, in seconds (1..1800).
   * @default 60
   */
  expireInSeconds?: number;
  /**
   * Most API keys (tenants) with a cached token; the least recently used one is dropped beyond it.
   * @default 1000
   */
  maxKeys?: number;
  /**
   * Refresh window, in seconds: once a cached token has less than
   * `minValiditySeconds + refreshAheadSeconds` of life left, a call still gets it at once and ONE
   * background mint replaces it. A token is never refreshed in the background before half of its
   * life has passed (so a window too large for the TTL cannot turn into a mint loop).
   * Values above the TTL are clamped to the TTL.
   * @default 20% of the TTL, at least 5 s, at most half the TTL
   */
  refreshAheadSeconds?: number;
  /**
   * A token handed out has at least this many seconds of life left (local clock, skew-corrected).
   * Overridable per call; a value `>= expireInSeconds` is refused with `InvalidParameter`.
   * @default 5 (half the TTL when the TTL is shorter than 10 s)
   */
  minValiditySeconds?: number;
  /**
   * Retry policy of a mint, or `false` for a single attempt.
   * @default { maxAttempts: 3, baseDelayMs: 200, maxDelayMs: 5000, maxElapsedMs: 15000 }
   */
  retry?: RetryOptions | false;
  /**
   * Seconds an `InvalidApiKey` answer is remembered: calls for that key within the window
   * re-throw it without asking Model Studio. `0` disables negative caching.
   * @default 10
   */
  negativeCacheSeconds?: number;
  /**
   * Called with a mint failure no caller saw: a failed background refresh, or a failed refresh
   * whose callers were all served the still-valid cached token. Also counted in `stats().errors`.
   * Exceptions thrown by it are ignored.
   * @default undefined
   */
  onRefreshError?: (error: DashScopeError) => void;
  /**
   * Millisecond clock used for expiry decisions (inject a fake one in tests).
   * @default Date.now
   */
  now?: () => number;
  /**
   * The function that mints a token (inject a fake one in benchmarks). A custom mint gets the
   * resolved `baseUrl`, `apiKey`, `expireInSeconds`, transport options and an abort signal.
   * Without the server's `Date` header, the cached expiry is `min(expiresAt, request start + TTL)`.
   * @default mintToken (with the server `Date` header used to correct clock skew)
   */
  mint?: (opts: MintTokenOptions) => Promise<TemporaryToken>;
  /**
   * The HTTP transport every mint goes through (not used with a custom `mint`, which gets it in
   * its options).
   * @default `undiciTransport({ dispatcher, connectTimeoutMs })` from `@dashscope-token/core`;
   *   `fetchTransport()` from `@dashscope-token/core/neutral`
   */
  transport?: HttpTransport;
  /**
   * A shared store (Redis: `createRedisStore` of `@dashscope-token/redis`) as a second tier
   * behind the in-process cache: across every instance sharing it, a key is minted once per
   * refresh period (one instance takes the key's short lock and mints, the others read its
   * token). Store keys are an HMAC of the API key and tokens are sealed with AES-GCM under a key
   * derived from it (HKDF), so nothing in the store lets its reader call Model Studio. A store
   * that fails or is slow is never an outage: the provider mints locally, counts it in
   * `stats().store`, reports it once per outage to `onStoreError`, and uses the store again
   * once it answers.
   * @default undefined (in-process cache only)
   */
  store?: SharedStore;
  /**
   * Milliseconds each store call may take before the provider gives up on it and goes on
   * without the store (it then leaves the store alone for 1 s before trying again).
   * @default 500
   */
  storeTimeoutMs?: number;
  /**
   * Called once per store outage (first failed or timed-out call after a good one) with a
   * `StoreUnavailable` error. Exceptions thrown by it are ignored.
   * @default undefined
   */
  onStoreError?: (error: DashScopeError) => void;
}
