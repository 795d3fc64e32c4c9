/**
 * The `websocket` options, validated and precomputed once per handler (runtime-neutral; the
 * node:http executor is the one that proxies WebSockets today).
 */
import { invalidOption } from '../token/errors.js';
import { compileOrigins, type OriginCheck } from './origin.js';

/**
 * Options of the WebSocket proxy (`{prefix}/api-ws/v1/inference` and
 * `{prefix}/api-ws/v1/realtime`), the `websocket` option of `createDashScopeHandler` and the
 * adapters. Wire it with `server.on('upgrade', handler.upgrade)`.
 */
export interface WebSocketSettings<Ctx, Req> {
  /**
   * Proxy WebSocket sessions without an `authorize` hook. Upgrades never pass through the
   * app's own framework middleware (an Express/Koa guard in front of the middleware protects
   * HTTP only), so without `authorize` every handshake is refused with 403
   * `WebSocketUnauthenticated` unless this says the app accepts unauthenticated sessions.
   * @default false (WebSocket sessions need `authorize`)
   */
  allowUnauthenticated?: boolean;
  /**
   * Origins allowed to open a WebSocket (exact `scheme://host[:port]` strings, compared
   * case-insensitively), or a predicate. Browsers send cookies with cross-site WebSocket
   * handshakes and CORS does not apply to them, so this is the defence against cross-site
   * WebSocket hijacking: a handshake whose `Origin` is not allowed gets 403. A handshake without
   * an `Origin` header (not a browser) is not checked. The `cors` option does not apply here.
   * @default same origin as the handshake's `Host` header (any scheme)
   */
  allowedOrigins?: readonly string[] | ((origin: string, req: Req) => boolean);
  /**
   * Longest session, in seconds; the proxy then closes the client with
   * `WS_CLOSE_SESSION_LIMIT` (4000) and Model Studio with 1000. `0` = no limit. The
   * injected key is only checked on the handshake, so a session may outlive it; use this to
   * bound how long a client keeps access after `authorize` said yes.
   * @default 0 (no limit)
   */
  maxSessionSeconds?: number;
  /**
   * Largest message, in bytes, either way. A larger one closes the session with 1009
   * (Message Too Big) on both sides. The default fits the speech protocol (audio frames of a
   * few KiB, JSON events) and the realtime one (base64 audio chunks, images of up to 500 KB
   * base64-encoded).
   * @default 1048576 (1 MiB)
   */
  maxMessageBytes?: number;
  /**
   * Milliseconds a message may take from its first byte to its last (a fragmented message to
   * its final frame). A side that is slower is closed with 1008 (the other side with 1001),
   * and what the proxy held for the message is released.
   * @default 10000
   */
  messageTimeoutMs?: number;
  /**
   * Milliseconds without a whole message either way (pings do not count) after which the
   * session is closed: the client with `WS_CLOSE_IDLE` (4001), Model Studio with 1000. `0` =
   * never.
   * @default 300000 (5 minutes)
   */
  idleTimeoutMs?: number;
  /**
   * Most bytes of messages still being received, over all sessions of the handler. Beyond it,
   * the sessions holding the most are closed with 1008 until the total is below again, so the
   * proxy's memory for unfinished messages stays bounded whatever the number of sessions.
   * @default 67108864 (64 MiB)
   */
  maxPendingBytes?: number;
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
  context?: (req: Req) => Ctx | Promise<Ctx>;
}

/** Default `websocket.maxMessageBytes`. */
export const DEFAULT_WS_MAX_MESSAGE_BYTES = 1024 * 1024;
/** Default `websocket.messageTimeoutMs`. */
export const DEFAULT_WS_MESSAGE_TIMEOUT_MS = 10_000;
/** Default `websocket.idleTimeoutMs`. */
export const DEFAULT_WS_IDLE_TIMEOUT_MS = 300_000;
/** Default `websocket.maxPendingBytes`. */
export const DEFAULT_WS_MAX_PENDING_BYTES = 64 * 1024 * 1024;
/** Default `websocket.maxSessions`. */
export const DEFAULT_WS_MAX_SESSIONS = 1000;
/** Default `websocket.handshakeTimeoutMs`. */
export const DEFAULT_WS_HANDSHAKE_TIMEOUT_MS = 10_000;
/** Default `websocket.pingIntervalMs`. */
export const DEFAULT_WS_PING_INTERVAL_MS = 30_000;
/** Default `websocket.maxBufferedBytes`. */
export const DEFAULT_WS_MAX_BUFFERED_BYTES = 1024 * 1024;

/** The WebSocket options, validated and precomputed once per handler. */
export interface WebSocketConfig<Ctx, Req> {
  /** `ws://` or `wss://` origin plus base path (no trailing `/`) of the upstream WebSocket API. */
  upstreamBase: string;
  /** `undefined`: same host as the handshake's `Host`. */
  allowedOrigins: OriginCheck<[Req]> | undefined;
  maxSessionSeconds: number;
  maxMessageBytes: number;
  messageTimeoutMs: number;
  idleTimeoutMs: number;
  maxPendingBytes: number;
  maxSessions: number;
  handshakeTimeoutMs: number;
  minValiditySeconds: number;
  pingIntervalMs: number;
  maxBufferedBytes: number;
  context: ((req: Req) => Ctx | Promise<Ctx>) | undefined;
  allowUnauthenticated: boolean;
}

function integer(value: number | undefined, fallback: number, name: string, min: number): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw invalidOption(`Invalid websocket.${name} ${String(v)}: expected an integer >= ${min}.`);
  }
  return v;
}

/** `ws(s)://host[:port]/path` (no trailing slash) for an `http(s)`/`ws(s)` base URL. */
function upstreamBaseOf(baseUrl: string): string {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw invalidOption(
      'Invalid websocket.baseUrl: expected an absolute ws(s):// or http(s):// URL.',
    );
  }
  const scheme =
    url.protocol === 'https:' || url.protocol === 'wss:'
      ? 'wss:'
      : url.protocol === 'http:' || url.protocol === 'ws:'
        ? 'ws:'
        : undefined;
  if (scheme === undefined || url.username || url.password || url.search || url.hash) {
    throw invalidOption(
      'Invalid websocket.baseUrl: expected a ws(s):// or http(s):// URL without credentials, query or fragment.',
    );
  }
  let path = url.pathname.replace(/\/+$/, '');
  // `…/api-ws/v1` (SDK style) is where the API paths are appended.
  if (path.endsWith('/api-ws/v1')) path = path.slice(0, -'/api-ws/v1'.length);
  return `${scheme}//${url.host}${path}`;
}

/**
 * Resolves the `websocket` option; `undefined` when WebSockets are disabled (`false`).
 * @param origin the handler's HTTP origin (`https://host`), used when `baseUrl` is not set
 * @param basePath the handler's base path (usually `''`)
 * @throws DashScopeError `InvalidParameter` for invalid options (at creation).
 */
export function resolveWebSocketConfig<Ctx, Req>(
  options: false | WebSocketSettings<Ctx, Req> | undefined,
  origin: string,
  basePath: string,
  proxyMinValiditySeconds: number,
  /** TTL of the keys the handler's own provider mints; `undefined` with a shared provider. */
  expireInSeconds: number | undefined,
): WebSocketConfig<Ctx, Req> | undefined {
  if (options === false) return undefined;
  const o = options ?? {};
  let allowedOrigins: WebSocketConfig<Ctx, Req>['allowedOrigins'];
  if (o.allowedOrigins !== undefined) {
    allowedOrigins = compileOrigins<[Req]>(o.allowedOrigins);
    if (allowedOrigins === undefined) {
      throw invalidOption(
        'Invalid websocket.allowedOrigins: expected an array of origins or a function.',
      );
    }
  }
  if (o.context !== undefined && typeof o.context !== 'function') {
    throw invalidOption('Invalid websocket.context: expected a function.');
  }
  const maxBufferedBytes = integer(
    o.maxBufferedBytes,
    DEFAULT_WS_MAX_BUFFERED_BYTES,
    'maxBufferedBytes',
    1,
  );
  const minValiditySeconds = integer(
    o.minValiditySeconds,
    // The proxy's default is already below the TTL; an explicit one is checked.
    proxyMinValiditySeconds,
    'minValiditySeconds',
    0,
  );
  if (expireInSeconds !== undefined && minValiditySeconds >= expireInSeconds) {
    throw invalidOption(
      `websocket.minValiditySeconds ${minValiditySeconds} is not below proxy.expireInSeconds ${expireInSeconds}: no key could have that much life left.`,
    );
  }
  return {
    upstreamBase: upstreamBaseOf(o.baseUrl ?? `${origin}${basePath}`),
    allowedOrigins,
    maxSessionSeconds: integer(o.maxSessionSeconds, 0, 'maxSessionSeconds', 0),
    maxMessageBytes: integer(o.maxMessageBytes, DEFAULT_WS_MAX_MESSAGE_BYTES, 'maxMessageBytes', 1),
    messageTimeoutMs: integer(
      o.messageTimeoutMs,
      DEFAULT_WS_MESSAGE_TIMEOUT_MS,
      'messageTimeoutMs',
      1,
    ),
    idleTimeoutMs: integer(o.idleTimeoutMs, DEFAULT_WS_IDLE_TIMEOUT_MS, 'idleTimeoutMs', 0),
    maxPendingBytes: integer(o.maxPendingBytes, DEFAULT_WS_MAX_PENDING_BYTES, 'maxPendingBytes', 1),
    maxSessions: integer(o.maxSessions, DEFAULT_WS_MAX_SESSIONS, 'maxSessions', 1),
    handshakeTimeoutMs: integer(
      o.handshakeTimeoutMs,
      DEFAULT_WS_HANDSHAKE_TIMEOUT_MS,
      'handshakeTimeoutMs',
      1,
    ),
    minValiditySeconds,
    pingIntervalMs: integer(o.pingIntervalMs, DEFAULT_WS_PING_INTERVAL_MS, 'pingIntervalMs', 0),
    maxBufferedBytes,
    context: o.context,
    allowUnauthenticated: o.allowUnauthenticated === true,
  };
}
