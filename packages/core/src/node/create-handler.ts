import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { Agent, type Dispatcher, Pool } from 'undici';
import { appToken } from '../policy/admission.js';
import { INTERNAL_ERROR, NOT_FOUND } from '../policy/answers.js';
import {
  createHandlerProviders,
  type HandlerConfig,
  resolveHandlerConfig,
} from '../policy/config.js';
import { logInternalError } from '../policy/logging.js';
import type { HandlerGetTokenOptions } from '../policy/options.js';
import { paiEasProxyConfig } from '../policy/pai-eas.js';
import { PoolQueue, PoolQueues, resolvePoolQueue } from '../policy/pool-queue.js';
import { planRequest, type RequestPlan } from '../policy/request.js';
import { originHost, requestRouteKind } from '../policy/telemetry.js';
import { createTokenProvider } from '../token/with-undici.js';
import { DEFAULT_CONNECT_TIMEOUT_MS } from '../transport/undici.js';
import type { TemporaryToken } from '../types.js';
import { sendError, setHeaders, writeAnswer } from './answer.js';
import { logNodeRequest } from './logging.js';
import { handleWorkbenchRoute } from './pai-eas-workbench.js';
import { handleProxyRoute, type ProxyContext } from './proxy-route.js';
import { endNodeRequest, nodeTelemetry } from './telemetry.js';
import { handleTokenRoute } from './token-route.js';
import type {
  DashScopeHandler,
  DashScopeHandlerOptions,
  DashScopeHandlerStats,
  HandleOptions,
} from './types.js';
import { createWebSocketProxy } from './websocket/proxy.js';
import { isLastOwnListener, markUpgradeListener, refuseStrayUpgrade } from './websocket/stray.js';

function parsedOf<Ctx>(handleOptions: HandleOptions<Ctx> | undefined) {
  return handleOptions?.parsedBody !== undefined ? { value: handleOptions.parsedBody } : undefined;
}

/**
 * Creates the node:http front door to Model Studio: the token route
 * (`POST {prefix}/token`) and the key-injecting reverse proxy (`{prefix}/api/v1/…`,
 * `{prefix}/compatible-mode/v1/…`), plus the WebSocket proxy. Use it with plain `node:http`
 * (`http.createServer(handler)`), or through the Express and Koa adapters.
 *
 * - Browsers get short-lived keys (`tokenRoute.expireInSeconds`, 60 s) from the token route's
 *   own provider.
 * - Proxied requests get a key with `proxy.expireInSeconds` (1800 s) TTL and at least
 *   `proxy.minValiditySeconds` (60 s; `proxy.streamingMinValiditySeconds`, 600 s, for streams)
 *   of life left, injected as `Authorization: Bearer st-…`; the permanent key never leaves the
 *   server.
 * - Bodies stream through both ways (SSE unbuffered); client disconnects abort upstream.
 *
 * @throws DashScopeError `InvalidParameter` for invalid options.
 * @example
 * import http from 'node:http';
 * import { createDashScopeHandler } from '@dashscope-token/core';
 *
 * const dashscope = createDashScopeHandler({ region: 'ap-southeast-1' }); // DASHSCOPE_API_KEY
 * http.createServer(dashscope).listen(3000);
 */
export function createDashScopeHandler<Ctx = IncomingMessage>(
  options: DashScopeHandlerOptions<Ctx> = {},
): DashScopeHandler<Ctx> {
  const config: HandlerConfig<Ctx, IncomingMessage> = resolveHandlerConfig(
    options,
    options.websocket,
    nodeTelemetry,
  );
  const providers = createHandlerProviders(options, config, createTokenProvider);
  const provider = providers.proxy;
  const tokenProvider = providers.tokenRoute;
  const ownsDispatcher = options.dispatcher === undefined;
  const dispatcher: Dispatcher =
    options.dispatcher ??
    new Pool(config.origin, {
      connections: config.connections,
      connect: { timeout: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS },
      headersTimeout: config.headersTimeoutMs,
      bodyTimeout: config.bodyTimeoutMs,
    });
  // Fair turns on the connections, so that clients holding them cannot starve a newcomer.
  const queueSettings = resolvePoolQueue(options.proxy, config.connections);
  const queue = ownsDispatcher ? new PoolQueue(queueSettings) : undefined;
  const proxy: ProxyContext<Ctx> = { config, provider, dispatcher, memo: {}, queue };
  const paiEas = config.paiEas;
  let easDispatcher: Agent | undefined;
  if (paiEas !== undefined) {
    easDispatcher = new Agent({
      connections: config.connections,
      connect: { timeout: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS },
      headersTimeout: config.headersTimeoutMs,
      bodyTimeout: config.bodyTimeoutMs,
    });
    proxy.paiEas = {
      config: paiEas,
      proxyConfig: paiEasProxyConfig(config),
      dispatcher: easDispatcher,
      queues: new PoolQueues(queueSettings),
    };
  }
  const webSockets = createWebSocketProxy(config, provider);
  const upstreamHost = originHost(config.origin);

  async function route(
    req: IncomingMessage,
    res: ServerResponse,
    handleOptions: HandleOptions<Ctx> | undefined,
  ): Promise<boolean> {
    const plan = planRequest(config, {
      method: req.method ?? 'GET',
      url: handleOptions?.url ?? req.url ?? '/',
      headers: req.headers,
      http09: req.httpVersionMajor === 0,
    });
    if (plan.kind === 'outside') return false;
    if (plan.cors.length > 0) setHeaders(res, plan.cors);
    const ctx = (handleOptions?.context !== undefined ? handleOptions.context : req) as Ctx;
    if (plan.kind === 'answer') {
      writeAnswer(res, plan.answer);
      return true;
    }
    const traced = nodeTelemetry.startRequest(
      req.method ?? 'GET',
      requestRouteKind(plan),
      handleOptions?.url ?? req.url ?? '/',
      ctx,
      upstreamHost,
    );
    try {
      return await routePlanned(req, res, handleOptions, plan, ctx);
    } finally {
      if (traced !== undefined) endNodeRequest(traced, ctx, res);
    }
  }

  async function routePlanned(
    req: IncomingMessage,
    res: ServerResponse,
    handleOptions: HandleOptions<Ctx> | undefined,
    plan: Exclude<RequestPlan, { kind: 'outside' | 'answer' }>,
    ctx: Ctx,
  ): Promise<boolean> {
    switch (plan.kind) {
      case 'token':
        await handleTokenRoute(res, ctx, config, tokenProvider!, {
          address: handleOptions?.clientAddress ?? req.socket?.remoteAddress,
          headers: req.headers,
        });
        return true;
      case 'proxy': {
        await handleProxyRoute(
          req,
          res,
          {
            ctx,
            dialect: plan.dialect,
            target: plan.target,
            query: plan.query,
            parsed: parsedOf(handleOptions),
            clientAddress: handleOptions?.clientAddress ?? req.socket?.remoteAddress,
          },
          proxy,
        );
        return true;
      }
      case 'pai-eas-workbench':
        await handleWorkbenchRoute(req, res, ctx, config, paiEas!, parsedOf(handleOptions));
        return true;
      case 'pai-eas-service':
        await handleProxyRoute(
          req,
          res,
          {
            ctx,
            dialect: 'dashscope',
            target: plan.target,
            query: plan.query,
            parsed: parsedOf(handleOptions),
            clientAddress: handleOptions?.clientAddress ?? req.socket?.remoteAddress,
            service: plan.service,
          },
          proxy,
        );
        return true;
    }
  }

  const logger = options.logger;
  let activeRequests = 0;

  async function handle(
    req: IncomingMessage,
    res: ServerResponse,
    handleOptions?: HandleOptions<Ctx>,
  ): Promise<boolean> {
    const started = logger === undefined ? 0 : performance.now();
    let handled = true;
    activeRequests++;
    try {
      handled = await route(req, res, handleOptions);
      return handled;
    } catch {
      // A bug, not a request error: answer 500 without details rather than hang.
      if (logger !== undefined) {
        logInternalError(logger, req.method, handleOptions?.url ?? req.url ?? '/');
      }
      sendError(res, 'dashscope', INTERNAL_ERROR);
      return true;
    } finally {
      activeRequests--;
      if (handled && logger !== undefined) {
        logNodeRequest(logger, req, res, handleOptions?.url ?? req.url ?? '/', started);
      }
    }
  }

  const handler = ((req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void) => {
    handle(req, res).then((handled) => {
      if (handled) return;
      if (next) next();
      else sendError(res, 'dashscope', NOT_FOUND);
    });
  }) as DashScopeHandler<Ctx>;

  async function getToken(ctx?: Ctx, opts: HandlerGetTokenOptions = {}): Promise<TemporaryToken> {
    return appToken(config, provider, ctx as Ctx, opts);
  }

  let closing: Promise<void> | undefined;
  async function close(): Promise<void> {
    closing ??= (async () => {
      const tasks: Promise<unknown>[] = [webSockets.close(), providers.close()];
      if (ownsDispatcher) tasks.push(dispatcher.close());
      if (easDispatcher !== undefined) tasks.push(easDispatcher.close());
      await Promise.all(tasks);
    })();
    return closing;
  }

  function stats(): DashScopeHandlerStats {
    let upstream: DashScopeHandlerStats['upstream'];
    if (ownsDispatcher) {
      const pool = (dispatcher as Pool).stats;
      upstream = {
        connected: pool.connected,
        free: pool.free,
        pending: pool.pending,
        queued: pool.queued,
        running: pool.running,
        size: pool.size,
        queue: queue!.stats(),
      };
    }
    return {
      activeRequests,
      upstream,
      proxyTokens: provider.stats(),
      routeTokens: tokenProvider?.stats(),
      limits: config.limits?.stats(),
      budgets: config.budgets?.stats(),
    };
  }

  // Called by the server as its listener (`this` is the server): an upgrade outside the
  // handler's routes is answered 404 and closed when no other listener can take it.
  const upgrade = markUpgradeListener(function upgrade(
    this: unknown,
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
  ): boolean {
    if (webSockets.handleUpgrade(req, socket, head)) return true;
    if (!isLastOwnListener(this, upgrade)) return false;
    refuseStrayUpgrade(socket);
    return true;
  });

  Object.defineProperties(handler, {
    handle: { value: handle, enumerable: true },
    stats: { value: stats, enumerable: true },
    getToken: { value: getToken, enumerable: true },
    close: { value: close, enumerable: true },
    provider: { value: provider, enumerable: true },
    prefix: { value: config.prefix, enumerable: true },
    upgrade: { value: upgrade, enumerable: true },
    handleUpgrade: { value: webSockets.handleUpgrade, enumerable: true },
    websocketStats: { value: webSockets.stats, enumerable: true },
  });
  return handler;
}
