/**
 * The handler's options resolved ONCE, validated and precomputed, into the one config both
 * executors (node:http and Fetch) carry out. Each setting has one meaning and one default.
 */

import { resolveBaseUrl } from '../regions.js';
import { invalidOption } from '../token/errors.js';
import type { TokenProvider, TokenProviderOptions } from '../types.js';
import type { AccessPolicy } from './admission.js';
import { Budgets } from './budgets.js';
import { CorsPolicy } from './cors.js';
import { forwardedHeaderNames } from './headers.js';
import { Limits } from './limits.js';
import { logRefreshError, logStoreError } from './logging.js';
import type { HandlerProviders, SharedHandlerOptions } from './options.js';
import { type PaiEasConfig, resolvePaiEasConfig } from './pai-eas.js';
import { RemintLimiter } from './remint.js';
import { normalisePrefix } from './routes.js';
import { runtimeTelemetry, type Telemetry } from './telemetry.js';
import { Metering } from './usage.js';
import {
  resolveWebSocketConfig,
  type WebSocketConfig,
  type WebSocketSettings,
} from './websocket-config.js';

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
/** Default longest time to receive a request body that is read whole, milliseconds. */
export const DEFAULT_BODY_READ_TIMEOUT_MS = 30_000;
/** Default longest time a client may leave a proxied answer unread, milliseconds. */
export const DEFAULT_SEND_TIMEOUT_MS = 60_000;
/** Default longest wait for `authorize` and `apiKey`, milliseconds. */
export const DEFAULT_HOOK_TIMEOUT_MS = 10_000;
/** Default largest streamed body kept in memory for a replay after a 401, bytes. */
export const DEFAULT_REPLAY_BUFFER_BYTES = 64 * 1024;

/** Options resolved, validated and precomputed once per handler. */
export interface HandlerConfig<Ctx, Req = never> extends AccessPolicy<Ctx> {
  prefix: string;
  /** `scheme://host[:port]` of Model Studio. */
  origin: string;
  /** Path prefix of the base URL (usually `''`), prepended to upstream paths. */
  basePath: string;
  /** TTL of the keys the proxy injects (`proxy.expireInSeconds`). */
  expireInSeconds: number;
  tokenRoute: { expireInSeconds: number; minValiditySeconds: number } | undefined;
  cors: CorsPolicy | undefined;
  minValiditySeconds: number;
  streamingMinValiditySeconds: number;
  maxBodyBytes: number;
  bodyTimeoutMs: number;
  /** `proxy.bodyReadTimeoutMs`; 0 = none. */
  bodyReadTimeoutMs: number;
  /** `proxy.sendTimeoutMs`; 0 = none. */
  sendTimeoutMs: number;
  headersTimeoutMs: number;
  connections: number;
  replayBufferBytes: number;
  forwardClientIdentity: boolean;
  /** `proxy.forwardHeaders`, lower-cased. */
  forwardHeaders: ReadonlySet<string>;
  allowModels: ReadonlySet<string> | undefined;
  /** `undefined` when WebSockets are off (or the executor has none). */
  websocket: WebSocketConfig<Ctx, Req> | undefined;
  /** The providers given in `provider`, checked. */
  providers: HandlerProviders;
  /** Per-client limits; `undefined` when `limits: false`. */
  limits: Limits<Ctx> | undefined;
  /** Per-identity budgets (`budgets`); `undefined` when none. Counts tokens through `metering`. */
  budgets: Budgets<Ctx> | undefined;
  /** The PAI-EAS routes, `undefined` when off. */
  paiEas: PaiEasConfig<Ctx> | undefined;
  /** Re-mints after upstream 401s, per permanent key (state of this handler). */
  remints: RemintLimiter;
  /**
   * Usage metering: `onUsage`, and the handler's own listeners (budgets, telemetry). Executors
   * meter an answer only when `metering.active`.
   */
  metering: Metering<Ctx>;
  /**
   * The `diagnostics_channel` channels requests, limit hits and usage are published on
   * (`undefined` in runtimes without them).
   */
  telemetry: Telemetry | undefined;
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
    throw invalidOption(`Invalid ${name} ${String(v)}: expected an integer in ${min}..${max}.`);
  }
  return v;
}

function below(value: number, limit: number, name: string, limitName: string): void {
  if (value >= limit) {
    throw invalidOption(
      `${name} ${value} is not below ${limitName} ${limit}: no key could have that much life left.`,
    );
  }
}

/** A TTL option: an integer number of seconds in 1..1800. */
function ttlOption(value: number | undefined, fallback: number, name: string): number {
  return integer(value, fallback, name, 1, 1800);
}

/**
 * A minimum-validity option: by default `fallback`, capped at half the TTL (and never below
 * `atLeast`); checked below the TTL when the handler mints with that TTL itself (`checked`).
 */
function floorOption(
  value: number | undefined,
  fallback: number,
  name: string,
  ttl: number,
  ttlName: string,
  checked: boolean,
  atLeast = 0,
): number {
  const v = integer(value, Math.max(atLeast, Math.min(fallback, Math.floor(ttl / 2))), name, 0);
  if (checked) below(v, ttl, name, ttlName);
  return v;
}

/** A deprecated top-level option and its new place: either one, not two different values. */
function moved<T>(
  oldValue: T | undefined,
  newValue: T | undefined,
  oldName: string,
  newName: string,
) {
  if (oldValue !== undefined && newValue !== undefined && oldValue !== newValue) {
    throw invalidOption(
      `${oldName} is deprecated and conflicts with ${newName}: set ${newName} only.`,
    );
  }
  return newValue ?? oldValue;
}

function isProvider(value: unknown): value is TokenProvider {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as TokenProvider).getToken === 'function'
  );
}

/**
 * `provider` checked: `{ proxy?, tokenRoute? }`, never one provider for both (a key vended to a
 * browser is never the key injected into proxied calls).
 */
function checkProviders(provider: unknown): HandlerProviders {
  if (provider === undefined) return {};
  if (isProvider(provider)) {
    throw invalidOption(
      'Invalid provider: pass { proxy: provider } (and optionally { tokenRoute: anotherProvider }); ' +
        'the token route and the proxy never share a provider.',
    );
  }
  if (typeof provider !== 'object' || provider === null) {
    throw invalidOption('Invalid provider: expected { proxy?, tokenRoute? }.');
  }
  const { proxy, tokenRoute } = provider as HandlerProviders;
  for (const [name, value] of [
    ['provider.proxy', proxy],
    ['provider.tokenRoute', tokenRoute],
  ] as const) {
    if (value !== undefined && !isProvider(value)) {
      throw invalidOption(`Invalid ${name}: expected a TokenProvider (createTokenProvider()).`);
    }
  }
  if (proxy !== undefined && proxy === tokenRoute) {
    throw invalidOption(
      'Invalid provider: provider.proxy and provider.tokenRoute are the same provider; the keys ' +
        'vended to browsers must never be the keys injected into proxied calls.',
    );
  }
  return { ...(proxy !== undefined && { proxy }), ...(tokenRoute !== undefined && { tokenRoute }) };
}

/**
 * Resolves handler options, once.
 * @param websocket the `websocket` option (node:http executor; `undefined` = defaults), `false`
 *   when WebSockets are off or the executor has none
 * @param telemetry the runtime's channels (the Node entry's own; by default those
 *   `process.getBuiltinModule` gives, where it exists)
 * @throws DashScopeError `InvalidParameter` for invalid options (at creation, not per request).
 */
export function resolveHandlerConfig<Ctx, Req = never>(
  options: SharedHandlerOptions<Ctx>,
  websocket: false | WebSocketSettings<Ctx, Req> | undefined,
  telemetry: Telemetry | undefined = runtimeTelemetry(),
): HandlerConfig<Ctx, Req> {
  let prefix: string;
  try {
    prefix = normalisePrefix(options.prefix ?? DEFAULT_PREFIX);
  } catch {
    throw invalidOption(
      `Invalid prefix ${JSON.stringify(options.prefix)}: expected a plain path such as "/dashscope".`,
    );
  }
  const providers = checkProviders(options.provider);
  const base = new URL(resolveBaseUrl(options));
  const proxy = options.proxy ?? {};
  const expireInSeconds = ttlOption(
    moved(
      options.expireInSeconds,
      proxy.expireInSeconds,
      'expireInSeconds',
      'proxy.expireInSeconds',
    ),
    DEFAULT_PROXY_EXPIRE_IN_SECONDS,
    'proxy.expireInSeconds',
  );
  const ownProxy = providers.proxy === undefined;
  const minValiditySeconds = floorOption(
    proxy.minValiditySeconds,
    DEFAULT_PROXY_MIN_VALIDITY_SECONDS,
    'proxy.minValiditySeconds',
    expireInSeconds,
    'proxy.expireInSeconds',
    ownProxy,
  );
  const streamingMinValiditySeconds = floorOption(
    proxy.streamingMinValiditySeconds,
    DEFAULT_STREAMING_MIN_VALIDITY_SECONDS,
    'proxy.streamingMinValiditySeconds',
    expireInSeconds,
    'proxy.expireInSeconds',
    ownProxy,
    minValiditySeconds,
  );
  let tokenRoute: HandlerConfig<Ctx, Req>['tokenRoute'];
  if (options.tokenRoute !== false) {
    const t = options.tokenRoute ?? {};
    const ttl = ttlOption(
      t.expireInSeconds,
      DEFAULT_TOKEN_ROUTE_EXPIRE_IN_SECONDS,
      'tokenRoute.expireInSeconds',
    );
    const min = floorOption(
      t.minValiditySeconds,
      DEFAULT_TOKEN_ROUTE_MIN_VALIDITY_SECONDS,
      'tokenRoute.minValiditySeconds',
      ttl,
      'tokenRoute.expireInSeconds',
      providers.tokenRoute === undefined,
    );
    tokenRoute = { expireInSeconds: ttl, minValiditySeconds: min };
  }
  let cors: CorsPolicy | undefined;
  if (options.cors) {
    cors = CorsPolicy.compile(options.cors);
    if (cors === undefined) {
      throw invalidOption('Invalid cors.origins: expected an array of origins or a function.');
    }
  }
  const models = moved(options.allowModels, proxy.allowModels, 'allowModels', 'proxy.allowModels');
  const forwardHeaders = forwardedHeaderNames(proxy.forwardHeaders);
  if ('refused' in forwardHeaders) {
    throw invalidOption(
      `Invalid proxy.forwardHeaders: ${JSON.stringify(forwardHeaders.refused)} is never forwarded (a credential, a framing header or a header that rewrites the target or method).`,
    );
  }
  const metering = meteringWith(
    new Metering({
      onUsage: hookOption(options.onUsage, 'onUsage'),
      meterStreams: options.meterStreams,
      logger: options.logger,
    }),
    telemetry,
  );
  const onStoreError = storeErrorReporter(options);
  const origin = base.origin;
  const basePath = base.pathname === '/' ? '' : base.pathname.replace(/\/+$/, '');
  return {
    prefix,
    origin,
    basePath,
    apiKey: options.apiKey,
    authorize: options.authorize,
    hookTimeoutMs: integer(options.hookTimeoutMs, DEFAULT_HOOK_TIMEOUT_MS, 'hookTimeoutMs', 0),
    expireInSeconds,
    tokenRoute,
    cors,
    minValiditySeconds,
    streamingMinValiditySeconds,
    maxBodyBytes: integer(proxy.maxBodyBytes, DEFAULT_MAX_BODY_BYTES, 'proxy.maxBodyBytes', 0),
    bodyTimeoutMs: integer(proxy.bodyTimeoutMs, 0, 'proxy.bodyTimeoutMs', 0),
    sendTimeoutMs: integer(proxy.sendTimeoutMs, DEFAULT_SEND_TIMEOUT_MS, 'proxy.sendTimeoutMs', 0),
    bodyReadTimeoutMs: integer(
      proxy.bodyReadTimeoutMs,
      DEFAULT_BODY_READ_TIMEOUT_MS,
      'proxy.bodyReadTimeoutMs',
      0,
    ),
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
    forwardHeaders,
    allowModels: models === undefined ? undefined : new Set(models),
    websocket: resolveWebSocketConfig(
      websocket,
      origin,
      basePath,
      minValiditySeconds,
      providers.proxy === undefined ? expireInSeconds : undefined,
    ),
    providers,
    limits: Limits.resolve({ ...options, onStoreError }),
    budgets: Budgets.resolve({ ...options, onStoreError }, metering),
    paiEas: resolvePaiEasConfig(options.paiEas),
    remints: new RemintLimiter(),
    metering,
    telemetry,
  };
}

/** `metering`, also publishing on the usage channel while it has a subscriber. */
function meteringWith<Ctx>(
  metering: Metering<Ctx>,
  telemetry: Telemetry | undefined,
): Metering<Ctx> {
  if (telemetry !== undefined) {
    metering.listenWhen(
      () => telemetry.usageWanted,
      (event, ctx) => telemetry.usage(event, ctx),
    );
  }
  return metering;
}

/** A hook option: a function, or `undefined`. */
function hookOption<T>(value: T | undefined, name: string): T | undefined {
  if (value !== undefined && typeof value !== 'function') {
    throw invalidOption(`Invalid ${name}: expected a function.`);
  }
  return value;
}

/** `onStoreError`, and a `warn` line to `logger` (once per outage: the store guard's rule). */
function storeErrorReporter<Ctx>(
  options: SharedHandlerOptions<Ctx>,
): SharedHandlerOptions<Ctx>['onStoreError'] {
  const { logger, onStoreError } = options;
  if (logger === undefined) return onStoreError;
  return (error) => {
    logStoreError(logger, error);
    onStoreError?.(error);
  };
}

/** The options of a provider the handler creates: its TTL and floor, plus the shared ones. */
function providerOptions<Ctx>(
  options: SharedHandlerOptions<Ctx> & Pick<TokenProviderOptions, 'dispatcher'>,
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
  if (options.store !== undefined) out.store = options.store;
  if (options.storeTimeoutMs !== undefined) out.storeTimeoutMs = options.storeTimeoutMs;
  const onStoreError = storeErrorReporter(options);
  if (onStoreError !== undefined) out.onStoreError = onStoreError;
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

/** The token providers of a handler: the proxy's and the token route's, never the same one. */
export interface HandlerTokenProviders {
  proxy: TokenProvider;
  tokenRoute: TokenProvider | undefined;
  /** Closes the providers the handler created (not the ones given in `provider`). */
  close(): Promise<void>;
}

/**
 * Creates the providers `provider` does not give, with the executor's `create`
 * (`createTokenProvider` with the runtime's transport).
 */
export function createHandlerProviders<Ctx, Req>(
  options: SharedHandlerOptions<Ctx> & Pick<TokenProviderOptions, 'dispatcher'>,
  config: HandlerConfig<Ctx, Req>,
  create: (options: TokenProviderOptions) => TokenProvider,
): HandlerTokenProviders {
  const owned: TokenProvider[] = [];
  const make = (ttl: number, min: number): TokenProvider => {
    const provider = create(providerOptions(options, ttl, min));
    owned.push(provider);
    return provider;
  };
  const proxy = config.providers.proxy ?? make(config.expireInSeconds, config.minValiditySeconds);
  const route = config.tokenRoute;
  const tokenRoute =
    route === undefined
      ? undefined
      : (config.providers.tokenRoute ?? make(route.expireInSeconds, route.minValiditySeconds));
  return {
    proxy,
    tokenRoute,
    async close() {
      await Promise.all(owned.map((p) => p.close()));
    },
  };
}
