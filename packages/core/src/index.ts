export type { DashScopeErrorBody, DashScopeErrorInit } from './errors.js';
export { DashScopeError, invalidParameter, isDashScopeError, redactSecrets } from './errors.js';
export type { MintWithTimingOptions, TimedToken } from './mint.js';
export {
  DEFAULT_EXPIRE_IN_SECONDS,
  MAX_EXPIRE_IN_SECONDS,
  mintToken,
  mintTokenWithTiming,
} from './mint.js';
export { createTokenProvider } from './provider.js';
export type { EndpointEnv } from './regions.js';
export { DEFAULT_REGION, isRegion, REGION_HOSTS, resolveBaseUrl } from './regions.js';
export { DEFAULT_RETRY } from './retry.js';
export { USER_AGENT } from './transport.js';
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
  TransportOptions,
} from './types.js';
export * from './node/index.js';
export * from './policy/index.js';
