/**
 * The node:http executor of a proxied request: carries out the proxy policy (admission, plan,
 * body check, key) with node streams and undici, and replays once after an upstream 401.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import {
  type Admitted,
  boundAdmission,
  type NoReplay,
  obtainToken,
  tokenAfterUnauthorized,
} from '../policy/admission.js';
import {
  type ErrorAnswer,
  type ErrorDialect,
  INTERNAL_ERROR,
  payloadTooLargeAnswer,
  transportFailureAnswer,
  unauthorizedUpstreamAnswer,
} from '../policy/answers.js';
import { enterProxy } from '../policy/concurrency.js';
import type { HandlerConfig } from '../policy/config.js';
import { admitWithinLimits, type ClientFacts, withinModelBudgets } from '../policy/limits.js';
import { AnswerMeter, meterStreamsReads, type RelayMeter } from '../policy/meter.js';
import {
  admitServiceCall,
  type PaiEasConfig,
  serviceFailureAnswer,
  serviceGrant,
  withServiceToken,
} from '../policy/pai-eas.js';
import type { PoolQueue, PoolQueues } from '../policy/pool-queue.js';
import {
  BODY_READ_TIMEOUT,
  bearer,
  checkProxyBody,
  checkProxyMethod,
  completeUpstreamHeaders,
  type ProxyMemo,
  type ProxyPlan,
  planProxy,
  proxyTokenCall,
  type ReadBody,
  withFreshKey,
} from '../policy/proxy.js';
import type { TokenProvider } from '../types.js';
import { sendError } from './answer.js';
import {
  BodyTimeoutError,
  isPayloadTooLarge,
  isReplayable,
  limitedBodyStream,
  readBody,
  serialiseParsedBody,
} from './body.js';
import { clientGoneSignal, isClientGone } from './client-gone.js';
import { type ForwardOutcome, forward, type UpstreamRequest } from './forward.js';

/** Everything the proxy needs besides the request. */
export interface ProxyContext<Ctx> {
  config: HandlerConfig<Ctx, IncomingMessage>;
  provider: TokenProvider;
  dispatcher: Dispatcher;
  /** Per-handler memo of the hot path (`getToken` options and `Bearer` of the last key). */
  memo: { current?: ProxyMemo };
  /** The PAI-EAS service calls, when `paiEas` is set. */
  paiEas?: PaiEasProxy<Ctx>;
  /** The fair queue in front of `dispatcher` (`undefined` for an injected dispatcher). */
  queue?: PoolQueue;
}

/** What proxying to PAI-EAS services needs besides the Model Studio proxy. */
export interface PaiEasProxy<Ctx> {
  config: PaiEasConfig<Ctx>;
  /** The proxy's config without Model Studio's base path and `allowModels`. */
  proxyConfig: HandlerConfig<Ctx, IncomingMessage>;
  /** One dispatcher for every service origin. */
  dispatcher: Dispatcher;
  /** The fair queue in front of each service origin's connections. */
  queues: PoolQueues;
}

/** A parsed body handed over by an adapter (`undefined` = none). */
export interface ParsedBody {
  value: unknown;
}

/** One proxied request: where it goes and what the adapter handed over. */
export interface ProxyRequest<Ctx> {
  ctx: Ctx;
  dialect: ErrorDialect;
  target: string;
  query: string;
  parsed: ParsedBody | undefined;
  /** The client address the framework trusts, if it gave one. */
  clientAddress: string | undefined;
  /** An allow-listed PAI-EAS service: proxied to its endpoint with its token. */
  service?: string;
}

/** How the node executor names an undici failure before any answer. */
function upstreamFailureAnswer(error: Error, maxBodyBytes: number): ErrorAnswer {
  if (isPayloadTooLarge(error)) return payloadTooLargeAnswer(maxBodyBytes);
  const code = (error as { code?: unknown }).code;
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') {
    return transportFailureAnswer('timeout');
  }
  if (code === 'UND_ERR_INVALID_ARG' || code === 'UND_ERR_NOT_SUPPORTED') {
    return transportFailureAnswer('unforwardable');
  }
  return transportFailureAnswer('unreachable');
}

/** Removes `names` (lower-case) from flat headers. */
function withoutHeaders(headers: string[], names: ReadonlySet<string>): string[] {
  const kept: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    if (!names.has(headers[i]!.toLowerCase())) kept.push(headers[i]!, headers[i + 1]!);
  }
  return kept;
}

const CONTENT_ENCODING: ReadonlySet<string> = new Set(['content-encoding']);
const CONTENT_TYPE_AND_ENCODING: ReadonlySet<string> = new Set([
  'content-type',
  'content-encoding',
]);

const BODY_UNAVAILABLE: ErrorAnswer = Object.freeze({
  status: 500,
  code: 'BodyUnavailable',
  message: 'The request body was consumed by an earlier middleware and not handed to the proxy.',
});

function gone(res: ServerResponse): boolean {
  return res.destroyed || res.writableEnded || res.socket?.destroyed === true;
}

/**
 * Proxies one request to `{origin}{basePath}{target}` with a fresh temporary key:
 * admission → plan → body (streamed, or read when needed) → key → undici → relay; one replay
 * after an upstream 401 when the body can be sent again.
 */
export async function handleProxyRoute<Ctx>(
  req: IncomingMessage,
  res: ServerResponse,
  request: ProxyRequest<Ctx>,
  proxy: ProxyContext<Ctx>,
): Promise<void> {
  const { dialect, service } = request;
  const eas = service === undefined ? undefined : proxy.paiEas;
  const config = eas === undefined ? proxy.config : eas.proxyConfig;
  const method = req.method ?? 'GET';
  const refusedMethod = checkProxyMethod(method);
  if (refusedMethod !== undefined) return sendError(res, dialect, refusedMethod);
  const metered = config.metering.active;
  const started = metered ? performance.now() : 0;
  const client = { address: request.clientAddress, headers: req.headers };
  let admission =
    eas === undefined
      ? admitWithinLimits(config, 'proxy', request.ctx, client)
      : admitServiceCall(config, request.ctx, client);
  if (admission instanceof Promise) {
    admission = await boundAdmission(config, admission, clientGoneSignal(res));
  }
  if ('refused' in admission) return sendError(res, dialect, admission.refused);
  // One slot of the client's concurrency, given back once whatever way the answer ends.
  const entered = enterProxy(config.limits, request.ctx, admission, client);
  if ('refused' in entered) return sendError(res, dialect, entered.refused);
  try {
    await proxyAdmitted(req, res, request, proxy, admission, client, entered.client, started);
  } finally {
    entered.slot.release();
  }
}

/** The rest of a proxied request once admitted: plan, body, key, forward and relay. */
async function proxyAdmitted<Ctx>(
  req: IncomingMessage,
  res: ServerResponse,
  request: ProxyRequest<Ctx>,
  proxy: ProxyContext<Ctx>,
  admission: Admitted,
  client: ClientFacts,
  /** Who the request counts against in the fair pool queue. */
  clientKey: string,
  /** `performance.now()` when the request arrived (metering only). */
  started: number,
): Promise<void> {
  const { provider } = proxy;
  const { dialect, service } = request;
  const eas = service === undefined ? undefined : proxy.paiEas;
  const config = eas === undefined ? proxy.config : eas.proxyConfig;
  const method = req.method ?? 'GET';
  const apiKey = eas === undefined ? admission.apiKey : '';
  const metered = config.metering.active;

  const plan = planProxy(config, request.target, {
    method,
    rawHeaders: req.rawHeaders,
    transferEncoding: req.headers['transfer-encoding'],
  });
  if (!('upstreamPath' in plan)) return sendError(res, dialect, plan);
  if (metered) meterStreamsReads(config, plan, method, request.target, service);

  let body: Buffer | Readable | null = null;
  let read: ReadBody | undefined;
  if (plan.body !== 'none') {
    if (req.readableEnded) {
      // A body parser consumed the stream: re-serialise what it produced.
      if (request.parsed === undefined) return sendError(res, dialect, BODY_UNAVAILABLE);
      const serialised = serialiseParsedBody(request.parsed.value);
      body = serialised.data;
      // The parser decoded (gunzipped) it; when it produced a value, that is sent as JSON.
      plan.headers = withoutHeaders(
        plan.headers,
        serialised.json ? CONTENT_TYPE_AND_ENCODING : CONTENT_ENCODING,
      );
      if (serialised.json) plan.headers.push('content-type', 'application/json');
      read = serialised.json
        ? { bytes: body, json: { value: request.parsed.value } }
        : { bytes: body };
    } else if (plan.body === 'read') {
      try {
        body = await readBody(req, config.maxBodyBytes, config.bodyReadTimeoutMs);
      } catch (error) {
        if (isClientGone(error)) return;
        if (error instanceof BodyTimeoutError) return sendError(res, dialect, BODY_READ_TIMEOUT);
        return sendError(
          res,
          dialect,
          isPayloadTooLarge(error) ? payloadTooLargeAnswer(config.maxBodyBytes) : INTERNAL_ERROR,
        );
      }
      read = { bytes: body };
    } else {
      body = limitedBodyStream(req, config.maxBodyBytes);
    }
  }
  const checked = checkProxyBody(config, plan, request.query, read);
  if (!('streaming' in checked)) return sendError(res, dialect, checked);
  const facts = { read, query: request.query };
  let withinModel = withinModelBudgets(config, request.ctx, admission, client, facts);
  if (withinModel instanceof Promise) withinModel = await withinModel;
  if ('refused' in withinModel) return sendError(res, dialect, withinModel.refused);
  const streaming = checked.streaming;
  let meter: RelayMeter | undefined;
  if (metered) {
    const facts = { ...request, admitted: admission, client, service, read, started };
    const answerMeter = new AnswerMeter(config, facts, method);
    if (answerMeter.body !== undefined) body = Buffer.from(answerMeter.body);
    meter = answerMeter;
  }

  const bodyLength = Buffer.isBuffer(body)
    ? body.length
    : body !== null
      ? plan.declared
      : undefined;
  if (eas !== undefined) {
    return proxyToService(
      req,
      res,
      request,
      eas,
      plan,
      body,
      bodyLength,
      streaming,
      clientKey,
      meter,
    );
  }
  const call = proxyTokenCall(config, proxy.memo, apiKey, streaming);
  const token = await obtainToken(provider, call);
  if ('refused' in token) return sendError(res, dialect, token.refused);
  if (gone(res)) {
    if (body !== null && !Buffer.isBuffer(body)) body.destroy();
    return;
  }

  // A metered answer is asked for uncompressed (as the Fetch executor always does): its usage
  // is read as it passes.
  const headers = completeUpstreamHeaders(
    plan,
    bodyLength,
    streaming,
    bearer(proxy.memo, token.token),
    metered,
  );
  await forwardRecovering(
    res,
    dialect,
    { dispatcher: proxy.dispatcher, queue: proxy.queue, client: clientKey },
    upstreamCall(config, config.origin, plan.upstreamPath, method, headers, body, meter),
    {
      async replay() {
        const fresh = await tokenAfterUnauthorized(
          provider,
          apiKey,
          token.token,
          call.minValiditySeconds,
          config.remints,
        );
        if ('refused' in fresh || 'noReplay' in fresh) return fresh;
        return { headers: withFreshKey(headers, fresh.token) };
      },
      // The shared key is evicted at most once per key per interval, like a re-mint.
      forget: () => {
        if (config.remints.allow(apiKey)) provider.invalidate(apiKey);
      },
      secrets: [apiKey],
      tell: (answer) => answer,
      maxBodyBytes: config.maxBodyBytes,
    },
  );
}

/** An upstream call of `config`'s timeouts, holding back a 401 (it is never relayed). */
function upstreamCall<Ctx>(
  config: HandlerConfig<Ctx, IncomingMessage>,
  origin: string,
  path: string,
  method: string,
  headers: string[],
  body: Buffer | Readable | null,
  meter: RelayMeter | undefined,
): UpstreamRequest {
  return {
    origin,
    path,
    method,
    headers,
    body,
    headersTimeout: config.headersTimeoutMs,
    bodyTimeout: config.bodyTimeoutMs,
    sendTimeout: config.sendTimeoutMs,
    // A 401 to the injected credential is the server's failure, not the client's: held back,
    // to replay or to answer 502.
    holdUnauthorized: true,
    meter,
  };
}

/** How a forwarded call recovers from a 401 to its credential, and how its failures read. */
interface Recovery {
  /** The call again with a fresh credential, a refusal, or no replay (re-mints rate-limited). */
  replay(): Promise<
    Partial<UpstreamRequest> | { refused: ErrorAnswer; requestId?: string } | NoReplay
  >;
  /** After a 401 to a body that cannot be sent again: let the next call get a fresh credential. */
  forget(): void;
  /** Strings to redact from the refusal's request id. */
  secrets: readonly string[];
  /** The answer as it reads for this upstream (Model Studio's as is; PAI-EAS reworded). */
  tell(answer: ErrorAnswer): ErrorAnswer;
  maxBodyBytes: number;
}

/** Where an exchange goes: the dispatcher, the fair queue in front of it, and whose it is. */
interface Pool {
  dispatcher: Dispatcher;
  queue: PoolQueue | undefined;
  /** The client the exchange counts against (its turn in the queue). */
  client: string;
}

/**
 * Forwards `upstream` and relays its answer, holding one connection of the pool's fair queue
 * for the exchange (and its replay); 503 `Throttling.PoolBusy` when the queue is full or the
 * wait too long. See {@link forwardHolding}.
 */
async function forwardRecovering(
  res: ServerResponse,
  dialect: ErrorDialect,
  pool: Pool,
  upstream: UpstreamRequest,
  recovery: Recovery,
): Promise<void> {
  if (pool.queue === undefined) {
    return forwardHolding(res, dialect, pool.dispatcher, upstream, recovery);
  }
  const entering = pool.queue.enter(pool.client, () => clientGoneSignal(res));
  const turn = entering instanceof Promise ? await entering : entering;
  if (turn === undefined) {
    if (upstream.body !== null && !Buffer.isBuffer(upstream.body)) upstream.body.destroy();
    return;
  }
  if ('code' in turn) {
    if (upstream.body !== null && !Buffer.isBuffer(upstream.body)) upstream.body.destroy();
    return sendError(res, dialect, recovery.tell(turn));
  }
  try {
    await forwardHolding(res, dialect, pool.dispatcher, upstream, recovery);
  } finally {
    turn.release();
  }
}

/**
 * Forwards `upstream` and relays its answer; after a 401, replays once with a fresh credential
 * when the body can be sent again, and answers a 401 that remains with 502 (never relayed).
 */
async function forwardHolding(
  res: ServerResponse,
  dialect: ErrorDialect,
  dispatcher: Dispatcher,
  upstream: UpstreamRequest,
  recovery: Recovery,
): Promise<void> {
  let outcome: ForwardOutcome = await forward(dispatcher, upstream, res);
  if (outcome.kind === 'unauthorized' && isReplayable(upstream.body)) {
    const fresh = await recovery.replay();
    if ('refused' in fresh) return sendError(res, dialect, fresh.refused, fresh.requestId);
    if (!('noReplay' in fresh)) {
      if (gone(res)) return;
      outcome = await forward(dispatcher, { ...upstream, ...fresh }, res);
    }
  } else if (outcome.kind === 'unauthorized') {
    recovery.forget();
  }
  if (outcome.kind === 'unauthorized') {
    const body = outcome.body.toString('utf8');
    const refused = unauthorizedUpstreamAnswer(outcome.headers, body, recovery.secrets);
    return sendError(res, dialect, recovery.tell(refused));
  }
  if (outcome.kind === 'failed') {
    const failure = upstreamFailureAnswer(outcome.error, recovery.maxBodyBytes);
    sendError(res, dialect, recovery.tell(failure));
  }
}

/**
 * The last leg of a PAI-EAS service call: the service's endpoint and token (DescribeService
 * through the cache, or explicit), the same forward and relay, and one replay with a re-fetched
 * token after the service answered 401.
 */
async function proxyToService<Ctx>(
  req: IncomingMessage,
  res: ServerResponse,
  request: ProxyRequest<Ctx>,
  eas: PaiEasProxy<Ctx>,
  plan: ProxyPlan,
  body: Buffer | Readable | null,
  bodyLength: number | undefined,
  streaming: boolean,
  clientKey: string,
  meter: RelayMeter | undefined,
): Promise<void> {
  const { dialect, service } = request;
  const config = eas.proxyConfig;
  const abort = new AbortController();
  const onClose = () => abort.abort();
  res.once('close', onClose);
  const grant = await serviceGrant(eas.config, service!, request.target, abort.signal);
  res.off('close', onClose);
  if ('refused' in grant) {
    if (body !== null && !Buffer.isBuffer(body)) body.destroy();
    return sendError(res, dialect, grant.refused, grant.requestId);
  }
  if (gone(res)) {
    if (body !== null && !Buffer.isBuffer(body)) body.destroy();
    return;
  }
  const base = completeUpstreamHeaders(plan, bodyLength, streaming, '', meter !== undefined);
  const headers = withServiceToken(base, grant.token);
  const method = req.method ?? 'GET';
  await forwardRecovering(
    res,
    dialect,
    { dispatcher: eas.dispatcher, queue: eas.queues.of(grant.origin), client: clientKey },
    upstreamCall(config, grant.origin, grant.path, method, headers, body, meter),
    {
      async replay() {
        const fresh = await serviceGrant(eas.config, service!, request.target, undefined, grant);
        if ('refused' in fresh) return fresh;
        return {
          origin: fresh.origin,
          path: fresh.path,
          headers: withServiceToken(base, fresh.token),
        };
      },
      // The next call gets the token fetched again.
      forget: () => {
        void serviceGrant(eas.config, service!, request.target, undefined, grant).catch(() => {});
      },
      secrets: grant.token === undefined ? [] : [grant.token],
      tell: serviceFailureAnswer,
      maxBodyBytes: config.maxBodyBytes,
    },
  );
}
