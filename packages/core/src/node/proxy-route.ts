/**
 * The node:http executor of a proxied request: carries out the proxy policy (admission, plan,
 * body check, key) with node streams and undici, and replays once after an upstream 401.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { boundAdmission, obtainToken, tokenAfterUnauthorized } from '../policy/admission.js';
import {
  type ErrorAnswer,
  type ErrorDialect,
  INTERNAL_ERROR,
  payloadTooLargeAnswer,
  transportFailureAnswer,
  unauthorizedUpstreamAnswer,
} from '../policy/answers.js';
import type { HandlerConfig } from '../policy/config.js';
import { admitWithinLimits } from '../policy/limits.js';
import {
  admitServiceCall,
  type PaiEasConfig,
  serviceFailureAnswer,
  serviceGrant,
  withServiceToken,
} from '../policy/pai-eas.js';
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
import { type ForwardOutcome, forward } from './forward.js';

/** Everything the proxy needs besides the request. */
export interface ProxyContext<Ctx> {
  config: HandlerConfig<Ctx, IncomingMessage>;
  provider: TokenProvider;
  dispatcher: Dispatcher;
  /** Per-handler memo of the hot path (`getToken` options and `Bearer` of the last key). */
  memo: { current?: ProxyMemo };
  /** The PAI-EAS service calls, when `paiEas` is set. */
  paiEas?: PaiEasProxy<Ctx>;
}

/** What proxying to PAI-EAS services needs besides the Model Studio proxy. */
export interface PaiEasProxy<Ctx> {
  config: PaiEasConfig<Ctx>;
  /** The proxy's config without Model Studio's base path and `allowModels`. */
  proxyConfig: HandlerConfig<Ctx, IncomingMessage>;
  /** One dispatcher for every service origin. */
  dispatcher: Dispatcher;
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
  const { provider } = proxy;
  const { dialect, service } = request;
  const eas = service === undefined ? undefined : proxy.paiEas;
  const config = eas === undefined ? proxy.config : eas.proxyConfig;
  const method = req.method ?? 'GET';
  const refusedMethod = checkProxyMethod(method);
  if (refusedMethod !== undefined) return sendError(res, dialect, refusedMethod);
  const client = { address: request.clientAddress, headers: req.headers };
  let apiKey = '';
  let admission =
    eas === undefined
      ? admitWithinLimits(config, 'proxy', request.ctx, client)
      : admitServiceCall(config, request.ctx, client);
  if (admission instanceof Promise) {
    admission = await boundAdmission(config, admission, clientGoneSignal(res));
  }
  if ('refused' in admission) return sendError(res, dialect, admission.refused);
  if (eas === undefined) apiKey = admission.apiKey;

  const plan = planProxy(config, request.target, {
    method,
    rawHeaders: req.rawHeaders,
    transferEncoding: req.headers['transfer-encoding'],
  });
  if (!('upstreamPath' in plan)) return sendError(res, dialect, plan);

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
  const streaming = checked.streaming;

  const bodyLength = Buffer.isBuffer(body)
    ? body.length
    : body !== null
      ? plan.declared
      : undefined;
  if (eas !== undefined) {
    return proxyToService(req, res, request, eas, plan, body, bodyLength, streaming);
  }
  const call = proxyTokenCall(config, proxy.memo, apiKey, streaming);
  const token = await obtainToken(provider, call);
  if ('refused' in token) return sendError(res, dialect, token.refused);
  if (gone(res)) {
    if (body !== null && !Buffer.isBuffer(body)) body.destroy();
    return;
  }

  const headers = completeUpstreamHeaders(
    plan,
    bodyLength,
    streaming,
    bearer(proxy.memo, token.token),
  );
  const upstream = {
    origin: config.origin,
    path: plan.upstreamPath,
    method,
    headers,
    body,
    headersTimeout: config.headersTimeoutMs,
    bodyTimeout: config.bodyTimeoutMs,
    sendTimeout: config.sendTimeoutMs,
    // A 401 to the injected key is never relayed: it is the server's key that failed.
    holdUnauthorized: true,
  };
  let outcome: ForwardOutcome = await forward(proxy.dispatcher, upstream, res);
  if (outcome.kind === 'unauthorized' && isReplayable(body)) {
    const fresh = await tokenAfterUnauthorized(
      provider,
      apiKey,
      token.token,
      call.minValiditySeconds,
      config.remints,
    );
    if ('refused' in fresh) return sendError(res, dialect, fresh.refused);
    // With re-mints for this key rate-limited, the 401 is answered without a replay.
    if (!('noReplay' in fresh)) {
      if (gone(res)) return;
      outcome = await forward(
        proxy.dispatcher,
        { ...upstream, headers: withFreshKey(headers, fresh.token) },
        res,
      );
    }
  } else if (outcome.kind === 'unauthorized' && config.remints.allow(apiKey)) {
    // A streamed body cannot be sent again; the next request gets a fresh key (evicting the
    // shared key at most once per key per interval, like a re-mint).
    provider.invalidate(apiKey);
  }
  if (outcome.kind === 'unauthorized') {
    return sendError(
      res,
      dialect,
      unauthorizedUpstreamAnswer(outcome.headers, outcome.body.toString('utf8'), [apiKey]),
    );
  }
  if (outcome.kind === 'failed') {
    sendError(res, dialect, upstreamFailureAnswer(outcome.error, config.maxBodyBytes));
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
  const base = completeUpstreamHeaders(plan, bodyLength, streaming, '');
  const headers = withServiceToken(base, grant.token);
  const upstream = {
    origin: grant.origin,
    path: grant.path,
    method: req.method ?? 'GET',
    headers,
    body,
    headersTimeout: config.headersTimeoutMs,
    bodyTimeout: config.bodyTimeoutMs,
    sendTimeout: config.sendTimeoutMs,
    // A 401 to the service token is never relayed: it is the server's secret that failed.
    holdUnauthorized: true,
  };
  let outcome: ForwardOutcome = await forward(eas.dispatcher, upstream, res);
  if (outcome.kind === 'unauthorized' && isReplayable(body)) {
    const fresh = await serviceGrant(eas.config, service!, request.target, undefined, grant);
    if ('refused' in fresh) return sendError(res, dialect, fresh.refused, fresh.requestId);
    if (gone(res)) return;
    outcome = await forward(
      eas.dispatcher,
      {
        ...upstream,
        origin: fresh.origin,
        path: fresh.path,
        headers: withServiceToken(base, fresh.token),
      },
      res,
    );
  } else if (outcome.kind === 'unauthorized') {
    // A streamed body cannot be sent again; the next call gets the token fetched again.
    void serviceGrant(eas.config, service!, request.target, undefined, grant).catch(() => {});
  }
  if (outcome.kind === 'unauthorized') {
    const refused = unauthorizedUpstreamAnswer(
      outcome.headers,
      outcome.body.toString('utf8'),
      grant.token === undefined ? [] : [grant.token],
    );
    return sendError(res, dialect, serviceFailureAnswer(refused));
  }
  if (outcome.kind === 'failed') {
    sendError(
      res,
      dialect,
      serviceFailureAnswer(upstreamFailureAnswer(outcome.error, config.maxBodyBytes)),
    );
  }
}
