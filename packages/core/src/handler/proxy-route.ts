import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import {
  bodyRequestsStream,
  isPayloadTooLarge,
  limitedBodyStream,
  parseJson,
  readBody,
  serialiseParsedBody,
} from '../proxy/body.js';
import { isClientGone } from '../proxy/client-gone.js';
import { type ForwardOutcome, forward, relayHeld } from '../proxy/forward.js';
import { readClientHeaders } from '../proxy/headers.js';
import { isReplayable, tokenAfterUnauthorized } from '../proxy/replay.js';
import type { GetTokenOptions, TokenProvider } from '../types.js';
import { checkAccess, hookErrorAnswer, resolveApiKeyNow } from './access.js';
import type { HandlerConfig } from './config.js';
import {
  type ErrorAnswer,
  type ErrorDialect,
  INTERNAL_ERROR,
  sendError,
  tokenErrorAnswer,
} from './error-response.js';

/** Methods the proxy forwards. */
export const PROXY_METHODS: ReadonlySet<string> = new Set([
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'PATCH',
  'DELETE',
  'OPTIONS',
]);
const PROXY_ALLOW = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';

/** A request's `Transfer-Encoding` whose final coding is `chunked` (the only framing a request may use). */
const CHUNKED_LAST = /(?:^|,)[ \t]*chunked[ \t]*$/i;

const INVALID_TRANSFER_ENCODING: ErrorAnswer = Object.freeze({
  status: 400,
  code: 'InvalidParameter',
  message: 'Invalid Transfer-Encoding: chunked must be the final coding of a request body.',
  headers: { connection: 'close' },
});

/** Everything the proxy needs besides the request. */
export interface ProxyContext<Ctx> {
  config: HandlerConfig<Ctx>;
  provider: TokenProvider;
  dispatcher: Dispatcher;
  /** Per-handler memo of the hot path (see {@link tokenCall}, {@link bearer}). */
  memo?: ProxyMemo;
}

/** What the hot path would otherwise allocate per request, for the last key seen. */
interface ProxyMemo {
  apiKey: string;
  /** `getToken` options for plain and streaming requests with `apiKey`. */
  plain: GetTokenOptions;
  streaming: GetTokenOptions;
  token: string;
  /** `Bearer ${token}`. */
  authorization: string;
}

/** The `getToken` options for `apiKey`, reused while the key stays the same (single tenant). */
function tokenCall<Ctx>(
  proxy: ProxyContext<Ctx>,
  apiKey: string,
  streaming: boolean,
): GetTokenOptions {
  let memo = proxy.memo;
  if (memo === undefined || memo.apiKey !== apiKey) {
    const { minValiditySeconds, streamingMinValiditySeconds } = proxy.config;
    memo = {
      apiKey,
      plain: Object.freeze({ apiKey, minValiditySeconds }),
      streaming: Object.freeze({ apiKey, minValiditySeconds: streamingMinValiditySeconds }),
      token: '',
      authorization: '',
    };
    proxy.memo = memo;
  }
  return streaming ? memo.streaming : memo.plain;
}

/** `Bearer ${token}`, built once per token rather than once per request. */
function bearer<Ctx>(proxy: ProxyContext<Ctx>, token: string): string {
  const memo = proxy.memo;
  if (memo === undefined) return `Bearer ${token}`;
  if (memo.token !== token) {
    memo.token = token;
    memo.authorization = `Bearer ${token}`;
  }
  return memo.authorization;
}

/** A parsed body handed over by an adapter (`undefined` = none). */
export interface ParsedBody {
  value: unknown;
}

function payloadTooLargeAnswer(limit: number): ErrorAnswer {
  return {
    status: 413,
    code: 'PayloadTooLarge',
    message: `The request body exceeds the limit of ${limit} bytes.`,
    // The rest of the body is not read: close the connection after answering.
    headers: { connection: 'close' },
  };
}

function modelRefused(model: unknown): ErrorAnswer {
  return {
    status: 403,
    code: 'AccessDenied',
    message:
      typeof model === 'string'
        ? `Model ${JSON.stringify(model.slice(0, 100))} is not allowed here.`
        : 'The request must name an allowed model.',
  };
}

/** The answer for an upstream exchange that failed before any byte was sent to the client. */
function upstreamFailureAnswer(error: Error, maxBodyBytes: number): ErrorAnswer {
  if (isPayloadTooLarge(error)) return payloadTooLargeAnswer(maxBodyBytes);
  const code = (error as { code?: unknown }).code;
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') {
    return { status: 504, code: 'Timeout', message: 'Model Studio did not answer in time.' };
  }
  if (code === 'UND_ERR_INVALID_ARG' || code === 'UND_ERR_NOT_SUPPORTED') {
    return {
      status: 400,
      code: 'InvalidParameter',
      message: 'The request has a header or body the proxy cannot forward.',
    };
  }
  return { status: 502, code: 'NetworkError', message: 'Model Studio could not be reached.' };
}

/**
 * The `allowModels` check: the JSON body's `model` (and any `model` query parameter) must be
 * listed. With `allowModels` set, a non-empty body must be a JSON object (a body that cannot be
 * checked is refused); requests without a model (task polling, listings) pass.
 */
function checkModels(
  allow: ReadonlySet<string>,
  json: unknown,
  body: Buffer | null,
  query: string,
): ErrorAnswer | undefined {
  if (body !== null && body.length > 0) {
    if (typeof json !== 'object' || json === null || Array.isArray(json)) {
      return {
        status: 403,
        code: 'AccessDenied',
        message: 'Only JSON request bodies can be checked against the allowed models.',
      };
    }
    const model = (json as { model?: unknown }).model;
    if (model !== undefined && (typeof model !== 'string' || !allow.has(model))) {
      return modelRefused(model);
    }
  }
  if (query.includes('model=')) {
    for (const model of new URLSearchParams(query).getAll('model')) {
      if (!allow.has(model)) return modelRefused(model);
    }
  }
  return undefined;
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

function gone(res: ServerResponse): boolean {
  return res.destroyed || res.writableEnded || res.socket?.destroyed === true;
}

/**
 * Proxies one request to `{origin}{basePath}{target}` with a fresh temporary key:
 * access check → body (streamed, or read when needed) → key → undici → relay; one replay after
 * an upstream 401 when the body can be sent again.
 */
export async function handleProxyRoute<Ctx>(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: Ctx,
  dialect: ErrorDialect,
  target: string,
  query: string,
  parsed: ParsedBody | undefined,
  proxy: ProxyContext<Ctx>,
): Promise<void> {
  const { config, provider } = proxy;
  const method = req.method ?? 'GET';
  if (!PROXY_METHODS.has(method)) {
    sendError(res, dialect, {
      status: 405,
      code: 'MethodNotAllowed',
      message: `Method ${method.slice(0, 20)} is not allowed.`,
      headers: { allow: PROXY_ALLOW },
    });
    return;
  }
  if (config.authorize !== undefined) {
    const refused = await checkAccess(config.authorize, ctx);
    if (refused !== undefined) {
      sendError(res, dialect, refused);
      return;
    }
  }
  let apiKey: string;
  try {
    // A configured key (or DASHSCOPE_API_KEY) needs no await; only an `apiKey` function might.
    const key = resolveApiKeyNow(config.apiKey, ctx);
    apiKey = typeof key === 'string' ? key : await key;
  } catch (error) {
    sendError(res, dialect, hookErrorAnswer(error));
    return;
  }

  const client = readClientHeaders(req.rawHeaders, config.forwardClientIdentity);
  const declared = client.contentLength;
  if (declared === -1) {
    sendError(res, dialect, {
      status: 400,
      code: 'InvalidParameter',
      message: 'Invalid Content-Length.',
    });
    return;
  }
  if (declared !== undefined && declared > config.maxBodyBytes) {
    sendError(res, dialect, payloadTooLargeAnswer(config.maxBodyBytes));
    return;
  }
  if (client.chunked && !CHUNKED_LAST.test(String(req.headers['transfer-encoding']))) {
    // Node hands such a request over before its parser fails on the body: refuse it before
    // anything is minted or sent (RFC 9112 §6.3: 400, then close).
    sendError(res, dialect, INVALID_TRANSFER_ENCODING);
    return;
  }
  let headers = client.headers;
  let streaming = client.streaming;
  let body: Buffer | Readable | null = null;
  const hasBody = client.chunked || (declared !== undefined && declared > 0);
  if (hasBody) {
    let json: unknown;
    let jsonRead = false;
    if (req.readableEnded) {
      // A body parser consumed the stream: re-serialise what it produced.
      if (parsed === undefined) {
        sendError(res, dialect, {
          status: 500,
          code: 'BodyUnavailable',
          message:
            'The request body was consumed by an earlier middleware and not handed to the proxy.',
        });
        return;
      }
      const serialised = serialiseParsedBody(parsed.value);
      body = serialised.data;
      // The parser decoded (gunzipped) it; when it produced a value, that is sent as JSON.
      headers = withoutHeaders(
        headers,
        serialised.json ? CONTENT_TYPE_AND_ENCODING : CONTENT_ENCODING,
      );
      if (serialised.json) {
        json = parsed.value;
        jsonRead = true;
        headers.push('content-type', 'application/json');
      }
    } else if (
      config.allowModels !== undefined ||
      (declared !== undefined && declared <= config.replayBufferBytes)
    ) {
      try {
        body = await readBody(req, config.maxBodyBytes);
      } catch (error) {
        if (!isClientGone(error)) {
          sendError(
            res,
            dialect,
            isPayloadTooLarge(error) ? payloadTooLargeAnswer(config.maxBodyBytes) : INTERNAL_ERROR,
          );
        }
        return;
      }
    } else {
      body = limitedBodyStream(req, config.maxBodyBytes);
    }
    if (Buffer.isBuffer(body)) {
      if (config.allowModels !== undefined) {
        if (!jsonRead) {
          json = parseJson(body);
          jsonRead = true;
        }
      }
      if (!streaming) {
        streaming = jsonRead
          ? (json as { stream?: unknown } | null)?.stream === true
          : bodyRequestsStream(body);
      }
    }
    if (config.allowModels !== undefined) {
      const refusedModel = checkModels(
        config.allowModels,
        json,
        Buffer.isBuffer(body) ? body : null,
        query,
      );
      if (refusedModel !== undefined) {
        sendError(res, dialect, refusedModel);
        return;
      }
    }
  } else if (config.allowModels !== undefined) {
    const refusedModel = checkModels(config.allowModels, undefined, null, query);
    if (refusedModel !== undefined) {
      sendError(res, dialect, refusedModel);
      return;
    }
  }

  const minValiditySeconds = streaming
    ? config.streamingMinValiditySeconds
    : config.minValiditySeconds;
  let token: string;
  try {
    token = (await provider.getToken(tokenCall(proxy, apiKey, streaming))).token;
  } catch (error) {
    sendError(res, dialect, tokenErrorAnswer(error, [apiKey]));
    return;
  }
  if (gone(res)) {
    if (body !== null && !Buffer.isBuffer(body)) body.destroy();
    return;
  }

  if (Buffer.isBuffer(body)) headers.push('content-length', String(body.length));
  else if (body !== null && declared !== undefined)
    headers.push('content-length', String(declared));
  if (streaming) headers.push('accept-encoding', 'identity');
  else if (client.acceptEncoding !== undefined)
    headers.push('accept-encoding', client.acceptEncoding);
  headers.push('authorization', bearer(proxy, token));

  const request = {
    origin: config.origin,
    path: config.basePath === '' ? target : config.basePath + target,
    method,
    headers,
    body,
    headersTimeout: config.headersTimeoutMs,
    bodyTimeout: config.bodyTimeoutMs,
    holdUnauthorized: isReplayable(body),
  };
  let outcome: ForwardOutcome = await forward(proxy.dispatcher, request, res);
  if (outcome.kind === 'unauthorized') {
    const held = outcome;
    let fresh: string;
    try {
      fresh = (await tokenAfterUnauthorized(provider, apiKey, token, minValiditySeconds)).token;
    } catch (error) {
      sendError(res, dialect, tokenErrorAnswer(error, [apiKey]));
      return;
    }
    if (gone(res)) return;
    const replayHeaders = headers.slice();
    replayHeaders[replayHeaders.length - 1] = `Bearer ${fresh}`;
    outcome = await forward(
      proxy.dispatcher,
      { ...request, headers: replayHeaders, holdUnauthorized: false },
      res,
    );
    if (outcome.kind === 'unauthorized') {
      // Not reachable (holdUnauthorized is false); relay what was held, to be safe.
      relayHeld(res, held.headers, held.body);
      return;
    }
  }
  if (outcome.kind === 'failed') {
    sendError(res, dialect, upstreamFailureAnswer(outcome.error, config.maxBodyBytes));
  }
}
