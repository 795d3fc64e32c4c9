export { createDashScopeHandler } from './create-handler.js';
export type {
  AuthorizeResult,
  CorsOptions,
  DashScopeHandler,
  DashScopeHandlerOptions,
  HandleOptions,
  HandlerCacheOptions,
  HandlerGetTokenOptions,
  ProxyOptions,
  TokenRouteOptions,
} from './types.js';
