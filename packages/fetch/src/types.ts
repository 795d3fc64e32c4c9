import type {
  BudgetStats,
  HandlerGetTokenOptions,
  LimitStats,
  SharedHandlerOptions,
  TemporaryToken,
  TokenProvider,
  TokenProviderStats,
} from '@dashscope-token/core/neutral';

/**
 * Options of {@link createFetchHandler}: the same as the node:http handler's
 * (`createDashScopeHandler`), minus the undici transport and WebSockets, plus `fetch`.
 * `authorize` and `apiKey` get the context passed to `handle(request, context)`, by default the
 * `Request`.
 */
export interface FetchHandlerOptions<Ctx = Request> extends SharedHandlerOptions<Ctx> {
  /**
   * The `fetch` used for proxied calls and for mints (a runtime's own, or one wrapped with
   * tracing).
   * @default globalThis.fetch, looked up at each call
   */
  fetch?: typeof fetch;
}

/** What {@link FetchHandler.stats} reports. */
export interface FetchHandlerStats {
  /** Requests being answered now (until a proxied answer's body has ended or was cancelled). */
  activeRequests: number;
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

/** What the runtime knows about a request besides the `Request` itself. */
export interface HandleInfo {
  /**
   * The client's address as the runtime or adapter knows it (Deno `info.remoteAddr.hostname`,
   * Bun `server.requestIP(request)?.address`, Hono `getConnInfo(c).remote.address`): the
   * default key of per-client `limits`. Without it (and without `limits.clientAddressHeader`
   * or `limits.key`), every anonymous client shares one budget.
   * @default undefined
   */
  clientAddress?: string;
}

/** The handler returned by {@link createFetchHandler}. */
export interface FetchHandler<Ctx = Request> {
  /**
   * Answers `request` when its path is under `prefix`; resolves `undefined` otherwise, so that
   * a framework can fall through to its other routes. `context` is what `authorize` and
   * `apiKey` get (default: the `Request`); `info.clientAddress` keys per-client limits.
   * Never rejects for request errors (it answers them).
   */
  handle(request: Request, context?: Ctx, info?: HandleInfo): Promise<Response | undefined>;
  /**
   * `handle` with a 404 outside `prefix`, bound (no `.bind` needed):
   * `export const POST = handler.fetch`, `Bun.serve({ fetch: handler.fetch })`,
   * `Deno.serve(handler.fetch)`, `export default { fetch: handler.fetch }`. The client address
   * for per-client limits is taken from what Deno (`info.remoteAddr`) and Bun
   * (`server.requestIP`) pass as the second argument.
   */
  readonly fetch: (request: Request, runtime?: unknown) => Promise<Response>;
  /**
   * A temporary key for the app's own server-side calls, for this context's API key, from the
   * proxy's provider (TTL `proxy.expireInSeconds`; never a key the token route vends).
   */
  getToken(ctx?: Ctx, opts?: HandlerGetTokenOptions): Promise<TemporaryToken>;
  /** The proxy's token provider (cache); the token route has its own. */
  readonly provider: TokenProvider;
  /** The normalised prefix, e.g. `/dashscope`. */
  readonly prefix: string;
  /** Live counters: requests in progress and the token caches. */
  stats(): FetchHandlerStats;
  /** Closes the providers the handler created and aborts the upstream calls in progress. */
  close(): Promise<void>;
}
