import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocketSettings } from '../../policy/websocket-config.js';

/**
 * Options of the WebSocket proxy (`{prefix}/api-ws/v1/inference` and
 * `{prefix}/api-ws/v1/realtime`), the `websocket` option of `createDashScopeHandler` and the
 * adapters. Wire it with `server.on('upgrade', handler.upgrade)`. See {@link WebSocketSettings}.
 */
export type WebSocketOptions<Ctx = IncomingMessage> = WebSocketSettings<Ctx, IncomingMessage>;

/** Per-call options of `handler.handleUpgrade` (for adapter authors and mounted handlers). */
export interface HandleUpgradeOptions<Ctx> {
  /**
   * Context for `apiKey`/`authorize`.
   * @default the result of `websocket.context`, else the IncomingMessage
   */
  context?: Ctx;
  /**
   * Path + query relative to where the handler is mounted.
   * @default req.url
   */
  url?: string;
}

/**
 * An `upgrade` listener: `server.on('upgrade', listener)`. Returns `true` when it took the
 * socket (a path under the prefix), `false` when it left the socket alone for other listeners.
 */
export type UpgradeListener = (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean;

/** Counters of the WebSocket proxy, from `handler.websocketStats()`. */
export interface WebSocketStats {
  /** Sessions relaying now. */
  open: number;
  /** Handshakes being set up now (authorize, key, upstream handshake). */
  connecting: number;
  /** Sessions opened since the handler was created. */
  opened: number;
  /** Handshakes answered with an HTTP error since the handler was created. */
  refused: number;
  /**
   * Bytes held in memory now, queued for writing to clients or to Model Studio (all sessions).
   * Backpressure keeps it near `maxBufferedBytes` (plus one message) per session and direction.
   */
  bufferedBytes: number;
}
