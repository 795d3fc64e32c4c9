import {
  createFetchHandler,
  type FetchHandler,
  type FetchHandlerOptions,
  type HandlerGetTokenOptions,
  runtimeInfo,
  type TemporaryToken,
} from '@dashscope-token/fetch';
import type { Context, MiddlewareHandler } from 'hono';

/** What the middleware puts on `c.get('dashscope')` for the app's own handlers. */
export interface DashScopeContextApi {
  /**
   * A temporary key (`st-…`) for this request's API key (the `apiKey` option, resolved with
   * this request's `Context` for multi-tenant setups), from the shared cache. Keep it on the
   * server.
   */
  getToken(opts?: HandlerGetTokenOptions): Promise<TemporaryToken>;
}

declare module 'hono' {
  interface ContextVariableMap {
    /**
     * Set by `dashscopeToken()` from `@dashscope-token/hono` on every request that passes
     * through it (mount it before the routes that use it).
     */
    dashscope: DashScopeContextApi;
  }
}

/**
 * Options of {@link dashscopeToken}: the fetch handler's options (see `createFetchHandler`),
 * with the Hono `Context` as what `apiKey` and `authorize` receive. `prefix` is the full path
 * as the client sends it: Hono does not strip mount paths (`app.route`, `app.basePath`).
 */
export type DashScopeHonoOptions = FetchHandlerOptions<Context>;

/** The Hono middleware returned by {@link dashscopeToken}. */
export interface DashScopeMiddleware extends MiddlewareHandler {
  /** The fetch handler it wraps (shares the token caches): `handler.getToken()`, `stats()`. */
  readonly handler: FetchHandler<Context>;
  /** Closes the token caches it created and aborts the upstream calls in progress. */
  close(): Promise<void>;
}

/**
 * The request to hand to the fetch handler: `c.req.raw`, or, when a middleware before this one
 * already read the body through Hono (`c.req.json()`, a validator), a copy of it carrying the
 * body Hono cached (a JSON body re-serialised, as the Node adapters do with a parsed body).
 */
async function unreadRequest(c: Context): Promise<Request> {
  const raw = c.req.raw;
  if (!raw.bodyUsed) return raw;
  // Read from `raw` itself, the body is gone: the proxy cannot read it and answers 500.
  if (Object.keys(c.req.bodyCache).length === 0) return raw;
  const body = await c.req.arrayBuffer();
  const headers = new Headers(raw.headers);
  headers.delete('content-length');
  return new Request(raw.url, { method: raw.method, headers, body, signal: raw.signal });
}

/**
 * Hono 4 middleware serving `POST {prefix}/token` and proxying `{prefix}/api/v1/…` and
 * `{prefix}/compatible-mode/v1/…` to Model Studio with a fresh temporary key injected, over the
 * fetch handler (`@dashscope-token/fetch`), so it runs wherever Hono runs. Requests outside
 * `prefix` go on to the next handler; every request gets `c.get('dashscope').getToken()`.
 *
 * - `prefix` is matched against the full request path: Hono does not strip mount paths, so
 *   under `app.route('/ai', sub)` or `app.basePath('/ai')` pass `prefix: '/ai/dashscope'`.
 * - WebSocket routes (`{prefix}/api-ws/v1/…`) are not proxied: an upgrade request that reaches
 *   Hono there (Bun, Deno, Workers) is answered 501 `NotImplemented`. On `@hono/node-server`
 *   upgrades never reach Hono; serve them with `createDashScopeHandler` from
 *   `@dashscope-token/core` on the server's `upgrade` event.
 *
 * @param options The fetch handler's options; `apiKey` and `authorize` functions receive the
 *   Hono `Context`. @default `{}` (routes under `/dashscope`, key from `DASHSCOPE_API_KEY`)
 * @throws DashScopeError `InvalidParameter` for invalid options.
 * @example
 * app.use(dashscopeToken());                          // routes under /dashscope
 * app.use(dashscopeToken({ prefix: '/ai/dashscope' })); // routes under /ai/dashscope
 */
export function dashscopeToken(options: DashScopeHonoOptions = {}): DashScopeMiddleware {
  const handler = createFetchHandler<Context>(options);
  const middleware: MiddlewareHandler = async (c, next) => {
    c.set('dashscope', { getToken: (opts) => handler.getToken(c, opts) });
    const request = await unreadRequest(c);
    // The client's address for per-client limits, from the runtime's bindings (`c.env`).
    const response = await handler.handle(request, c, runtimeInfo(c.req.raw, c.env));
    if (response !== undefined) return response;
    await next();
  };
  return Object.assign(middleware, { handler, close: () => handler.close() });
}

export default dashscopeToken;

export type {
  AuthorizeResult,
  FetchHandler,
  FetchHandlerOptions,
  HandlerGetTokenOptions,
  TemporaryToken,
} from '@dashscope-token/fetch';
export { DashScopeError, isDashScopeError } from '@dashscope-token/fetch';
