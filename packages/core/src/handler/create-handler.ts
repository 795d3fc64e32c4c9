import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { type Dispatcher, Pool } from 'undici';
import { createTokenProvider } from '../token/with-undici.js';
import { DEFAULT_CONNECT_TIMEOUT_MS } from '../transport/undici.js';
import type { TemporaryToken, TokenProvider, TokenProviderOptions } from '../types.js';
import { createWebSocketProxy } from '../ws/proxy.js';
import { resolveApiKey } from './access.js';
import { type HandlerConfig, resolveHandlerConfig } from './config.js';
import {
  type ErrorAnswer,
  type ErrorDialect,
  INTERNAL_ERROR,
  sendError,
} from './error-response.js';
import { logInternalError, logRefreshError, logRequest } from './logging.js';
import { handleProxyRoute, type ParsedBody, type ProxyContext } from './proxy-route.js';
import { matchRoute } from './routes.js';
import { handleTokenRoute } from './token-route.js';
import type {
  DashScopeHandler,
  DashScopeHandlerOptions,
  DashScopeHandlerStats,
  HandleOptions,
  HandlerGetTokenOptions,
} from './types.js';

const NOT_FOUND: ErrorAnswer = Object.freeze({
  status: 404,
  code: 'NotFound',
  message: 'No such route.',
});

const WEBSOCKET_NOT_AVAILABLE: ErrorAnswer = Object.freeze({
  status: 426,
  code: 'UpgradeRequired',
  message: 'This route only takes WebSocket upgrades.',
  headers: { upgrade: 'websocket', connection: 'Upgrade' },
});

const HTTP_09_REFUSED: ErrorAnswer = Object.freeze({
  status: 400,
  code: 'InvalidPath',
  message: 'Request target refused: HTTP/0.9 request line (no HTTP version).',
  headers: { connection: 'close' },
});

const CROSS_ORIGIN_REFUSED: ErrorAnswer = Object.freeze({
  status: 403,
  code: 'AccessDenied',
  message: 'Cross-origin requests from this origin are not allowed.',
});

/** Methods a preflight may ask for, per route. */
const TOKEN_PREFLIGHT_METHODS = 'POST';
const PROXY_PREFLIGHT_METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE';

function providerOptions<Ctx>(
  options: DashScopeHandlerOptions<Ctx>,
  expireInSeconds: number,
  minValiditySeconds: number,
): TokenProviderOptions {
  const out: TokenProviderOptions = { expireInSeconds, minValiditySeconds };
  if (typeof options.apiKey === 'string') out.apiKey = options.apiKey;
  if (options.baseUrl !== undefined) out.baseUrl = options.baseUrl;
  if (options.region !== undefined) out.region = options.region;
  if (options.workspaceId !== undefined) out.workspaceId = options.workspaceId;
  if (options.dispatcher !== undefined) out.dispatcher = options.dispatcher;
  if (options.connectTimeoutMs !== undefined) out.connectTimeoutMs = options.connectTimeoutMs;
  if (options.timeoutMs !== undefined) out.timeoutMs = options.timeoutMs;
  if (options.maxKeys !== undefined) out.maxKeys = options.maxKeys;
  if (options.refreshAheadSeconds !== undefined) {
    out.refreshAheadSeconds = options.refreshAheadSeconds;
  }
  if (options.retry !== undefined) out.retry = options.retry;
  if (options.negativeCacheSeconds !== undefined) {
    out.negativeCacheSeconds = options.negativeCacheSeconds;
  }
  const logger = options.logger;
  const onRefreshError = options.onRefreshError;
  if (logger !== undefined) {
    out.onRefreshError = (error) => {
      logRefreshError(logger, error);
      onRefreshError?.(error);
    };
  } else if (onRefreshError !== undefined) out.onRefreshError = onRefreshError;
  return out;
}

/**
 * Creates the framework-free front door to Model Studio: the token route
 * (`POST {prefix}/token`) and the key-injecting reverse proxy (`{prefix}/api/v1/…`,
 * `{prefix}/compatible-mode/v1/…`). Use it with plain `node:http`
 * (`http.createServer(handler)`), or through the Express and Koa adapters.
 *
 * - Browsers get short-lived keys (`tokenRoute.expireInSeconds`, 60 s) from the token route.
 * - Proxied requests get a key with `expireInSeconds` (1800 s) TTL and at least
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
  const config: HandlerConfig<Ctx> = resolveHandlerConfig(options);
  const ownsProvider = options.provider === undefined;
  const provider =
    options.provider ??
    createTokenProvider(
      providerOptions(options, config.expireInSeconds, config.minValiditySeconds),
    );
  let tokenProvider: TokenProvider | undefined;
  if (config.tokenRoute !== undefined) {
    tokenProvider =
      options.provider ??
      createTokenProvider(
        providerOptions(
          options,
          config.tokenRoute.expireInSeconds,
          config.tokenRoute.minValiditySeconds,
        ),
      );
  }
  const ownsDispatcher = options.dispatcher === undefined;
  const dispatcher: Dispatcher =
    options.dispatcher ??
    new Pool(config.origin, {
      connections: config.connections,
      connect: { timeout: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS },
      headersTimeout: config.headersTimeoutMs,
      bodyTimeout: config.bodyTimeoutMs,
    });
  const proxy: ProxyContext<Ctx> = { config, provider, dispatcher };
  const webSockets = createWebSocketProxy(
    options.websocket,
    config,
    provider,
    ownsProvider ? config.expireInSeconds : undefined,
  );
  const cors = config.cors;

  async function route(
    req: IncomingMessage,
    res: ServerResponse,
    handleOptions: HandleOptions<Ctx> | undefined,
  ): Promise<boolean> {
    const url = handleOptions?.url ?? req.url ?? '/';
    const match = matchRoute(url, config.prefix);
    if (match.kind === 'outside') return false;
    const ctx = (handleOptions?.context !== undefined ? handleOptions.context : req) as Ctx;
    const dialect: ErrorDialect = 'dialect' in match ? match.dialect : 'dashscope';
    if (req.httpVersionMajor === 0) {
      // Node parses a request line without a version (`GET /path\n`, or a raw LF inside the
      // target) as HTTP/0.9 and still reads headers after it: a request another server in
      // the path may split differently. Nothing legitimate speaks HTTP/0.9.
      sendError(res, dialect, HTTP_09_REFUSED);
      return true;
    }

    if (cors !== undefined || req.method === 'OPTIONS') {
      const origin = req.headers.origin;
      const routed =
        match.kind === 'proxy' || (match.kind === 'token' && config.tokenRoute !== undefined);
      if (
        routed &&
        req.method === 'OPTIONS' &&
        origin !== undefined &&
        req.headers['access-control-request-method'] !== undefined
      ) {
        const methods = match.kind === 'token' ? TOKEN_PREFLIGHT_METHODS : PROXY_PREFLIGHT_METHODS;
        const requested = req.headers['access-control-request-headers'];
        if (cors === undefined || !cors.answerPreflight(res, origin, methods, requested)) {
          sendError(res, dialect, CROSS_ORIGIN_REFUSED);
        }
        return true;
      }
      cors?.applyToResponse(res, origin);
    }

    switch (match.kind) {
      case 'proxy': {
        const parsed: ParsedBody | undefined =
          handleOptions?.parsedBody !== undefined ? { value: handleOptions.parsedBody } : undefined;
        await handleProxyRoute(
          req,
          res,
          ctx,
          match.dialect,
          match.target,
          match.query,
          parsed,
          proxy,
        );
        return true;
      }
      case 'token':
        if (tokenProvider === undefined) sendError(res, 'dashscope', NOT_FOUND);
        else await handleTokenRoute(req, res, ctx, config, tokenProvider);
        return true;
      case 'bad-target':
        sendError(res, match.dialect, {
          status: 400,
          code: 'InvalidPath',
          message: `Request target refused: ${match.reason}.`,
        });
        return true;
      case 'refused':
        sendError(res, match.dialect, {
          status: 403,
          code: 'AccessDenied',
          message: match.message,
        });
        return true;
      case 'websocket':
        sendError(res, 'dashscope', WEBSOCKET_NOT_AVAILABLE);
        return true;
      default:
        sendError(res, dialect, NOT_FOUND);
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
      if (logger !== undefined) logInternalError(logger, req, handleOptions?.url ?? req.url ?? '/');
      sendError(res, 'dashscope', INTERNAL_ERROR);
      return true;
    } finally {
      activeRequests--;
      if (handled && logger !== undefined) {
        logRequest(logger, req, res, handleOptions?.url ?? req.url ?? '/', started);
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
    const apiKey = await resolveApiKey(config.apiKey, ctx as Ctx);
    return provider.getToken({
      apiKey,
      minValiditySeconds: opts.minValiditySeconds ?? config.minValiditySeconds,
      ...(opts.forceRefresh !== undefined && { forceRefresh: opts.forceRefresh }),
      ...(opts.signal !== undefined && { signal: opts.signal }),
    });
  }

  let closing: Promise<void> | undefined;
  async function close(): Promise<void> {
    closing ??= (async () => {
      const tasks: Promise<unknown>[] = [];
      tasks.push(webSockets.close());
      if (ownsDispatcher) tasks.push(dispatcher.close());
      if (ownsProvider) {
        tasks.push(provider.close());
        if (tokenProvider !== undefined && tokenProvider !== provider) {
          tasks.push(tokenProvider.close());
        }
      }
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
      };
    }
    return {
      activeRequests,
      upstream,
      proxyTokens: provider.stats(),
      routeTokens:
        tokenProvider !== undefined && tokenProvider !== provider
          ? tokenProvider.stats()
          : undefined,
    };
  }

  Object.defineProperties(handler, {
    handle: { value: handle, enumerable: true },
    stats: { value: stats, enumerable: true },
    getToken: { value: getToken, enumerable: true },
    close: { value: close, enumerable: true },
    provider: { value: provider, enumerable: true },
    prefix: { value: config.prefix, enumerable: true },
    upgrade: {
      value: (req: IncomingMessage, socket: Duplex, head: Buffer) =>
        webSockets.handleUpgrade(req, socket, head),
      enumerable: true,
    },
    handleUpgrade: { value: webSockets.handleUpgrade, enumerable: true },
    websocketStats: { value: webSockets.stats, enumerable: true },
  });
  return handler;
}
