export type {
  AuthorizeResult,
  CorsOptions,
  HandlerGetTokenOptions,
  HandlerProviders,
  ProxyOptions,
  TemporaryToken,
  TokenProvider,
  TokenRouteOptions,
} from '@dashscope-token/core/neutral';
export { DashScopeError, isDashScopeError } from '@dashscope-token/core/neutral';
export { createFetchHandler, runtimeInfo } from './create-fetch-handler.js';
export type { FetchHandler, FetchHandlerOptions, FetchHandlerStats, HandleInfo } from './types.js';
