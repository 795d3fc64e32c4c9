export type { DashScopeErrorBody, DashScopeErrorInit } from './errors.js';
export { DashScopeError, isDashScopeError, redactSecrets } from './errors.js';
export * from './handler/index.js';
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
export * from './ws/index.js';
