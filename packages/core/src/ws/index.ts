export {
  WS_CLOSE_GOING_AWAY,
  WS_CLOSE_MESSAGE_TOO_BIG,
  WS_CLOSE_SESSION_LIMIT,
  WS_CLOSE_UPSTREAM_LOST,
} from './close-codes.js';
export type {
  HandleUpgradeOptions,
  UpgradeListener,
  WebSocketOptions,
  WebSocketStats,
} from './types.js';
