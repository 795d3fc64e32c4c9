/**
 * The proxy's decisions, the same in every runtime: which methods are forwarded, whether the
 * request's framing is acceptable, how its body is handled (none, read whole, streamed), the
 * `allowModels` check, streaming detection (which sets the key's minimum validity), and the
 * headers sent upstream with the injected key. The executor reads, streams and forwards.
 */
import type { GetTokenOptions } from '../types.js';
import { type ErrorAnswer, payloadTooLargeAnswer } from './answers.js';
import type { HandlerConfig } from './config.js';
import { formContentRefusal } from './csrf.js';
import { hasDuplicateKey } from './duplicate-keys.js';
import { readClientHeaders } from './headers.js';

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

const INVALID_CONTENT_LENGTH: ErrorAnswer = Object.freeze({
  status: 400,
  code: 'InvalidParameter',
  message: 'Invalid Content-Length.',
});

const BODY_NOT_ALLOWED: ErrorAnswer = Object.freeze({
  status: 400,
  code: 'InvalidParameter',
  message: 'GET and HEAD requests cannot carry a body.',
  headers: { connection: 'close' },
});

/** Methods whose requests must not carry a body (RFC 9110 §9.3.1, §9.3.2: no defined meaning). */
const BODYLESS_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD']);

/**
 * Methods whose body, when they have one, is always read whole and sent with a
 * `Content-Length`, never streamed: upstream servers that ignore bodies on these methods would
 * otherwise read the rest as the next request on a shared keep-alive connection.
 */
const FRAMED_BODY_METHODS: ReadonlySet<string> = new Set(['OPTIONS', 'DELETE']);

/** 408 for a request body read whole (`allowModels`, replay) that took longer than `proxy.bodyReadTimeoutMs`. */
export const BODY_READ_TIMEOUT: ErrorAnswer = Object.freeze({
  status: 408,
  code: 'RequestTimeout',
  message: 'The request body did not arrive in time.',
  headers: { connection: 'close' },
});

const UNCHECKABLE_BODY: ErrorAnswer = Object.freeze({
  status: 403,
  code: 'AccessDenied',
  message: 'Only JSON request bodies can be checked against the allowed models.',
});

/** 400 for a checked body naming `model` more than once (upstream might read the other one). */
const DUPLICATE_MODEL: ErrorAnswer = Object.freeze({
  status: 400,
  code: 'InvalidParameter',
  message: 'The request body names "model" more than once.',
});

/** The key `hasDuplicateKey` watches in a body whose model is checked. */
const MODEL_KEY: ReadonlySet<string> = new Set(['model']);

/** 405 for a method the proxy does not forward, `undefined` for one it does. */
export function checkProxyMethod(method: string): ErrorAnswer | undefined {
  if (PROXY_METHODS.has(method)) return undefined;
  return {
    status: 405,
    code: 'MethodNotAllowed',
    message: `Method ${method.slice(0, 20)} is not allowed.`,
    headers: { allow: PROXY_ALLOW },
  };
}

/** How the executor handles the request body. */
export type BodyHandling =
  /** No body. */
  | 'none'
  /** Read it whole, up to `maxBodyBytes` (for `allowModels`, or small enough to replay). */
  | 'read'
  /** Stream it upstream, cut with 413 beyond `maxBodyBytes`; sent once (no replay). */
  | 'stream';

/** The plan for one proxied request, before its body is read. */
export interface ProxyPlan {
  method: string;
  /** Path + query on the upstream origin. */
  upstreamPath: string;
  /** Headers for upstream, flat `[name, value, …]`, without credentials or framing headers. */
  headers: string[];
  /** Declared `Content-Length`, if any. */
  declared: number | undefined;
  body: BodyHandling;
  /** The headers already ask for a streamed answer (the body may too, once read). */
  streaming: boolean;
  acceptEncoding: string | undefined;
}

/** The facts of a proxied request the plan needs. */
export interface ProxyFacts {
  method: string;
  /** Raw request headers, flat `[name, value, …]`, names as received. */
  rawHeaders: readonly string[];
  /** The `Transfer-Encoding` header, if any. */
  transferEncoding: string | undefined;
  /**
   * The request has a body whatever its headers say (a Fetch `Request` built in code has no
   * `Content-Length`); a body without a declared length is then one of unknown length.
   * @default false (the headers decide)
   */
  bodyPresent?: boolean;
}

/**
 * Plans a proxied request (after admission): refuses bad framing (invalid or too large
 * `Content-Length`, a `Transfer-Encoding` whose last coding is not chunked, a body on GET or
 * HEAD) and decides how its body is handled. Bodies of OPTIONS and DELETE are read whole and
 * sent with their `Content-Length`; bodies of other methods may stream.
 */
export function planProxy<Ctx>(
  config: HandlerConfig<Ctx>,
  target: string,
  facts: ProxyFacts,
): ProxyPlan | ErrorAnswer {
  const client = readClientHeaders(
    facts.rawHeaders,
    config.forwardClientIdentity,
    config.forwardHeaders,
  );
  const declared = client.contentLength;
  if (declared === -1) return INVALID_CONTENT_LENGTH;
  if (declared !== undefined && declared > config.maxBodyBytes) {
    return payloadTooLargeAnswer(config.maxBodyBytes);
  }
  if (client.chunked && !CHUNKED_LAST.test(String(facts.transferEncoding))) {
    // Refused before anything is minted or sent (RFC 9112 §6.3: 400, then close).
    return INVALID_TRANSFER_ENCODING;
  }
  const hasBody =
    client.chunked || (declared !== undefined ? declared > 0 : facts.bodyPresent === true);
  if (hasBody && BODYLESS_METHODS.has(facts.method)) return BODY_NOT_ALLOWED;
  if (hasBody && client.contentType !== undefined) {
    const q = target.indexOf('?');
    const refused = formContentRefusal(client.contentType, q < 0 ? target : target.slice(0, q));
    if (refused !== undefined) return refused;
  }
  let body: BodyHandling = 'none';
  if (hasBody) {
    body =
      config.allowModels !== undefined ||
      config.budgets?.byModel === true ||
      FRAMED_BODY_METHODS.has(facts.method) ||
      (declared !== undefined && declared <= config.replayBufferBytes)
        ? 'read'
        : 'stream';
  }
  return {
    method: facts.method,
    upstreamPath: config.basePath === '' ? target : config.basePath + target,
    headers: client.headers,
    declared,
    body,
    streaming: client.streaming,
    acceptEncoding: client.acceptEncoding,
  };
}

/** 403 for a model `allowModels` does not list (or a request that names none where it must). */
export function modelRefused(model: unknown): ErrorAnswer {
  return {
    status: 403,
    code: 'AccessDenied',
    message:
      typeof model === 'string'
        ? `Model ${JSON.stringify(model.slice(0, 100))} is not allowed here.`
        : 'The request must name an allowed model.',
  };
}

/** A body held in memory, with its JSON when it was parsed already. */
export interface ReadBody {
  bytes: Uint8Array;
  /** The parsed JSON, when known (a body parser's value); else parsed here when needed. */
  json?: { value: unknown };
}

const utf8 = new TextDecoder();
const latin1 = new TextDecoder('latin1');

/** Parses a JSON body, `undefined` when it is not JSON. */
export function parseJson(body: Uint8Array): unknown {
  try {
    return JSON.parse(utf8.decode(body));
  } catch {
    return undefined;
  }
}

/**
 * The JSON of a body read whole, parsed once per request: kept on `read.json`, so the model
 * check, per-model budgets and metering share one parse (`undefined` when not JSON).
 */
export function bodyJson(read: ReadBody): unknown {
  read.json ??= { value: parseJson(read.bytes) };
  return read.json.value;
}

const STREAM_KEY = [0x22, 0x73, 0x74, 0x72, 0x65, 0x61, 0x6d, 0x22]; // "stream"
const STREAM_TRUE = /"stream"\s*:\s*true/;

function includesStreamKey(body: Uint8Array): boolean {
  const last = body.length - STREAM_KEY.length;
  outer: for (let i = 0; i <= last; i++) {
    if (body[i] !== 0x22) continue;
    for (let j = 1; j < STREAM_KEY.length; j++) if (body[i + j] !== STREAM_KEY[j]) continue outer;
    return true;
  }
  return false;
}

/**
 * Whether a JSON body held in memory asks for a streamed answer (`"stream": true`), without
 * parsing it. May err towards `true` (the key inside a string), which only raises the freshness
 * floor of the injected key.
 */
export function bodyRequestsStream(body: Uint8Array): boolean {
  return includesStreamKey(body) && STREAM_TRUE.test(latin1.decode(body));
}

function isObject(json: unknown): json is Record<string, unknown> {
  return typeof json === 'object' && json !== null && !Array.isArray(json);
}

/**
 * The `allowModels` check: the JSON body's `model` (and any `model` query parameter) must be
 * listed. With `allowModels` set, a non-empty body must be a JSON object (a body that cannot be
 * checked is refused, and so is one naming `model` twice); requests without a model (task
 * polling, listings) pass.
 */
function checkModels(
  allow: ReadonlySet<string>,
  json: unknown,
  body: Uint8Array | undefined,
  query: string,
): ErrorAnswer | undefined {
  if (body !== undefined && body.length > 0) {
    if (!isObject(json)) return UNCHECKABLE_BODY;
    if (hasDuplicateKey(utf8.decode(body), MODEL_KEY, 1)) return DUPLICATE_MODEL;
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

/**
 * Decides on the body once it is known (`undefined` when there is none, or it is streamed):
 * the `allowModels` check, and whether the request streams.
 * @returns the refusal, or whether the request asks for a streamed answer
 */
export function checkProxyBody<Ctx>(
  config: HandlerConfig<Ctx>,
  plan: ProxyPlan,
  query: string,
  body: ReadBody | undefined,
): ErrorAnswer | { streaming: boolean } {
  let streaming = plan.streaming;
  let json: unknown;
  let jsonRead = false;
  // Per-model budgets read the body's model too (after this check, see `withinModelBudgets`).
  const modelBudgets = config.budgets?.byModel === true;
  if (body !== undefined) {
    if (body.json !== undefined || config.allowModels !== undefined || modelBudgets) {
      json = bodyJson(body);
      jsonRead = true;
    }
    if (!streaming) {
      streaming = jsonRead
        ? (json as { stream?: unknown } | null)?.stream === true
        : bodyRequestsStream(body.bytes);
    }
  }
  if (config.allowModels !== undefined) {
    const refused = checkModels(config.allowModels, json, body?.bytes, query);
    if (refused !== undefined) return refused;
  } else if (
    modelBudgets &&
    isObject(json) &&
    hasDuplicateKey(utf8.decode(body!.bytes), MODEL_KEY, 1)
  ) {
    // A body naming `model` twice could slip past a model's budget if upstream reads the other.
    return DUPLICATE_MODEL;
  }
  return streaming ? STREAMING : NOT_STREAMING;
}

const STREAMING = Object.freeze({ streaming: true });
const NOT_STREAMING = Object.freeze({ streaming: false });

/** What the proxy would otherwise allocate per request, for the last key seen. */
export interface ProxyMemo {
  apiKey: string;
  /** `getToken` options for plain and streaming requests with `apiKey`. */
  plain: GetTokenOptions & { apiKey: string };
  streaming: GetTokenOptions & { apiKey: string };
  token: string;
  /** `Bearer ${token}`. */
  authorization: string;
}

/**
 * The `getToken` options of a proxied request: its key and the minimum validity
 * (`proxy.streamingMinValiditySeconds` for streams), reused while the key stays the same.
 */
export function proxyTokenCall<Ctx>(
  config: HandlerConfig<Ctx>,
  memo: { current?: ProxyMemo },
  apiKey: string,
  streaming: boolean,
): GetTokenOptions & { apiKey: string; minValiditySeconds: number } {
  let m = memo.current;
  if (m === undefined || m.apiKey !== apiKey) {
    const { minValiditySeconds, streamingMinValiditySeconds } = config;
    m = {
      apiKey,
      plain: Object.freeze({ apiKey, minValiditySeconds }),
      streaming: Object.freeze({ apiKey, minValiditySeconds: streamingMinValiditySeconds }),
      token: '',
      authorization: '',
    };
    memo.current = m;
  }
  return (streaming ? m.streaming : m.plain) as GetTokenOptions & {
    apiKey: string;
    minValiditySeconds: number;
  };
}

/** `Bearer ${token}`, built once per token rather than once per request. */
export function bearer(memo: { current?: ProxyMemo }, token: string): string {
  const m = memo.current;
  if (m === undefined) return `Bearer ${token}`;
  if (m.token !== token) {
    m.token = token;
    m.authorization = `Bearer ${token}`;
  }
  return m.authorization;
}

/**
 * Completes the upstream headers of `plan` (in place): `content-length` of the body sent
 * (`bodyLength`, `undefined` for none or a stream of unknown length), `accept-encoding`
 * (`identity` for streams, so that events are not held back by compression; the client's
 * otherwise, unless `identityOnly`), and the injected `authorization` LAST (a replay swaps it).
 */
export function completeUpstreamHeaders(
  plan: ProxyPlan,
  bodyLength: number | undefined,
  streaming: boolean,
  authorization: string,
  identityOnly = false,
): string[] {
  const headers = plan.headers;
  if (bodyLength !== undefined) headers.push('content-length', String(bodyLength));
  if (streaming || identityOnly) headers.push('accept-encoding', 'identity');
  else if (plan.acceptEncoding !== undefined) headers.push('accept-encoding', plan.acceptEncoding);
  headers.push('authorization', authorization);
  return headers;
}

/** The headers of a replay: the same with a fresh key (the last header). */
export function withFreshKey(headers: readonly string[], token: string): string[] {
  const copy = headers.slice();
  copy[copy.length - 1] = `Bearer ${token}`;
  return copy;
}
