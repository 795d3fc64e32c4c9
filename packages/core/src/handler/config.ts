import { DashScopeError } from '../errors.js';
import { resolveBaseUrl } from '../regions.js';
import { CorsPolicy } from './cors.js';
import { normalisePrefix } from './routes.js';
import type { DashScopeHandlerOptions } from './types.js';

/** Default mount prefix. */
export const DEFAULT_PREFIX = '/dashscope';
/** Default TTL of keys injected by the proxy, seconds. */
export const DEFAULT_PROXY_EXPIRE_IN_SECONDS = 1800;
/** Default TTL of keys vended by the token route, seconds. */
export const DEFAULT_TOKEN_ROUTE_EXPIRE_IN_SECONDS = 60;
/** Default minimum remaining life of a vended key, seconds. */
export const DEFAULT_TOKEN_ROUTE_MIN_VALIDITY_SECONDS = 30;
/** Default minimum remaining life of an injected key, seconds. */
export const DEFAULT_PROXY_MIN_VALIDITY_SECONDS = 60;
/** Default minimum remaining life of a key injected into a streaming request, seconds. */
export const DEFAULT_STREAMING_MIN_VALIDITY_SECONDS = 600;
/** Default largest request body, bytes. */
export const DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024;
/** Default milliseconds to wait for upstream response headers. */
export const DEFAULT_HEADERS_TIMEOUT_MS = 300_000;
/** Default most keep-alive connections to upstream. */
export const DEFAULT_CONNECTIONS = 128;
/** Default largest streamed body kept in memory for a replay after a 401, bytes. */
export const DEFAULT_REPLAY_BUFFER_BYTES = 64 * 1024;

/** Options resolved, validated and precomputed once per handler. */
export interface HandlerConfig<Ctx> {
  prefix: string;
  /** `scheme://host[:port]` of Model Studio. */
  origin: string;
  /** Path prefix of the base URL (usually `''`), prepended to upstream paths. */
  basePath: string;
  apiKey: DashScopeHandlerOptions<Ctx>['apiKey'];
  authorize: DashScopeHandlerOptions<Ctx>['authorize'];
  expireInSeconds: number;
  tokenRoute: { expireInSeconds: number; minValiditySeconds: number } | undefined;
  cors: CorsPolicy | undefined;
  minValiditySeconds: number;
  streamingMinValiditySeconds: number;
  maxBodyBytes: number;
  bodyTimeoutMs: number;
  headersTimeoutMs: number;
  connections: number;
  replayBufferBytes: number;
  forwardClientIdentity: boolean;
  allowModels: ReadonlySet<string> | undefined;
}

function invalid(message: string): DashScopeError {
  return new DashScopeError({ code: 'InvalidParameter', status: 400, retryable: false, message });
}

function integer(
  value: number | undefined,
  fallback: number,
  name: string,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw invalid(`Invalid ${name} ${String(v)}: expected an integer in ${min}..${max}.`);
  }
  return v;
}

function below(value: number, limit: number, name: string, limitName: string): void {
  if (value >= limit) {
    throw invalid(
      `${name} ${value} is not below ${limitName} ${limit}: no key could have that much life left.`,
    );
  }
}

/**
 * Resolves handler options.
 * @throws DashScopeError `InvalidParameter` for invalid options (at creation, not per request).
 */
export function resolveHandlerConfig<Ctx>(
  options: DashScopeHandlerOptions<Ctx>,
): HandlerConfig<Ctx> {
  let prefix: string;
  try {
    prefix = normalisePrefix(options.prefix ?? DEFAULT_PREFIX);
  } catch {
    throw invalid(
      `Invalid prefix ${JSON.stringify(options.prefix)}: expected a plain path such as "/dashscope".`,
    );
  }
  const base = new URL(resolveBaseUrl(options));
  const expireInSeconds = integer(
    options.expireInSeconds,
    DEFAULT_PROXY_EXPIRE_IN_SECONDS,
    'expireInSeconds',
    1,
    1800,
  );
  const proxy = options.proxy ?? {};
  const minValiditySeconds = integer(
    proxy.minValiditySeconds,
    Math.min(DEFAULT_PROXY_MIN_VALIDITY_SECONDS, Math.floor(expireInSeconds / 2)),
    'proxy.minValiditySeconds',
    0,
  );
  const streamingMinValiditySeconds = integer(
    proxy.streamingMinValiditySeconds,
    Math.max(
      minValiditySeconds,
      Math.min(DEFAULT_STREAMING_MIN_VALIDITY_SECONDS, Math.floor(expireInSeconds / 2)),
    ),
    'proxy.streamingMinValiditySeconds',
    0,
  );
  if (options.provider === undefined) {
    below(minValiditySeconds, expireInSeconds, 'proxy.minValiditySeconds', 'expireInSeconds');
    below(
      streamingMinValiditySeconds,
      expireInSeconds,
      'proxy.streamingMinValiditySeconds',
      'expireInSeconds',
    );
  }
  let tokenRoute: HandlerConfig<Ctx>['tokenRoute'];
  if (options.tokenRoute !== false) {
    const t = options.tokenRoute ?? {};
    const ttl = integer(
      t.expireInSeconds,
      DEFAULT_TOKEN_ROUTE_EXPIRE_IN_SECONDS,
      'tokenRoute.expireInSeconds',
      1,
      1800,
    );
    const min = integer(
      t.minValiditySeconds,
      Math.min(DEFAULT_TOKEN_ROUTE_MIN_VALIDITY_SECONDS, Math.floor(ttl / 2)),
      'tokenRoute.minValiditySeconds',
      0,
    );
    if (options.provider === undefined)
      below(min, ttl, 'tokenRoute.minValiditySeconds', 'tokenRoute.expireInSeconds');
    tokenRoute = { expireInSeconds: ttl, minValiditySeconds: min };
  }
  const cors = options.cors ? new CorsPolicy(options.cors) : undefined;
  const allowModels = options.allowModels === undefined ? undefined : new Set(options.allowModels);
  return {
    prefix,
    origin: base.origin,
    basePath: base.pathname === '/' ? '' : base.pathname.replace(/\/+$/, ''),
    apiKey: options.apiKey,
    authorize: options.authorize,
    expireInSeconds,
    tokenRoute,
    cors,
    minValiditySeconds,
    streamingMinValiditySeconds,
    maxBodyBytes: integer(proxy.maxBodyBytes, DEFAULT_MAX_BODY_BYTES, 'proxy.maxBodyBytes', 0),
    bodyTimeoutMs: integer(proxy.bodyTimeoutMs, 0, 'proxy.bodyTimeoutMs', 0),
    headersTimeoutMs: integer(
      proxy.headersTimeoutMs,
      DEFAULT_HEADERS_TIMEOUT_MS,
      'proxy.headersTimeoutMs',
      1,
    ),
    connections: integer(proxy.connections, DEFAULT_CONNECTIONS, 'proxy.connections', 1),
    replayBufferBytes: integer(
      proxy.replayBufferBytes,
      DEFAULT_REPLAY_BUFFER_BYTES,
      'proxy.replayBufferBytes',
      0,
    ),
    forwardClientIdentity: proxy.forwardClientIdentity === true,
    allowModels,
  };
}
