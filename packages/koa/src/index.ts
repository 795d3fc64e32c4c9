import {
  createDashScopeHandler,
  type DashScopeHandler,
  type DashScopeHandlerOptions,
  type HandlerGetTokenOptions,
  mountPathCheck,
  type TemporaryToken,
  type UpgradeListener,
  withUpgradeContext,
} from '@dashscope-token/core';
import type { Context, Next } from 'koa';
import { upgradeContext } from './upgrade-context.js';

/** What the middleware puts on `ctx.state.dashscope` for the app's own middleware. */
export interface DashScopeStateApi {
  /**
   * A temporary key (`st-…`) for this request's API key (the `apiKey` option, resolved with
   * this context for multi-tenant setups), from the shared cache. Keep it on the server.
   */
  getToken(opts?: HandlerGetTokenOptions): Promise<TemporaryToken>;
}

declare module 'koa' {
  interface DefaultState {
    /**
     * Set by `dashscopeToken()` from `@dashscope-token/koa` on every request that passes
     * through it (mount it before the middleware that uses it).
     */
    dashscope: DashScopeStateApi;
  }
}

/** Options of {@link dashscopeToken}: the core handler's options, with the Koa context as context. */
export type DashScopeKoaOptions = DashScopeHandlerOptions<Context>;

/** The Koa middleware returned by {@link dashscopeToken}. */
export interface DashScopeMiddleware {
  (ctx: Context, next: Next): Promise<void>;
  /** The core handler it wraps (shares the token cache and the upstream pool). */
  readonly handler: DashScopeHandler<Context>;
  /**
   * The WebSocket upgrade listener (upgrades do not pass through Koa):
   * `server.on('upgrade', mw.upgrade)`. Proxies `{prefix}/api-ws/v1/inference` and
   * `{prefix}/api-ws/v1/realtime`; leaves other upgrades to the server's other `upgrade`
   * listeners, or answers them 404 and closes them when it is the only one. `authorize` and
   * `apiKey` get a minimal context (`req`, `headers`, `get()`, `state: {}`; no other
   * middleware ran on it).
   */
  readonly upgrade: UpgradeListener;
  /** Closes the upstream pool and the token cache (if the middleware created it). */
  close(): Promise<void>;
}

/**
 * Koa 2/3 middleware serving `POST {prefix}/token` and proxying `{prefix}/api/v1/…` and
 * `{prefix}/compatible-mode/v1/…` to Model Studio with a fresh temporary key injected.
 * It answers those requests itself (`ctx.respond = false`); other requests go on to `next()`.
 * Every request gets `ctx.state.dashscope.getToken()`.
 *
 * @param options The core handler's options (see `createDashScopeHandler`); `apiKey` and
 *   `authorize` functions receive the Koa `ctx`. @default `{}` (key from `DASHSCOPE_API_KEY`)
 * @example
 * app.use(dashscopeToken());                                   // routes under /dashscope
 * app.use(dashscopeToken({ authorize: (ctx) => Boolean(ctx.state.user) }));
 */
export function dashscopeToken(options: DashScopeKoaOptions = {}): DashScopeMiddleware {
  const handler = createDashScopeHandler<Context>(withUpgradeContext(options, upgradeContext));
  const checkMountPath = mountPathCheck(options);
  const middleware = async (ctx: Context, next: Next): Promise<void> => {
    // Upgrades never see koa-mount: warn once that WebSockets stay at {prefix}.
    checkMountPath(mountPathOf(ctx));
    ctx.state.dashscope = { getToken: (opts) => handler.getToken(ctx, opts) };
    // koa-bodyparser / @koa/bodyparser leave what they consumed on ctx.request.body;
    // koa-mount rewrites ctx.url to be relative to the mount point.
    const parsedBody = (ctx.request as { body?: unknown }).body;
    // ctx.ip honours app.proxy: the client address per-client limits count by.
    const handling = { context: ctx, parsedBody, url: ctx.url, clientAddress: ctx.ip };
    if (await handler.handle(ctx.req, ctx.res, handling)) {
      ctx.respond = false; // the handler wrote the response
      return;
    }
    await next();
  };
  return Object.assign(middleware, {
    handler,
    close: () => handler.close(),
    upgrade: handler.upgrade,
  });
}

/** koa-mount's mount path: `ctx.mountPath`, else what `ctx.originalUrl` has before `ctx.path`. */
function mountPathOf(ctx: Context): string {
  const mounted = (ctx as { mountPath?: unknown }).mountPath;
  if (typeof mounted === 'string') return mounted;
  const original = ctx.originalUrl.split('?', 1)[0] ?? '';
  return original.endsWith(ctx.path) ? original.slice(0, original.length - ctx.path.length) : '';
}

export type {
  AuthorizeResult,
  DashScopeHandler,
  DashScopeHandlerOptions,
  HandlerGetTokenOptions,
  TemporaryToken,
  UpgradeListener,
  WebSocketOptions,
} from '@dashscope-token/core';
