/**
 * `@dashscope-token/core/neutral`: everything of the core that runs on any JavaScript runtime
 * with `fetch` and WebCrypto (Node, Bun, Deno, Workers, edge functions). Its module graph imports
 * no `node:` builtin and no undici; the token engine mints through the global `fetch`.
 */
export type { DashScopeErrorBody, DashScopeErrorInit } from './errors.js';
export { DashScopeError, isDashScopeError, redactSecrets } from './errors.js';
export * from './policy/index.js';
export type { EndpointEnv } from './regions.js';
export { DEFAULT_REGION, isRegion, REGION_HOSTS, resolveBaseUrl } from './regions.js';
export type { RetryContext } from './retry.js';
/**
 * The backoff (`retrying`: exponential, full jitter, `Retry-After`, bounded attempts and time;
 * `resolveRetryOptions` checks a policy) and the single-flight (`SingleFlight`: one task per
 * key; `waitWithSignal`: a caller's signal stops only its own wait), for the sibling packages
 * (`@dashscope-token/pai-eas`). @internal Not a public API: they may change in any release.
 */
export { DEFAULT_RETRY, resolveRetryOptions, retrying } from './retry.js';
export { DEFAULT_STORE_TIMEOUT_MS } from './store/guard.js';
export type { SharedStore } from './store/types.js';
export { DELETE_IF_EQUALS_SCRIPT } from './store/types.js';
export type { MintWithTimingOptions, TimedToken } from './token/mint.js';
export { DEFAULT_EXPIRE_IN_SECONDS, MAX_EXPIRE_IN_SECONDS } from './token/mint.js';
export type { Flight } from './token/single-flight.js';
export { SingleFlight, waitWithSignal } from './token/single-flight.js';
export { createTokenProvider, mintToken, mintTokenWithTiming } from './token/with-fetch.js';
export type { FetchTransportOptions } from './transport/fetch.js';
export { fetchTransport } from './transport/fetch.js';
export type { HttpRequest, HttpResponse, HttpTransport } from './transport/types.js';
export { USER_AGENT } from './transport/user-agent.js';
export type {
  EndpointOptions,
  GetTokenOptions,
  MintTokenOptions,
  Region,
  RetryOptions,
  TemporaryToken,
  TokenProvider,
  TokenProviderOptions,
  TokenProviderStats,
  TokenStoreStats,
  TransportOptions,
} from './types.js';
