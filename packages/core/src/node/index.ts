/** The node:http executor: the handler, its WebSocket proxy, and what adapters build on. */
export { createDashScopeHandler } from './create-handler.js';
export { mountPathCheck } from './mount-path.js';
export type {
  DashScopeHandler,
  DashScopeHandlerOptions,
  DashScopeHandlerStats,
  HandleOptions,
} from './types.js';
export { withUpgradeContext } from './upgrade-context.js';
export {
  WS_CLOSE_GOING_AWAY,
  WS_CLOSE_IDLE,
  WS_CLOSE_MESSAGE_TOO_BIG,
  WS_CLOSE_POLICY,
  WS_CLOSE_SESSION_LIMIT,
  WS_CLOSE_UPSTREAM_LOST,
} from './websocket/close-codes.js';
export type {
  HandleUpgradeOptions,
  UpgradeListener,
  WebSocketOptions,
  WebSocketStats,
} from './websocket/types.js';
