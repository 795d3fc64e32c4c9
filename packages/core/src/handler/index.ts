export { createDashScopeHandler } from './create-handler.js';
export type { DashScopeLogger, RequestLogFields } from './logging.js';
export type {
  AuthorizeResult,
  CorsOptions,
  DashScopeHandler,
  DashScopeHandlerOptions,
  DashScopeHandlerStats,
  HandleOptions,
  HandlerCacheOptions,
  HandlerGetTokenOptions,
  ProxyOptions,
  TokenRouteOptions,
} from './types.js';
