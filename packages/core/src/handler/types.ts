import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type {
  EndpointOptions,
  TemporaryToken,
  TokenProvider,
  TokenProviderOptions,
  TokenProviderStats,
  TransportOptions,
} from '../types.js';
import type {
  HandleUpgradeOptions,
  UpgradeListener,
  WebSocketOptions,
  WebSocketStats,
} from '../ws/types.js';
import type { DashScopeLogger } from './logging.js';

/**
 * What `authorize` may return: `true`/`undefined` = allowed; `false` = 403; or an explicit
 * refusal with its status (and an optional message shown to the client).
 */
// biome-ignore lint/suspicious/noConfusingVoidType: lets `authorize` be a function that returns nothing when it allows.
export type AuthorizeResult = boolean | void | { status: 401 | 403; message?: string };

/**
 * Cache options forwarded to the token providers the handler creates (ignored when `provider`
 * is given); see `TokenProviderOptions` for each one's meaning and default.
 */
export type HandlerCacheOptions = Pick<
  TokenProviderOptions,
  'maxKeys' | 'refreshAheadSeconds' | 'retry' | 'negativeCacheSeconds' | 'onRefreshError'
>;

/** Options of the token route, `POST {prefix}/token`. */
export interface TokenRouteOptions {
  /**
   * TTL, in seconds, of the temporary keys vended to browsers (1..1800).
   * @default 60
   */
  expireInSeconds?: number;
  /**
   * A vended key has at least this many seconds of life left.
   * @default 30
   */
  minValiditySeconds?: number;
}

/** CORS for the token route and the proxy routes. */
export interface CorsOptions {
  /** Allowed origins (exact `scheme://host[:port]` strings), or a predicate. */
  origins: readonly string[] | ((origin: string) => boolean);
  /**
   * Send `Access-Control-Allow-Credentials: true`.
   * @default false
   */
  credentials?: boolean;
  /**
   * `Access-Control-Max-Age` of preflight answers, in seconds.
   * @default 600
   */
  maxAgeSeconds?: number;
}

/** Proxy tuning. */
export interface ProxyOptions {
  /**
   * Minimum remaining life, in seconds, of a key injected into a request.
   * @default 60
   */
  minValiditySeconds?: number;
  /**
   * Same, for streaming requests (SSE: `X-DashScope-SSE: enable`, `Accept: text/event-stream`,
   * or a JSON body with `stream: true` when the body is read).
   * @default 600
   */
  streamingMinValiditySeconds?: number;
  /**
   * Largest request body in bytes; larger bodies get 413 and never reach upstream.
   * @default 10485760 (10 MiB)
   */
  maxBodyBytes?: number;
  /**
   * Milliseconds without upstream bytes before a response body is cut; 0 = never
   * (streams of reasoning models can be silent for minutes).
   * @default 0
   */
  bodyTimeoutMs?: number;
  /**
   * Milliseconds to wait for upstream response headers (504 beyond).
   * @default 300000
   */
  headersTimeoutMs?: number;
  /**
   * Most keep-alive connections to upstream.
   * @default 128
   */
  connections?: number;
  /**
   * Largest streamed request body (with a `Content-Length`) kept in memory so that the
   * request can be replayed once with a fresh key after an upstream 401.
   * Bodies that are read anyway (parsed, or checked against `allowModels`) are always replayable.
   * @default 65536 (64 KiB)
   */
  replayBufferBytes?: number;
  /**
   * Forward the client's `X-Forwarded-For` / `X-Forwarded-Proto` / `X-Forwarded-Host` and
   * `Forwarded` headers upstream. Off by default: Model Studio has no use for the client's
   * identity, and it would leak the user's address to a third party.
   * @default false
   */
  forwardClientIdentity?: boolean;
}

/** Options of {@link createDashScopeHandler}. */
export interface DashScopeHandlerOptions<Ctx = IncomingMessage>
  extends EndpointOptions,
    TransportOptions,
    HandlerCacheOptions {
  /**
   * Permanent key, or a function of the request context (multi-tenant; each tenant gets its own
   * cache entry). A function returning `undefined` refuses the request with 500 `MissingApiKey`.
   * @default process.env.DASHSCOPE_API_KEY
   */
  apiKey?: string | ((ctx: Ctx) => string | undefined | Promise<string | undefined>);
  /**
   * Mount path of the routes; normalised to a leading `/` and no trailing `/`.
   * @default '/dashscope'
   */
  prefix?: string;
  /**
   * Guards the token route, the proxy and WebSocket upgrades (where it gets the context of
   * `websocket.context`, by default the handshake's IncomingMessage). `true`/`undefined`
   * allows; `false` answers 403; `{status: 401}` answers 401. A throw answers 500 without the
   * thrown message.
   * @default undefined (everyone allowed)
   */
  authorize?: (ctx: Ctx) => AuthorizeResult | Promise<AuthorizeResult>;
  /**
   * TTL, in seconds, of the temporary keys the PROXY injects upstream (never seen by clients).
   * @default 1800
   */
  expireInSeconds?: number;
  /**
   * Token route options, or `false` to disable `POST {prefix}/token` (it then answers 404).
   * @default {}
   */
  tokenRoute?: false | TokenRouteOptions;
  /**
   * CORS for the token route (and proxy routes): allow-listed origins, or false.
   * @default false
   */
  cors?: false | CorsOptions;
  /** Proxy tuning. @default {} */
  proxy?: ProxyOptions;
  /**
   * If set, JSON bodies whose `model` is not listed are refused with 403 (and bodies are read,
   * up to `proxy.maxBodyBytes`, to check).
   * @default undefined (any model)
   */
  allowModels?: readonly string[];
  /** Share an existing provider instead of creating one. @default a new provider */
  provider?: TokenProvider;
  /**
   * The WebSocket proxy (`{prefix}/api-ws/v1/inference`, `{prefix}/api-ws/v1/realtime`, wired
   * with `server.on('upgrade', handler.upgrade)`), or `false` to leave every upgrade alone.
   * @default {}
   */
  websocket?: false | WebSocketOptions<Ctx>;
  /**
   * Where to log: one `info` line per request the handler answers (method, path without query,
   * status, duration, request id), `warn` for failed background key refreshes, `error` for
   * unexpected handler failures. Never header values (`Authorization`, `Cookie`), query
   * strings, bodies or keys. `console` works.
   * @default undefined (no logging)
   */
  logger?: DashScopeLogger;
}

/** What {@link DashScopeHandler.stats} reports. */
export interface DashScopeHandlerStats {
  /** Requests the handler is answering right now (started, answer not yet ended). */
  activeRequests: number;
  /**
   * The upstream connection pool the handler created: open sockets (`connected`, of which
   * `free` are idle), requests `running` on them and `pending`/`queued` for one, `size` =
   * running + pending + queued. `undefined` when a `dispatcher` was injected.
   */
  upstream:
    | {
        connected: number;
        free: number;
        pending: number;
        queued: number;
        running: number;
        size: number;
      }
    | undefined;
  /** The proxy's token cache. */
  proxyTokens: TokenProviderStats;
  /** The token route's cache; `undefined` when the route is disabled or `provider` is shared. */
  routeTokens: TokenProviderStats | undefined;
}

/** Per-request options of {@link DashScopeHandler.handle}. */
export interface HandleOptions<Ctx> {
  /**
   * Framework context passed to `apiKey`/`authorize` (Express: req, Koa: ctx).
   * @default the IncomingMessage
   */
  context?: Ctx;
  /**
   * A body a body parser already consumed (express.json(), koa-bodyparser): re-serialised as
   * JSON when the raw stream is gone. Ignored when `undefined`.
   * @default undefined
   */
  parsedBody?: unknown;
  /**
   * Path + query relative to the mount point.
   * @default req.url
   */
  url?: string;
}

/** Options of {@link DashScopeHandler.getToken}. */
export interface HandlerGetTokenOptions {
  /** Minimum remaining life, in seconds. @default proxy.minValiditySeconds (60) */
  minValiditySeconds?: number;
  /** Mint a new key even if a cached one satisfies the call. @default false */
  forceRefresh?: boolean;
  /** Stops waiting. */
  signal?: AbortSignal;
}

/** The handler returned by {@link createDashScopeHandler}. */
export interface DashScopeHandler<Ctx = IncomingMessage> {
  /** node:http style: handles ours; calls next() for paths outside prefix (404 when no next). */
  (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): void;
  /**
   * Resolves true when it handled (answered) the request, false when the path is outside prefix.
   * Never rejects for request errors (it answers them); rejects only on programming errors.
   */
  handle(req: IncomingMessage, res: ServerResponse, options?: HandleOptions<Ctx>): Promise<boolean>;
  /**
   * A temporary key for the app's own handlers, for this context's API key (the TTL is the
   * proxy's `expireInSeconds`).
   */
  getToken(ctx?: Ctx, opts?: HandlerGetTokenOptions): Promise<TemporaryToken>;
  /** The token provider (cache) in use. */
  readonly provider: TokenProvider;
  /** The normalised prefix, e.g. `/dashscope`. */
  readonly prefix: string;
  /**
   * Closes the upstream pool and the provider (if the handler created it); WebSocket sessions
   * are closed with 1001 (cut after 2 s) and handshakes in progress answered 503.
   */
  close(): Promise<void>;
  /**
   * The `upgrade` listener: `server.on('upgrade', handler.upgrade)` (bound; no `.bind` needed).
   * Takes upgrades under `prefix` (proxying `{prefix}/api-ws/v1/inference` and
   * `{prefix}/api-ws/v1/realtime`, refusing the rest with an HTTP error) and returns `true`;
   * leaves any other upgrade alone for other listeners and returns `false`.
   */
  readonly upgrade: UpgradeListener;
  /**
   * {@link DashScopeHandler.upgrade} with a context and a mount-relative `url` (adapters, mounted
   * handlers). Returns whether it took the socket.
   */
  handleUpgrade(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    options?: HandleUpgradeOptions<Ctx>,
  ): boolean;
  /** Counters of the WebSocket proxy. */
  websocketStats(): WebSocketStats;
  /**
   * Live counters: requests in progress, the upstream pool's sockets and requests, and the
   * token caches. All zero but the caches' once the handler is idle and closed.
   */
  stats(): DashScopeHandlerStats;
}
