/**
 * The options every front door shares (the node:http handler, the Fetch handler and the
 * adapters over them), grouped by what they govern: the token route, the proxy, CORS, and the
 * settings of the whole handler. Runtime-neutral types.
 */

import type { EndpointOptions, TokenProvider, TokenProviderOptions } from '../types.js';
import type { BudgetsOptions } from './budgets.js';
import type { LimitsOptions } from './limits.js';
import type { DashScopeLogger } from './logging.js';
import type { PaiEasRoutesOptions } from './pai-eas.js';
import type { UsageHook } from './usage.js';

/** Who a request is from, as `authorize` names them: per-client limits count against `id`. */
export interface Identity {
  /** A stable id of the user or app (non-empty). */
  id: string;
}

/**
 * What `authorize` may return: `true`/`undefined` = allowed; an {@link Identity} `{ id }` =
 * allowed as that client; `false` = 403; or an explicit refusal with its status (and an
 * optional message shown to the client).
 */
export type AuthorizeResult =
  | boolean
  // biome-ignore lint/suspicious/noConfusingVoidType: lets `authorize` be a function that returns nothing when it allows.
  | void
  | Identity
  | { status: 401 | 403; message?: string };

/** The permanent key, or a function of the request context (multi-tenant). */
export type ApiKeyOption<Ctx> =
  | string
  | ((ctx: Ctx) => string | undefined | Promise<string | undefined>);

/** The `authorize` hook. */
export type AuthorizeOption<Ctx> = (ctx: Ctx) => AuthorizeResult | Promise<AuthorizeResult>;

/**
 * Cache options forwarded to the token providers the handler creates (not to a provider given
 * in `provider`); see `TokenProviderOptions` for each one's meaning and default.
 */
export type HandlerCacheOptions = Pick<
  TokenProviderOptions,
  | 'maxKeys'
  | 'refreshAheadSeconds'
  | 'retry'
  | 'negativeCacheSeconds'
  | 'onRefreshError'
  | 'store'
  | 'storeTimeoutMs'
  | 'onStoreError'
>;

/** Options of the token route, `POST {prefix}/token`. */
export interface TokenRouteOptions {
  /**
   * TTL, in seconds, of the temporary keys vended to browsers (1..1800).
   * @default 60
   */
  expireInSeconds?: number;
  /**
   * A vended key has at least this many seconds of life left.
   * @default 30 (half the TTL when the TTL is shorter than 60 s)
   */
  minValiditySeconds?: number;
}

/** CORS for the token route and the proxy routes. */
export interface CorsOptions {
  /** Allowed origins (exact `scheme://host[:port]` strings), or a predicate. */
  origins: readonly string[] | ((origin: string) => boolean);
  /**
   * Send `Access-Control-Allow-Credentials: true`.
   * @default false
   */
  credentials?: boolean;
  /**
   * `Access-Control-Max-Age` of preflight answers, in seconds.
   * @default 600
   */
  maxAgeSeconds?: number;
}

/** Options of the key-injecting proxy (`{prefix}/api/v1/…`, `{prefix}/compatible-mode/v1/…`). */
export interface ProxyOptions {
  /**
   * TTL, in seconds, of the temporary keys the proxy injects upstream (never seen by clients;
   * also the keys of WebSocket handshakes and of `handler.getToken()`), 1..1800.
   * @default 1800
   */
  expireInSeconds?: number;
  /**
   * If set, JSON bodies whose `model` (and any `model` query parameter) is not listed are
   * refused with 403 (and bodies are read, up to `maxBodyBytes`, to check); a body naming
   * `model` more than once is refused with 400 `InvalidParameter`.
   * @default undefined (any model)
   */
  allowModels?: readonly string[];
  /**
   * Minimum remaining life, in seconds, of a key injected into a request.
   * @default 60 (half of `expireInSeconds` when that is shorter than 120 s)
   */
  minValiditySeconds?: number;
  /**
   * Same, for streaming requests (SSE: `X-DashScope-SSE: enable`, `Accept: text/event-stream`,
   * or a JSON body with `stream: true` when the body is read).
   * @default 600 (half of `expireInSeconds` when that is shorter than 1200 s)
   */
  streamingMinValiditySeconds?: number;
  /**
   * Largest request body in bytes; larger bodies get 413 and never reach upstream.
   * @default 10485760 (10 MiB)
   */
  maxBodyBytes?: number;
  /**
   * Milliseconds without upstream bytes before a response body is cut; 0 = never
   * (streams of reasoning models can be silent for minutes).
   * @default 0
   */
  bodyTimeoutMs?: number;
  /**
   * Milliseconds to receive a request body the proxy reads whole before forwarding it (with
   * `allowModels`, or small enough to replay after a 401); a slower upload gets 408 and the
   * connection is closed. `0` = no limit (Node's own `requestTimeout` still applies).
   * @default 30000
   */
  bodyReadTimeoutMs?: number;
  /**
   * Milliseconds a client may leave a proxied answer unread (the proxy waiting to write to
   * it) before the exchange is cut: the upstream request is aborted and its pooled connection
   * freed, so clients that stop reading cannot hold the upstream pool. `0` = never.
   * @default 60000
   */
  sendTimeoutMs?: number;
  /**
   * Milliseconds to wait for upstream response headers (504 beyond).
   * @default 300000
   */
  headersTimeoutMs?: number;
  /**
   * Most keep-alive connections to upstream (node:http handler; the Fetch handler leaves
   * connection reuse to the runtime's `fetch`).
   * @default 128
   */
  connections?: number;
  /**
   * Most proxied requests waiting for one of the `connections` (node:http handler), every
   * client together; one more is answered 503 `Throttling.PoolBusy` (retryable). Waiting
   * requests are served fairly: a client with none in flight first, then the clients in turn,
   * so that clients holding connections cannot starve a newcomer. PAI-EAS service calls have
   * a queue per service origin.
   * @default 10000
   */
  queueLength?: number;
  /**
   * Milliseconds a proxied request may wait for a connection before it is answered 503
   * `Throttling.PoolBusy` (node:http handler). `0` = no limit.
   * @default 60000
   */
  queueTimeoutMs?: number;
  /**
   * Largest streamed request body (with a `Content-Length`) kept in memory so that the
   * request can be replayed once with a fresh key after an upstream 401.
   * Bodies that are read anyway (parsed, or checked against `allowModels`) are always replayable.
   * @default 65536 (64 KiB)
   */
  replayBufferBytes?: number;
  /**
   * Forward the client's `X-Forwarded-For` / `X-Forwarded-Proto` / `X-Forwarded-Host` and
   * `Forwarded` headers upstream. Off by default: Model Studio has no use for the client's
   * identity, and it would leak the user's address to a third party.
   * @default false
   */
  forwardClientIdentity?: boolean;
  /**
   * More request header names to forward upstream (HTTP and WebSocket handshakes), in any case.
   * Request headers go upstream on an allow-list: `Accept`, `Accept-Language`, `Cache-Control`,
   * `Content-Type`, `Content-Encoding`, `Content-Language`, `User-Agent`, `Idempotency-Key`,
   * `X-Request-Id`, `X-Client-Request-Id` and every `X-DashScope-*`, `OpenAI-*` and
   * `X-Stainless-*` header; everything else is dropped. Credentials, framing and hop-by-hop
   * headers, `X-Original-URL`, `X-Rewrite-URL`, method overrides (`X-HTTP-Method-Override`,
   * `X-HTTP-Method`, `X-Method-Override`) and `X-Api-Key`/`Api-Key` are never forwarded: naming
   * one throws `InvalidParameter`.
   * @default [] (the allow-list only)
   */
  forwardHeaders?: readonly string[];
}

/**
 * Token providers to use instead of the ones the handler creates. The token route and the proxy
 * never share a key: giving the same provider for both is refused with `InvalidParameter` (a
 * key handed to a browser is never the key injected into proxied calls).
 */
export interface HandlerProviders {
  /** Cache of the keys injected into proxied calls and WebSocket handshakes. @default a new provider (TTL `proxy.expireInSeconds`) */
  proxy?: TokenProvider;
  /** Cache of the keys the token route vends. @default a new provider (TTL `tokenRoute.expireInSeconds`) */
  tokenRoute?: TokenProvider;
}

/** The options of a handler that are the same in every runtime. */
export interface SharedHandlerOptions<Ctx> extends EndpointOptions, HandlerCacheOptions {
  /**
   * Permanent key, or a function of the request context (multi-tenant; each tenant gets its own
   * cache entry). A function returning `undefined` refuses the request with 500 `MissingApiKey`.
   * @default process.env.DASHSCOPE_API_KEY
   */
  apiKey?: ApiKeyOption<Ctx>;
  /**
   * Mount path of the routes; normalised to a leading `/` and no trailing `/`.
   * @default '/dashscope'
   */
  prefix?: string;
  /**
   * Guards the token route, the proxy and WebSocket upgrades. `true`/`undefined` allows;
   * `false` answers 403; `{status: 401}` answers 401. A throw answers 500 without the thrown
   * message (a thrown DashScopeError answers with its own status and code).
   * @default undefined (everyone allowed)
   */
  authorize?: AuthorizeOption<Ctx>;
  /**
   * Per-client limits: separate budgets for the token route, the proxy and WebSocket session
   * starts, per client (the `id` `authorize` returns, else the client address; see
   * `LimitsOptions.key`). Over a budget: 429 with `Retry-After`, nothing sent upstream. Kept in
   * the `store` when it keeps limits (`@dashscope-token/redis`), so they hold across instances;
   * in memory otherwise. `false` turns every limit off.
   * @default { tokenRoute: { points: 60, durationSeconds: 60 }, proxy: { points: 600,
   *   durationSeconds: 60 }, websocket: { points: 30, durationSeconds: 60 } }
   */
  limits?: false | LimitsOptions<Ctx>;
  /**
   * Per-identity budgets of the proxy (Model Studio and PAI-EAS) and WebSocket session starts:
   * `{ requests?, tokens?, periodSeconds, key?, models? }` (`models`: budgets per identity and
   * model, `{ 'qwen-max': { tokens: 100000 } }`, checked once the JSON body is read). A request
   * of an identity whose budget for the current period is spent is answered 429 `BudgetExceeded` (with `Retry-After`: the seconds
   * until the period resets), and nothing is sent upstream. Periods are aligned to the epoch
   * (`periodSeconds: 86400` resets at 00:00 UTC). Requests count at admission; tokens after the
   * answer (from its usage), so one request can overshoot by its own size. Kept in the `store`
   * when it keeps budgets (`@dashscope-token/redis`), so they hold across instances; in memory
   * otherwise. The token route is not budgeted (a browser calls Model Studio itself with the
   * key it gets there).
   * @default undefined (no budgets)
   */
  budgets?: BudgetsOptions<Ctx>;
  /**
   * Called once per proxied answer that carries usage (JSON answers of both dialects, native
   * and OpenAI-compatible SSE, embeddings, image and speech tasks) and per WebSocket task or
   * realtime response, when it ended, with who spent what: identity (like the per-client
   * limits), key hash (never the key), route, model, token counts, request id, status, duration
   * and `complete`. Usage is read as the answer passes: nothing is held back or changed for the
   * client (a JSON answer is kept up to 1 MiB to be parsed at its end; SSE is scanned line by
   * line). A cut 2xx answer is reported with `complete: false` and the last usage seen (native
   * streams: the running totals; otherwise none). A throw or a rejected promise is logged
   * (`error`) and ignored. See the README's "Usage metering".
   * @default undefined (no metering: no answer is read)
   */
  onUsage?: UsageHook<Ctx>;
  /**
   * Meter OpenAI-compatible streams whose client did not ask for usage: a streaming
   * `POST /compatible-mode/v1/chat/completions` (or `/completions`) without
   * `stream_options.include_usage` gets `stream_options: {include_usage: true}` added to the
   * body forwarded upstream, and what that changes in the stream (the usage-only chunk, and the
   * `"usage": null` of every other chunk) is taken out again: the client receives what it would
   * have without metering. The trade-off: such bodies are read whole (up to
   * `proxy.maxBodyBytes`, within `proxy.bodyReadTimeoutMs`) and re-serialised instead of
   * streamed, and each SSE event is relayed once complete (an event split over network chunks
   * waits for its end; never for the next event; one over 1 MiB passes unstripped). Native SSE
   * always carries usage and is not changed; PAI-EAS calls are not changed. Only with `onUsage`
   * (or the handler's own budgets or telemetry) listening.
   * @default false
   */
  meterStreams?: boolean;
  /**
   * Longest wait, in milliseconds, for `authorize` and `apiKey` (together) on one request or
   * WebSocket handshake; beyond it the request is answered 504 `Timeout`. A client that leaves
   * while they run is not waited for either. `0` = no limit.
   * @default 10000
   */
  hookTimeoutMs?: number;
  /**
   * Token route options, or `false` to disable `POST {prefix}/token` (it then answers 404).
   * @default {}
   */
  tokenRoute?: false | TokenRouteOptions;
  /**
   * CORS for the token route (and proxy routes): allow-listed origins, or false.
   * @default false
   */
  cors?: false | CorsOptions;
  /** Proxy options. @default {} */
  proxy?: ProxyOptions;
  /**
   * The PAI-EAS routes, `POST {prefix}/pai-eas/workbench` and
   * `{prefix}/pai-eas/services/{service}/…`: pass `createPaiEas({ region, services,
   * authorizeWorkbench, endpoint?, credentials? })` from `@dashscope-token/pai-eas`.
   * @default undefined (both routes answer 404)
   */
  paiEas?: PaiEasRoutesOptions<Ctx>;
  /**
   * Existing token providers for the proxy and/or the token route (never one for both).
   * @default two new providers
   */
  provider?: HandlerProviders;
  /**
   * Milliseconds to establish the TCP/TLS connection of a mint (and, in the node:http handler,
   * of proxied calls).
   * @default 5000
   */
  connectTimeoutMs?: number;
  /**
   * Milliseconds for one whole token request (connect, headers and body).
   * @default 10000
   */
  timeoutMs?: number;
  /**
   * Where to log: one `info` line per request the handler answers (method, path without query,
   * status, duration, request id), `warn` for failed background key refreshes, `error` for
   * unexpected handler failures. Never header values (`Authorization`, `Cookie`), query
   * strings, bodies or keys. `console` works.
   * @default undefined (no logging)
   */
  logger?: DashScopeLogger;
  /**
   * @deprecated Use `proxy.expireInSeconds` (same meaning, same default); giving both with
   * different values is refused.
   * @default undefined (`proxy.expireInSeconds` decides: 1800)
   */
  expireInSeconds?: number;
  /**
   * @deprecated Use `proxy.allowModels` (same meaning); giving both is refused.
   * @default undefined (`proxy.allowModels` decides: any model)
   */
  allowModels?: readonly string[];
}

/** Options of `handler.getToken(ctx, opts)`. */
export interface HandlerGetTokenOptions {
  /** Minimum remaining life, in seconds. @default proxy.minValiditySeconds (60) */
  minValiditySeconds?: number;
  /** Mint a new key even if a cached one satisfies the call. @default false */
  forceRefresh?: boolean;
  /** Stops waiting. */
  signal?: AbortSignal;
}
