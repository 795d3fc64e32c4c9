import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { BudgetStats } from '../policy/budgets.js';
import type { LimitStats } from '../policy/limits.js';
import type { HandlerGetTokenOptions, SharedHandlerOptions } from '../policy/options.js';
import type { PoolQueueStats } from '../policy/pool-queue.js';
import type {
  TemporaryToken,
  TokenProvider,
  TokenProviderStats,
  TransportOptions,
} from '../types.js';
import type {
  HandleUpgradeOptions,
  UpgradeListener,
  WebSocketOptions,
  WebSocketStats,
} from './websocket/types.js';

/** Options of {@link createDashScopeHandler}: the shared options, the undici transport and WebSockets. */
export interface DashScopeHandlerOptions<Ctx = IncomingMessage>
  extends SharedHandlerOptions<Ctx>,
    TransportOptions {
  /**
   * The WebSocket proxy (`{prefix}/api-ws/v1/inference`, `{prefix}/api-ws/v1/realtime`, wired
   * with `server.on('upgrade', handler.upgrade)`), or `false` to leave every upgrade alone.
   * Its keys come from the proxy's provider (TTL `proxy.expireInSeconds`).
   * @default {}
   */
  websocket?: false | WebSocketOptions<Ctx>;
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
        /**
         * The fair queue in front of the pool: exchanges holding a connection (`inFlight`, at
         * most `proxy.connections`), requests `waiting` for one (served to clients with none
         * in flight first, then in turn), and those `refused` 503 `Throttling.PoolBusy`.
         */
        queue: PoolQueueStats;
      }
    | undefined;
  /** The proxy's token cache. */
  proxyTokens: TokenProviderStats;
  /** The token route's cache; `undefined` when the route is disabled. */
  routeTokens: TokenProviderStats | undefined;
  /** Per-client limits: admitted and refused (429) requests per budget; `undefined` when off. */
  limits: LimitStats | undefined;
  /**
   * Per-identity budgets: requests within them, refusals (429 `BudgetExceeded`) by budget,
   * tokens counted, store errors; `undefined` without `budgets`.
   */
  budgets: BudgetStats | undefined;
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
  /**
   * The client address the framework trusts (Express `req.ip` with its `trust proxy`, Koa
   * `ctx.ip`, Fastify `request.ip`): the default key of per-client `limits`.
   * @default req.socket.remoteAddress
   */
  clientAddress?: string;
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
   * A temporary key for the app's own handlers, for this context's API key, from the proxy's
   * provider (TTL `proxy.expireInSeconds`; never a key the token route vends).
   */
  getToken(ctx?: Ctx, opts?: HandlerGetTokenOptions): Promise<TemporaryToken>;
  /** The proxy's token provider (cache); the token route has its own. */
  readonly provider: TokenProvider;
  /** The normalised prefix, e.g. `/dashscope`. */
  readonly prefix: string;
  /**
   * Closes the upstream pool and the providers the handler created; WebSocket sessions
   * are closed with 1001 (cut after 2 s) and handshakes in progress answered 503.
   */
  close(): Promise<void>;
  /**
   * The `upgrade` listener: `server.on('upgrade', handler.upgrade)` (bound; no `.bind` needed).
   * Takes upgrades under `prefix` (proxying `{prefix}/api-ws/v1/inference` and
   * `{prefix}/api-ws/v1/realtime`, refusing the rest with an HTTP error) and returns `true`.
   * Any other upgrade is left alone for the server's other `upgrade` listeners (returns
   * `false`); when the server has no other listener than dashscope handlers' and this is the
   * last of them, it is answered 404 and closed (returns `true`), so that an upgrade nobody
   * takes never holds its socket.
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
