import {
  type Admitted,
  AnswerMeter,
  admitServiceCall,
  admitWithinLimits,
  appToken,
  BODY_READ_TIMEOUT,
  bearer,
  boundAdmission,
  CLIENT_GONE,
  type ClientFacts,
  checkProxyBody,
  checkProxyMethod,
  completeUpstreamHeaders,
  createHandlerProviders,
  createTokenProvider,
  type DiagnosticsRequest,
  type ErrorAnswer,
  type ErrorDialect,
  enterProxy,
  errorAnswer,
  fetchTransport,
  type HandlerConfig,
  type HandlerGetTokenOptions,
  INTERNAL_ERROR,
  logInternalError,
  logRequest,
  meterStreamsReads,
  NOT_FOUND,
  type NoReplay,
  obtainToken,
  originHost,
  type ProxyMemo,
  type ProxyPlan,
  paiEasProxyConfig,
  payloadTooLargeAnswer,
  planProxy,
  planRequest,
  proxyTokenCall,
  type ReadBody,
  type RelayMeter,
  requestRouteKind,
  resolveHandlerConfig,
  serviceFailureAnswer,
  serviceGrant,
  type TemporaryToken,
  type TokenProviderOptions,
  tokenAfterUnauthorized,
  tokenAnswer,
  transportFailureAnswer,
  unauthorizedUpstreamAnswer,
  withFreshKey,
  withinModelBudgets,
  withServiceToken,
} from '@dashscope-token/core/neutral';
import { toResponse } from './answer.js';

import { BodyTimeoutError, BodyTooLargeError, limitedStream, readUpTo } from './body.js';
import { exchange, relay } from './forward.js';
import { workbenchRoute } from './pai-eas-workbench.js';
import type { FetchHandler, FetchHandlerOptions, FetchHandlerStats, HandleInfo } from './types.js';

/** The request telemetry tracks, while a channel has a subscriber. */
interface RequestTrace {
  request?: DiagnosticsRequest | undefined;
  ctx?: unknown;
  /** The answer's `x-request-id`, read when the handler returned it. */
  requestId?: string | undefined;
}

/** A refusal, with EAS's request id when EAS answered. */
type Refusal = { refused: ErrorAnswer; requestId?: string };

/**
 * Hands the end of a request's accounting over to its relayed body: `relayWith` gets the
 * function to call once the body ended or was cancelled.
 */
type Settle = (relayWith: (release: () => void) => void) => void;

/** One proxied request as the route sees it. */
interface ProxyCall<Ctx> {
  request: Request;
  ctx: Ctx;
  dialect: ErrorDialect;
  /** Path + query relative to the mount point. */
  target: string;
  query: string;
  cors: readonly string[];
  settle: Settle;
  client: ClientFacts;
  /** The PAI-EAS service called, if it is a service call. */
  service: string | undefined;
}

/** Model Studio's 401 body, for its request id: at most 64 KiB, cancelled beyond. */
async function readRefusal(response: Response): Promise<string> {
  if (response.body === null) return '';
  try {
    const read = await readUpTo(response.body, REFUSAL_BYTES, REFUSAL_BYTES);
    return read.done ? new TextDecoder().decode(read.bytes) : '';
  } catch {
    return '';
  }
}

const REFUSAL_BYTES = 64 * 1024;

/** The mount-relative target of a `Request`: its path and query, exactly as serialised. */
function targetOf(url: string): string {
  const scheme = url.indexOf('://');
  const start = scheme < 0 ? -1 : url.indexOf('/', scheme + 3);
  if (start < 0) return '/';
  const hash = url.indexOf('#', start);
  return hash < 0 ? url.slice(start) : url.slice(start, hash);
}

/**
 * The client address in what a runtime passes `fetch` besides the request: Deno's
 * `ServeHandlerInfo` (`remoteAddr.hostname`), Bun's `Server` (`requestIP(request).address`), or
 * `@hono/node-server`'s bindings (`incoming.socket.remoteAddress`). Adapters pass what they get
 * (Hono: `c.env`).
 */
export function runtimeInfo(request: Request, runtime: unknown): HandleInfo | undefined {
  if (typeof runtime !== 'object' || runtime === null) return undefined;
  const deno = (runtime as { remoteAddr?: { hostname?: unknown } }).remoteAddr?.hostname;
  if (typeof deno === 'string') return { clientAddress: deno };
  const node = (runtime as { incoming?: { socket?: { remoteAddress?: unknown } } }).incoming?.socket
    ?.remoteAddress;
  if (typeof node === 'string') return { clientAddress: node };
  const bun = runtime as { requestIP?: (request: Request) => { address?: unknown } | null };
  if (typeof bun.requestIP !== 'function') return undefined;
  try {
    const address = bun.requestIP(request)?.address;
    return typeof address === 'string' ? { clientAddress: address } : undefined;
  } catch {
    return undefined;
  }
}

function headerRecord(headers: Headers): Record<string, string> {
  const record: Record<string, string> = {};
  headers.forEach((value, name) => {
    record[name] = value;
  });
  return record;
}

function flatHeaders(headers: Headers): string[] {
  const flat: string[] = [];
  headers.forEach((value, name) => {
    flat.push(name, value);
  });
  return flat;
}

/**
 * Creates the Fetch API front door to Model Studio (`Request` → `Response`): the token route
 * (`POST {prefix}/token`) and the key-injecting proxy (`{prefix}/api/v1/…`,
 * `{prefix}/compatible-mode/v1/…`), with the routes, options, errors and guarantees of the
 * node:http handler. Runs wherever there is `fetch` and Web streams: Next.js route handlers,
 * Hono, Bun, Deno, Cloudflare Workers, edge functions.
 *
 * - Browsers get short-lived keys from the token route's own provider.
 * - Proxied calls get a fresh temporary key (`Authorization: Bearer st-…`); the permanent key
 *   never leaves the server.
 * - Bodies stream both ways (`duplex: 'half'` upstream, SSE relayed chunk by chunk);
 *   `request.signal` aborts the upstream call.
 * - WebSocket upgrades are not proxied: an upgrade on a WebSocket route is answered 501.
 *
 * @throws DashScopeError `InvalidParameter` for invalid options.
 * @example
 * // app/dashscope/[...path]/route.ts (Next.js App Router)
 * const dashscope = createFetchHandler({ region: 'ap-southeast-1' }); // DASHSCOPE_API_KEY
 * export const GET = dashscope.fetch;
 * export const POST = dashscope.fetch;
 */
export function createFetchHandler<Ctx = Request>(
  options: FetchHandlerOptions<Ctx> = {},
): FetchHandler<Ctx> {
  const handlerConfig: HandlerConfig<Ctx> = resolveHandlerConfig(options, false);
  const config = handlerConfig;
  const paiEas = handlerConfig.paiEas;
  const easConfig = paiEas === undefined ? undefined : paiEasProxyConfig(handlerConfig);
  const customFetch = options.fetch;
  const fetchImpl: typeof fetch = (input, init) => (customFetch ?? globalThis.fetch)(input, init);
  const transport = customFetch === undefined ? undefined : fetchTransport({ fetch: customFetch });
  const providers = createHandlerProviders(options, config, (o: TokenProviderOptions) =>
    createTokenProvider(transport === undefined ? o : { ...o, transport }),
  );
  const provider = providers.proxy;
  const tokenProvider = providers.tokenRoute;
  const memo: { current?: ProxyMemo } = {};
  const upstreamHost = originHost(config.origin);
  const logger = options.logger;
  /** Aborted by `close()`: every upstream call in progress. */
  const closing = new AbortController();
  let activeRequests = 0;

  async function tokenRoute(
    request: Request,
    ctx: Ctx,
    cors: readonly string[],
    client: ClientFacts,
  ): Promise<Response> {
    let admission = admitWithinLimits(config, 'tokenRoute', ctx, client);
    if (admission instanceof Promise) {
      admission = await boundAdmission(config, admission, request.signal);
    }
    if ('refused' in admission)
      return toResponse(errorAnswer('dashscope', admission.refused), cors);
    const token = await obtainToken(tokenProvider!, {
      apiKey: admission.apiKey,
      minValiditySeconds: config.tokenRoute!.minValiditySeconds,
    });
    if ('refused' in token) return toResponse(errorAnswer('dashscope', token.refused), cors);
    return toResponse(tokenAnswer(token), cors);
  }

  /** The body of a proxied request, as the plan says: none, bytes, or a limited stream. */
  async function bodyOf(
    request: Request,
    plan: ProxyPlan,
    tooLarge: () => void,
  ): Promise<Uint8Array | ReadableStream<Uint8Array> | null> {
    if (plan.body === 'none' || request.body === null) return null;
    const limit = config.maxBodyBytes;
    if (plan.body === 'read') {
      const read = await readUpTo(request.body, limit, limit, config.bodyReadTimeoutMs);
      return read.done ? read.bytes : null;
    }
    // A body of unknown length small enough to replay is held; a larger one streams.
    const hold = plan.declared === undefined ? config.replayBufferBytes : 0;
    const peeked = await readUpTo(request.body, hold, limit, config.bodyReadTimeoutMs);
    if (peeked.done) return peeked.bytes;
    return limitedStream(peeked.head, peeked.size, peeked.reader, limit, tooLarge);
  }

  async function proxyRoute(call: ProxyCall<Ctx>): Promise<Response> {
    const { request, ctx, dialect, cors, settle, client, service } = call;
    const fail = (error: ErrorAnswer, requestId?: string) =>
      toResponse(errorAnswer(dialect, error, requestId), cors);
    const method = request.method;
    const refusedMethod = checkProxyMethod(method);
    if (refusedMethod !== undefined) return fail(refusedMethod);
    const eas = service === undefined ? undefined : paiEas;
    const config = eas === undefined ? handlerConfig : easConfig!;
    const started = config.metering.active ? performance.now() : 0;
    let admission =
      eas === undefined
        ? admitWithinLimits(config, 'proxy', ctx, client)
        : admitServiceCall(handlerConfig, ctx, client);
    if (admission instanceof Promise) {
      admission = await boundAdmission(handlerConfig, admission, request.signal);
    }
    if ('refused' in admission) return fail(admission.refused);
    // One slot of the client's concurrency, given back once: when the relayed body ends or is
    // cancelled, or at once for any other answer.
    const entered = enterProxy(handlerConfig.limits, ctx, admission, client);
    if ('refused' in entered) return fail(entered.refused);
    let handedOver = false;
    const settleReleasing: Settle = (relayWith) => {
      handedOver = true;
      settle((done) =>
        relayWith(() => {
          entered.slot.release();
          done();
        }),
      );
    };
    try {
      return await proxyAdmitted({ ...call, settle: settleReleasing }, admission, started);
    } finally {
      if (!handedOver) entered.slot.release();
    }
  }

  /** The rest of a proxied request once admitted: plan, body, key, exchange and relay. */
  async function proxyAdmitted(
    call: ProxyCall<Ctx>,
    admission: Admitted,
    /** `performance.now()` when the request arrived (metering only). */
    started: number,
  ): Promise<Response> {
    const { request, ctx, dialect, target, query, cors, settle, client, service } = call;
    const fail = (error: ErrorAnswer, requestId?: string) =>
      toResponse(errorAnswer(dialect, error, requestId), cors);
    const method = request.method;
    const eas = service === undefined ? undefined : paiEas;
    const config = eas === undefined ? handlerConfig : easConfig!;
    const apiKey = eas === undefined ? admission.apiKey : '';
    const metered = config.metering.active;
    const plan = planProxy(config, target, {
      method,
      rawHeaders: flatHeaders(request.headers),
      transferEncoding: request.headers.get('transfer-encoding') ?? undefined,
      bodyPresent: request.body !== null,
    });
    if (!('upstreamPath' in plan)) return fail(plan);
    if (metered) meterStreamsReads(config, plan, method, target, service);

    let streamedTooLarge = false;
    let body: Uint8Array | ReadableStream<Uint8Array> | null;
    try {
      body = await bodyOf(request, plan, () => {
        streamedTooLarge = true;
      });
    } catch (error) {
      if (request.signal.aborted) return fail(CLIENT_GONE);
      if (error instanceof BodyTimeoutError) return fail(BODY_READ_TIMEOUT);
      return fail(
        error instanceof BodyTooLargeError
          ? payloadTooLargeAnswer(config.maxBodyBytes)
          : INTERNAL_ERROR,
      );
    }
    const read: ReadBody | undefined = body instanceof Uint8Array ? { bytes: body } : undefined;
    const checked = checkProxyBody(config, plan, query, read);
    if (!('streaming' in checked)) return fail(checked);
    let withinModel = withinModelBudgets(config, ctx, admission, client, { read, query });
    if (withinModel instanceof Promise) withinModel = await withinModel;
    if ('refused' in withinModel) return fail(withinModel.refused);
    let meter: RelayMeter | undefined;
    if (metered) {
      const facts = { ctx, admitted: admission, client, target, query, dialect, service, read };
      const answerMeter = new AnswerMeter(config, { ...facts, started }, method);
      if (answerMeter.body !== undefined) body = answerMeter.body;
      meter = answerMeter;
    }

    // fetch sets the length of the body it sends; content-encoding of the answer is decoded by
    // fetch, so only identity is asked for.
    let url: string;
    let headers: string[];
    /** A fresh credential after a 401: the replay's URL and headers, or the refusal. */
    let afterUnauthorized: () => Promise<{ url: string; headers: string[] } | Refusal | NoReplay>;
    if (eas === undefined) {
      const call = proxyTokenCall(config, memo, apiKey, checked.streaming);
      const token = await obtainToken(provider, { ...call, signal: request.signal });
      if ('refused' in token) {
        if (body instanceof ReadableStream) body.cancel().catch(() => {});
        return fail(request.signal.aborted ? CLIENT_GONE : token.refused);
      }
      url = config.origin + plan.upstreamPath;
      headers = completeUpstreamHeaders(
        plan,
        undefined,
        checked.streaming,
        bearer(memo, token.token),
        true,
      );
      afterUnauthorized = async () => {
        const fresh = await tokenAfterUnauthorized(
          provider,
          apiKey,
          token.token,
          call.minValiditySeconds,
          handlerConfig.remints,
        );
        if ('refused' in fresh || 'noReplay' in fresh) return fresh;
        return { url, headers: withFreshKey(headers, fresh.token) };
      };
    } else {
      const grant = await serviceGrant(eas, service!, target, request.signal);
      if ('refused' in grant) {
        if (body instanceof ReadableStream) body.cancel().catch(() => {});
        return fail(request.signal.aborted ? CLIENT_GONE : grant.refused, grant.requestId);
      }
      url = grant.origin + grant.path;
      const base = completeUpstreamHeaders(plan, undefined, checked.streaming, '', true);
      headers = withServiceToken(base, grant.token);
      afterUnauthorized = async () => {
        const fresh = await serviceGrant(eas, service!, target, undefined, grant);
        if ('refused' in fresh) return fresh;
        return { url: fresh.origin + fresh.path, headers: withServiceToken(base, fresh.token) };
      };
    }
    const upstreamAbort = new AbortController();
    const onClose = () => upstreamAbort.abort();
    request.signal.addEventListener('abort', onClose, { once: true });
    closing.signal.addEventListener('abort', onClose, { once: true });
    const release = () => {
      request.signal.removeEventListener('abort', onClose);
      closing.signal.removeEventListener('abort', onClose);
    };
    const upstream = {
      url,
      method,
      headers,
      body,
      headersTimeoutMs: config.headersTimeoutMs,
      signal: upstreamAbort.signal,
    };
    let outcome = await exchange(fetchImpl, upstream);
    const refusedKey = outcome.kind === 'answer' && outcome.response.status === 401;
    if (refusedKey && !(body instanceof ReadableStream)) {
      // The injected key was refused (expired early, revoked): once more with a fresh one,
      // unless re-mints for this key are rate-limited (then answered without a replay).
      const fresh = await afterUnauthorized();
      if (!('noReplay' in fresh)) {
        if (outcome.kind === 'answer') outcome.response.body?.cancel().catch(() => {});
        if ('refused' in fresh) {
          release();
          return fail(fresh.refused, fresh.requestId);
        }
        outcome = await exchange(fetchImpl, { ...upstream, ...fresh });
      }
    } else if (refusedKey) {
      // A streamed body cannot be sent again; the next request gets a fresh key (evicting the
      // shared key at most once per key per interval, like a re-mint).
      if (eas !== undefined) void afterUnauthorized().catch(() => {});
      else if (handlerConfig.remints.allow(apiKey)) provider.invalidate(apiKey);
    }
    if (outcome.kind === 'answer' && outcome.response.status === 401) {
      // Never relayed: it is the server's key (or the service's token) that failed, not the
      // client's.
      release();
      const refused = outcome.response;
      const text = await readRefusal(refused);
      const answer = unauthorizedUpstreamAnswer(
        (name) => refused.headers.get(name) ?? undefined,
        text,
        [apiKey],
      );
      return fail(eas === undefined ? answer : serviceFailureAnswer(answer));
    }
    if (outcome.kind !== 'answer') {
      release();
      if (outcome.kind === 'aborted') return fail(CLIENT_GONE);
      if (streamedTooLarge) return fail(payloadTooLargeAnswer(config.maxBodyBytes));
      const failure = transportFailureAnswer(outcome.failure);
      return fail(eas === undefined ? failure : serviceFailureAnswer(failure));
    }
    let response!: Response;
    settle((done) => {
      response = relay(
        outcome.response,
        method,
        cors,
        config.bodyTimeoutMs,
        () => upstreamAbort.abort(),
        () => {
          release();
          done();
        },
        config.sendTimeoutMs,
        meter,
      );
    });
    return response;
  }

  /**
   * The answer to a `Request` its runtime builds lazily and cannot build (`@hono/node-server`
   * for an absolute-form target with credentials, which no `Request` may carry: reading its
   * body throws): planned as the absolute-form target it was sent as, hence refused (400).
   */
  function unreadableAnswer(request: Request): Response | undefined {
    try {
      void request.body;
      return undefined;
    } catch {
      const plan = planRequest(config, {
        method: request.method,
        url: request.url,
        headers: {},
        upgradeUnavailable: true,
      });
      return plan.kind === 'answer' ? toResponse(plan.answer, plan.cors) : undefined;
    }
  }

  async function route(
    request: Request,
    context: Ctx | undefined,
    settle: Settle,
    info: HandleInfo | undefined,
    trace: RequestTrace,
  ): Promise<Response | undefined> {
    const url = targetOf(request.url);
    const headers = headerRecord(request.headers);
    const plan = planRequest(config, {
      method: request.method,
      url,
      headers,
      upgradeUnavailable: true,
    });
    const client: ClientFacts = { address: info?.clientAddress, headers };
    if (plan.kind === 'outside') return undefined;
    const ctx = (context !== undefined ? context : request) as Ctx;
    if (plan.kind === 'answer') return toResponse(plan.answer, plan.cors);
    trace.ctx = ctx;
    trace.request = config.telemetry?.startRequest(
      request.method,
      requestRouteKind(plan),
      url,
      ctx,
      upstreamHost,
    );
    switch (plan.kind) {
      case 'token':
        return tokenRoute(request, ctx, plan.cors, client);
      case 'proxy': {
        const unreadable = unreadableAnswer(request);
        if (unreadable !== undefined) return unreadable;
        return proxyRoute({
          request,
          ctx,
          dialect: plan.dialect,
          target: plan.target,
          query: plan.query,
          cors: plan.cors,
          settle,
          client,
          service: undefined,
        });
      }
      case 'pai-eas-workbench':
        return workbenchRoute(request, ctx, handlerConfig.authorize, paiEas!, plan.cors);
      case 'pai-eas-service':
        return proxyRoute({
          request,
          ctx,
          dialect: 'dashscope',
          target: plan.target,
          query: plan.query,
          cors: plan.cors,
          settle,
          client,
          service: plan.service,
        });
    }
  }

  async function handle(
    request: Request,
    context?: Ctx,
    info?: HandleInfo,
  ): Promise<Response | undefined> {
    const started = logger === undefined ? 0 : performance.now();
    activeRequests++;
    let released = false;
    let deferred = false;
    const trace: RequestTrace = {};
    let response: Response | undefined;
    const release = () => {
      if (released) return;
      released = true;
      activeRequests--;
      if (trace.request !== undefined) {
        // After the relayed body ended (or at once for the handler's own answers).
        config.telemetry!.endRequest(trace.request, trace.ctx, {
          status: response?.status ?? 0,
          requestId: trace.requestId,
          clientGone: request.signal.aborted,
        });
      }
    };
    try {
      response = await route(
        request,
        context,
        (relayWith) => {
          deferred = true;
          relayWith(release);
        },
        info,
        trace,
      );
      // Read now: a runtime may not let the headers of a Response it is sending be read.
      if (trace.request !== undefined && response !== undefined) {
        trace.requestId = response.headers.get('x-request-id') ?? undefined;
      }
    } catch {
      // A bug, not a request error: answer 500 without details rather than hang.
      if (logger !== undefined) logInternalError(logger, request.method, targetOf(request.url));
      response = toResponse(errorAnswer('dashscope', INTERNAL_ERROR), []);
    } finally {
      if (!deferred) release();
    }
    if (response !== undefined && logger !== undefined) {
      logRequest(logger, {
        method: request.method,
        url: targetOf(request.url),
        status: response.status,
        durationMs: performance.now() - started,
        requestId: response.headers.get('x-request-id') ?? undefined,
        clientClosed: request.signal.aborted,
      });
    }
    return response;
  }

  const fetchHandler = async (request: Request, runtime?: unknown): Promise<Response> =>
    (await handle(request, undefined, runtimeInfo(request, runtime))) ??
    toResponse(errorAnswer('dashscope', NOT_FOUND), []);

  function getToken(ctx?: Ctx, opts: HandlerGetTokenOptions = {}): Promise<TemporaryToken> {
    return appToken(config, provider, ctx as Ctx, opts);
  }

  let closed: Promise<void> | undefined;
  function close(): Promise<void> {
    closed ??= (async () => {
      closing.abort();
      await providers.close();
    })();
    return closed;
  }

  function stats(): FetchHandlerStats {
    return {
      activeRequests,
      proxyTokens: provider.stats(),
      routeTokens: tokenProvider?.stats(),
      limits: config.limits?.stats(),
      budgets: config.budgets?.stats(),
    };
  }

  return {
    handle,
    fetch: fetchHandler,
    getToken,
    provider,
    prefix: config.prefix,
    stats,
    close,
  };
}
