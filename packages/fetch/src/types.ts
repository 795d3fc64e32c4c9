import type {
  HandlerGetTokenOptions,
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
}

/** The handler returned by {@link createFetchHandler}. */
export interface FetchHandler<Ctx = Request> {
  /**
   * Answers `request` when its path is under `prefix`; resolves `undefined` otherwise, so that
   * a framework can fall through to its other routes. `context` is what `authorize` and
   * `apiKey` get (default: the `Request`). Never rejects for request errors (it answers them).
   */
  handle(request: Request, context?: Ctx): Promise<Response | undefined>;
  /**
   * `handle` with a 404 outside `prefix`, bound (no `.bind` needed):
   * `export const POST = handler.fetch`, `Bun.serve({ fetch: handler.fetch })`,
   * `Deno.serve(handler.fetch)`, `export default { fetch: handler.fetch }`.
   */
  readonly fetch: (request: Request) => Promise<Response>;
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
