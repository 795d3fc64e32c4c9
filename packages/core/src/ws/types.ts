import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';

/**
 * Options of the WebSocket proxy (`{prefix}/api-ws/v1/inference` and
 * `{prefix}/api-ws/v1/realtime`), the `websocket` option of `createDashScopeHandler` and the
 * adapters. Wire it with `server.on('upgrade', handler.upgrade)`.
 */
export interface WebSocketOptions<Ctx = IncomingMessage> {
  /**
   * Origins allowed to open a WebSocket (exact `scheme://host[:port]` strings, compared
   * case-insensitively), or a predicate. Browsers send cookies with cross-site WebSocket
   * handshakes and CORS does not apply to them, so this is the defence against cross-site
   * WebSocket hijacking: a handshake whose `Origin` is not allowed gets 403. A handshake without
   * an `Origin` header (not a browser) is not checked. The `cors` option does not apply here.
   * @default same origin as the handshake's `Host` header (any scheme)
   */
  allowedOrigins?: readonly string[] | ((origin: string, req: IncomingMessage) => boolean);
  /**
   * Longest session, in seconds; the proxy then closes the client with
   * {@link WS_CLOSE_SESSION_LIMIT} (4000) and Model Studio with 1000. `0` = no limit. The
   * injected key is only checked on the handshake, so a session may outlive it; use this to
   * bound how long a client keeps access after `authorize` said yes.
   * @default 0 (no limit)
   */
  maxSessionSeconds?: number;
  /**
   * Largest message, in bytes, either way. A larger one closes the session with 1009
   * (Message Too Big) on both sides.
   * @default 16777216 (16 MiB)
   */
  maxMessageBytes?: number;
  /**
   * Most WebSocket sessions (open or being set up) at once, per handler; more get 503
   * `TooManySessions` on the handshake.
   * @default 1000
   */
  maxSessions?: number;
  /**
   * Milliseconds for Model Studio to accept the upstream handshake (504 `Timeout` beyond).
   * @default 10000
   */
  handshakeTimeoutMs?: number;
  /**
   * Minimum remaining life, in seconds, of the key injected on the upstream handshake (only
   * checked there).
   * @default proxy.minValiditySeconds (60)
   */
  minValiditySeconds?: number;
  /**
   * Interval of the pings sent to both sides; a side that has not answered the previous ping
   * is cut (and the other side closed). `0` disables pings.
   * @default 30000
   */
  pingIntervalMs?: number;
  /**
   * Backpressure: once this many bytes wait to be written to one side, the proxy stops reading
   * from the other side until the queue drains below a quarter of it, so a fast producer
   * cannot grow the proxy's memory.
   * @default 1048576 (1 MiB)
   */
  maxBufferedBytes?: number;
  /**
   * Where the WebSocket API lives, when it is not the HTTP base URL's host (`ws://`, `wss://`,
   * `http://` or `https://`; an `http(s)` URL becomes `ws(s)`).
   * @default the handler's base URL, `https` → `wss`, `http` → `ws`
   */
  baseUrl?: string;
  /**
   * Builds the context `authorize` and `apiKey` receive for an upgrade (upgrades do not pass
   * through framework middleware, so there is no framework request object). Return your own
   * object, e.g. with the session you looked up from the handshake's cookie.
   * @default the handshake's `IncomingMessage` (core); a request with `get()` (Express); a
   *   minimal context with `req`, `headers`, `get()`, `state: {}` (Koa)
   */
  context?: (req: IncomingMessage) => Ctx | Promise<Ctx>;
}

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
