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
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { upgradeRequest } from './upgrade-context.js';

/** What the middleware puts on `req.dashscope` for the app's own route handlers. */
export interface DashScopeRequestApi {
  /**
   * A temporary key (`st-…`) for this request's API key (the `apiKey` option, resolved with
   * this request for multi-tenant setups), from the shared cache. Keep it on the server.
   */
  getToken(opts?: HandlerGetTokenOptions): Promise<TemporaryToken>;
}

declare global {
  namespace Express {
    interface Request {
      /**
       * Set by `dashscopeToken()` from `@dashscope-token/express` on every request that passes
       * through it (mount it before the routes that use it).
       */
      dashscope: DashScopeRequestApi;
    }
  }
}

/** Options of {@link dashscopeToken}: the core handler's options, with the Express request as context. */
export type DashScopeExpressOptions = DashScopeHandlerOptions<Request>;

/** The Express middleware returned by {@link dashscopeToken}. */
export interface DashScopeMiddleware extends RequestHandler {
  /** The core handler it wraps (shares the token cache and the upstream pool). */
  readonly handler: DashScopeHandler<Request>;
  /**
   * The WebSocket upgrade listener (upgrades do not pass through Express):
   * `server.on('upgrade', mw.upgrade)`. Proxies `{prefix}/api-ws/v1/inference` and
   * `{prefix}/api-ws/v1/realtime`; leaves other upgrades to the server's other `upgrade`
   * listeners, or answers them 404 and closes them when it is the only one. `authorize` and
   * `apiKey` get the handshake request with `req.get()` (no other middleware ran on it).
   */
  readonly upgrade: UpgradeListener;
  /** Closes the upstream pool and the token cache (if the middleware created it). */
  close(): Promise<void>;
}

/**
 * Express 4/5 middleware serving `POST {prefix}/token` and proxying `{prefix}/api/v1/…` and
 * `{prefix}/compatible-mode/v1/…` to Model Studio with a fresh temporary key injected.
 * Requests outside `prefix` go on to the next middleware; every request gets
 * `req.dashscope.getToken()`.
 *
 * @param options The core handler's options (see `createDashScopeHandler`); `apiKey` and
 *   `authorize` functions receive the Express `req`. @default `{}` (key from `DASHSCOPE_API_KEY`)
 * @example
 * app.use(dashscopeToken());               // routes under /dashscope, key from DASHSCOPE_API_KEY
 * app.use('/ai', dashscopeToken());        // HTTP routes under /ai/dashscope (warns once:
 *                                          // WebSockets stay at /dashscope)
 * app.use(dashscopeToken({ prefix: '/ai/dashscope' })); // everything under /ai/dashscope
 */
export function dashscopeToken(options: DashScopeExpressOptions = {}): DashScopeMiddleware {
  const handler = createDashScopeHandler<Request>(withUpgradeContext(options, upgradeRequest));
  const checkMountPath = mountPathCheck(options);
  const middleware = (req: Request, res: Response, next: NextFunction): void => {
    // Upgrades never see app.use('/ai', …): warn once that WebSockets stay at {prefix}.
    checkMountPath(req.baseUrl ?? '');
    req.dashscope = { getToken: (opts) => handler.getToken(req, opts) };
    // Express strips its mount path from req.url (req.originalUrl keeps it).
    // req.ip honours the app's `trust proxy`: the client address per-client limits count by.
    handler
      .handle(req, res, { context: req, parsedBody: req.body, url: req.url, clientAddress: req.ip })
      .then(
        (handled) => {
          if (!handled) next();
        },
        (error: unknown) => next(error),
      );
  };
  return Object.assign(middleware, {
    handler,
    close: () => handler.close(),
    upgrade: handler.upgrade,
  });
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
