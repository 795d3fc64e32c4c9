/**
 * The answers the handler produces itself (never an upstream answer, which passes through), in
 * both dialects, and the one mapping from a failure to the answer a client gets. Runtime-neutral:
 * an executor writes an {@link Answer} onto a `ServerResponse`, a raw socket or a `Response`.
 */
import { isDashScopeError, redactSecrets } from '../errors.js';
import { type AnswerHeaders, errorFromAnswer } from '../upstream-errors.js';

/**
 * Which error shape a route speaks: Model Studio's `{code, message, request_id}` (native API and
 * token route) or OpenAI's `{error: {message, type, code}}` (compatible-mode routes).
 */
export type ErrorDialect = 'dashscope' | 'openai';

/** An error the handler itself answers with. */
export interface ErrorAnswer {
  status: number;
  /** Model Studio style code (`AccessDenied`, `Throttling.RateQuota`, ...). */
  code: string;
  message: string;
  retryAfterSeconds?: number;
  /**
   * Whether the same request may succeed if sent again. `false` adds `x-should-retry: false`,
   * which the OpenAI SDKs obey (they otherwise retry 408, 409, 429 and 5xx answers).
   * @default true for 408, 429 and 5xx but 501; false otherwise
   */
  retryable?: boolean;
  /** The request id to answer with (Model Studio's, when the failure came from it). */
  requestId?: string;
  /** Extra response headers (e.g. `Allow`, `Connection: close`). */
  headers?: Readonly<Record<string, string>>;
}

/** A complete answer: status, headers (lower-case names) and a text body. */
export interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** A fresh request id for an answer the handler produces. */
export function newRequestId(): string {
  return globalThis.crypto.randomUUID();
}

const encoder = new TextEncoder();

/** Bytes of `text` in UTF-8 (ASCII without encoding it). */
export function utf8Length(text: string): number {
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) > 0x7f) return encoder.encode(text).byteLength;
  }
  return text.length;
}

const OPENAI_CODES: Readonly<Record<string, string>> = {
  InvalidApiKey: 'invalid_api_key',
  AccessDenied: 'access_denied',
  Unauthorized: 'unauthorized',
  ModelNotAllowed: 'model_not_allowed',
  NotFound: 'not_found',
  MethodNotAllowed: 'method_not_allowed',
  InvalidParameter: 'invalid_parameter',
  InvalidPath: 'invalid_path',
  PayloadTooLarge: 'payload_too_large',
  UpgradeRequired: 'upgrade_required',
  'Throttling.RateQuota': 'rate_limit_exceeded',
  Throttling: 'rate_limit_exceeded',
  MissingApiKey: 'missing_api_key',
  InternalError: 'internal_error',
  BadGateway: 'bad_gateway',
  NetworkError: 'network_error',
  Timeout: 'timeout',
  SystemError: 'system_error',
};

/** `Throttling.AllocationQuota` → `throttling_allocation_quota`, for codes without a table entry. */
function toSnakeCase(code: string): string {
  return code
    .replace(/\./g, '_')
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase();
}

function openAiType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

/** Whether `answer` invites the same request again (see {@link ErrorAnswer.retryable}). */
export function isRetryable(answer: ErrorAnswer): boolean {
  if (answer.retryable !== undefined) return answer.retryable;
  const status = answer.status;
  return status === 408 || status === 429 || (status >= 500 && status !== 501);
}

/**
 * 502 `InvalidApiKey`: Model Studio refused the temporary key the server injected (for an HTTP
 * call also after one replay with a fresh key). It is the server's key that failed, so the
 * client gets no 401 (which SDKs read as "your key is wrong") and no invitation to retry.
 */
export function injectedKeyRefusedAnswer(requestId?: string): ErrorAnswer {
  const answer: ErrorAnswer = {
    status: 502,
    code: 'InvalidApiKey',
    message:
      "Model Studio rejected the temporary key injected for this request (the client's " +
      'credentials are not the problem); check the configured key and its region.',
    retryable: false,
  };
  if (requestId !== undefined) answer.requestId = requestId;
  return answer;
}

/**
 * {@link injectedKeyRefusedAnswer} for Model Studio's 401 answer (`headers`, `body`), with its
 * request id; the body itself is not passed on.
 */
export function unauthorizedUpstreamAnswer(
  headers: AnswerHeaders,
  body: string,
  secrets: readonly string[],
): ErrorAnswer {
  return injectedKeyRefusedAnswer(errorFromAnswer(401, headers, body, secrets).requestId);
}

/** The JSON body of `answer` in `dialect`. */
export function errorBody(dialect: ErrorDialect, answer: ErrorAnswer, requestId: string): string {
  if (dialect === 'openai') {
    const code = OPENAI_CODES[answer.code] ?? toSnakeCase(answer.code);
    return JSON.stringify({
      error: { message: answer.message, type: openAiType(answer.status), code },
    });
  }
  return JSON.stringify({ code: answer.code, message: answer.message, request_id: requestId });
}

/**
 * The complete answer for `error` in `dialect`: JSON body, `Content-Type`, `Content-Length`,
 * `Cache-Control: no-store`, `X-Request-Id`, `Retry-After` when known, and the error's own
 * headers. The only place error answers are built.
 */
export function errorAnswer(
  dialect: ErrorDialect,
  error: ErrorAnswer,
  requestId: string = error.requestId ?? newRequestId(),
): Answer {
  const body = errorBody(dialect, error, requestId);
  const headers: Record<string, string> = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(utf8Length(body)),
    'cache-control': 'no-store',
    'x-request-id': requestId,
  };
  if (error.retryAfterSeconds !== undefined) {
    headers['retry-after'] = String(Math.max(0, Math.ceil(error.retryAfterSeconds)));
  }
  if (!isRetryable(error)) headers['x-should-retry'] = 'false';
  if (error.headers) {
    for (const name in error.headers) headers[name] = error.headers[name]!;
  }
  return { status: error.status, headers, body };
}

/**
 * A 200 JSON answer that carries a secret (a temporary key, a login URL): `Cache-Control:
 * no-store` and `Pragma: no-cache`, plus `extra` headers.
 */
export function noStoreAnswer(
  body: string,
  requestId: string,
  extra?: Readonly<Record<string, string>>,
): Answer {
  return {
    status: 200,
    headers: {
      'content-type': 'application/json; charset=utf-8',
      'content-length': String(utf8Length(body)),
      'cache-control': 'no-store',
      pragma: 'no-cache',
      ...extra,
      'x-request-id': requestId,
    },
    body,
  };
}

/** 499: the client went away before the answer (nobody reads it; for logs and stats). */
export const CLIENT_GONE: ErrorAnswer = Object.freeze({
  status: 499,
  code: 'ClientClosed',
  message: 'The client went away before the answer.',
});

/** 500 without details: an unexpected (non-DashScopeError) failure. */
export const INTERNAL_ERROR: ErrorAnswer = Object.freeze({
  status: 500,
  code: 'InternalError',
  message: 'The server failed to handle the request.',
});

/** 404 for a path under the prefix that is no route. */
export const NOT_FOUND: ErrorAnswer = Object.freeze({
  status: 404,
  code: 'NotFound',
  message: 'No such route.',
});

/** 413 for a body larger than `limit` bytes; the rest of the body is not read. */
export function payloadTooLargeAnswer(limit: number): ErrorAnswer {
  return {
    status: 413,
    code: 'PayloadTooLarge',
    message: `The request body exceeds the limit of ${limit} bytes.`,
    headers: { connection: 'close' },
  };
}

/** 400 for a request target refused by the path checks. */
export function badTargetAnswer(reason: string): ErrorAnswer {
  return { status: 400, code: 'InvalidPath', message: `Request target refused: ${reason}.` };
}

/** Where a failure happened, for {@link failureAnswer}. */
export type FailureSite =
  /** `authorize`, `apiKey` or `websocket.context` threw. */
  | 'hook'
  /** Getting a temporary key failed (mint or cache). */
  | 'token'
  /** Model Studio refused the WebSocket handshake with an HTTP answer. */
  | 'websocket-refusal';

/**
 * The answer for a failure, the one mapping used everywhere:
 *
 * - `hook`: a thrown DashScopeError answers with its own status (4xx/5xx, else 500) and code;
 *   anything else thrown → 500 `InternalError` without its message.
 * - `token`: the mint is the server's business, not the client's: `Throttling*`/429 → 429 with
 *   `Retry-After` (Model Studio's, else 1 s); `InvalidApiKey`/401 → 502 (the server's key is
 *   bad); other upstream 4xx → 502; configuration errors without an upstream answer
 *   (`InvalidParameter`, `MissingApiKey`) → 500; 5xx kept; anything else → 500.
 * - `websocket-refusal`: Model Studio's status is kept for client-side problems (400, 403, 404)
 *   and throttling (429, `Retry-After`); a 401 to the injected key → 502 `InvalidApiKey`.
 *
 * Messages are passed through {@link redactSecrets} once more, with `secrets`.
 */
export function failureAnswer(
  error: unknown,
  site: FailureSite,
  secrets: readonly string[] = [],
): ErrorAnswer {
  if (!isDashScopeError(error)) return INTERNAL_ERROR;
  const message = redactSecrets(error.message, secrets);
  const retryAfter = error.retryAfterSeconds;
  let status = error.status;
  if (site === 'hook') {
    if (status < 400 || status > 599) status = 500;
  } else if (site === 'websocket-refusal' && (status === 401 || error.code === 'InvalidApiKey')) {
    return injectedKeyRefusedAnswer(error.requestId);
  } else if (status === 401 || error.code === 'InvalidApiKey') {
    const refused: ErrorAnswer = {
      status: 502,
      code: error.code,
      message:
        "Model Studio rejected the server's API key (the client's credentials are not the problem); " +
        'check the configured key and its region.',
      retryable: false,
    };
    if (error.requestId !== undefined) refused.requestId = error.requestId;
    return refused;
  } else if (status === 429 || (site === 'token' && error.code.startsWith('Throttling'))) {
    return { status: 429, code: error.code, message, retryAfterSeconds: retryAfter ?? 1 };
  } else if (site === 'token') {
    if (status >= 400 && status < 500) status = error.upstreamStatus === undefined ? 500 : 502;
    if (status < 400 || status > 599) status = 500;
  }
  const answer: ErrorAnswer = { status, code: error.code, message, retryable: error.retryable };
  if (retryAfter !== undefined) answer.retryAfterSeconds = retryAfter;
  if (error.requestId !== undefined) answer.requestId = error.requestId;
  return answer;
}

/** How a call to Model Studio failed before any answer, as an executor classifies it. */
export type TransportFailure =
  /** No response headers (or no handshake answer) in time. */
  | 'timeout'
  /** Connection refused, reset, DNS or TLS failure. */
  | 'unreachable'
  /** The request has a header or body the HTTP client refuses to send. */
  | 'unforwardable'
  /** The WebSocket handshake answer was not a valid one. */
  | 'bad-handshake';

const TRANSPORT_ANSWERS: Readonly<Record<TransportFailure, ErrorAnswer>> = Object.freeze({
  timeout: Object.freeze({
    status: 504,
    code: 'Timeout',
    message: 'Model Studio did not answer in time.',
  }),
  unreachable: Object.freeze({
    status: 502,
    code: 'NetworkError',
    message: 'Model Studio could not be reached.',
  }),
  unforwardable: Object.freeze({
    status: 400,
    code: 'InvalidParameter',
    message: 'The request has a header or body the proxy cannot forward.',
  }),
  'bad-handshake': Object.freeze({
    status: 502,
    code: 'BadGateway',
    message: 'Model Studio answered the WebSocket handshake with an invalid response.',
  }),
});

/** The answer for a call to Model Studio that failed before any byte reached the client. */
export function transportFailureAnswer(failure: TransportFailure): ErrorAnswer {
  return TRANSPORT_ANSWERS[failure];
}
