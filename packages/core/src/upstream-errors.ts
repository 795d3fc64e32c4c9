/**
 * Turns what went wrong on a call to Model Studio (an error answer, a network failure, a timeout,
 * an abort) into a {@link DashScopeError}, following the mapping table in `errors.ts`.
 */
import { DashScopeError, isDashScopeError, redactSecrets } from './errors.js';

/** Longest upstream message kept in an error. */
const MAX_MESSAGE = 500;

/**
 * Headers of an answer: a record as undici and node:http expose them, or a lookup by lower-case
 * name (an `HttpResponse`'s `header`).
 */
export type AnswerHeaders =
  | Record<string, string | string[] | undefined>
  | ((name: string) => string | undefined);

function header(headers: AnswerHeaders, name: string): string | undefined {
  if (typeof headers === 'function') return headers(name);
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Seconds to wait from a `Retry-After` value: delay-seconds or an HTTP-date (relative to
 * `referenceMs`, the server's `Date` when known). `undefined` when absent or unreadable.
 */
export function parseRetryAfter(
  value: string | undefined,
  referenceMs: number,
): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) {
    const seconds = Number(text);
    return Number.isSafeInteger(seconds) ? seconds : undefined;
  }
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, Math.ceil((date - referenceMs) / 1000));
}

/** The server's `Date` header in ms, or `undefined`. */
export function parseDateHeader(headers: AnswerHeaders): number | undefined {
  const value = header(headers, 'date');
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

function clip(text: string): string {
  return text.length > MAX_MESSAGE ? `${text.slice(0, MAX_MESSAGE)}…` : text;
}

/** Fallback codes for an error answer whose body has no `{code}`. */
const CODE_BY_STATUS: Record<number, string> = {
  400: 'InvalidParameter',
  401: 'InvalidApiKey',
  403: 'AccessDenied',
  404: 'NotFound',
  429: 'Throttling',
};

/**
 * The error for a non-2xx answer of Model Studio.
 *
 * @param status the answer's HTTP status
 * @param headers the answer's headers (for `Retry-After`, `Date`, `x-request-id`)
 * @param body the answer's body, possibly truncated
 * @param secrets strings to redact (the API key in use)
 */
export function errorFromAnswer(
  status: number,
  headers: AnswerHeaders,
  body: string,
  secrets: readonly string[],
): DashScopeError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    parsed = undefined;
  }
  const fields =
    parsed !== null && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : {};
  const rawCode =
    typeof fields.code === 'string' && fields.code !== '' ? fields.code.slice(0, 100) : undefined;
  // A code is passed on verbatim, so one that carries anything secret-looking is dropped.
  const upstreamCode =
    rawCode !== undefined && redactSecrets(rawCode, secrets) === rawCode ? rawCode : undefined;
  const upstreamMessage =
    typeof fields.message === 'string' && fields.message !== '' ? fields.message : undefined;
  const rawRequestId =
    typeof fields.request_id === 'string' && fields.request_id !== ''
      ? fields.request_id
      : header(headers, 'x-request-id');
  const requestId =
    rawRequestId === undefined ? undefined : redactSecrets(rawRequestId.slice(0, 200), secrets);
  const retryAfterSeconds = parseRetryAfter(
    header(headers, 'retry-after'),
    parseDateHeader(headers) ?? Date.now(),
  );

  let code: string;
  let mapped: number;
  let retryable: boolean;
  if (status === 401 || upstreamCode === 'InvalidApiKey') {
    code = 'InvalidApiKey';
    mapped = 401;
    retryable = false;
  } else if (status === 429 || upstreamCode?.startsWith('Throttling')) {
    code = upstreamCode ?? 'Throttling';
    mapped = 429;
    retryable = true;
  } else if (status >= 500) {
    if (upstreamCode !== undefined) {
      code = upstreamCode;
      mapped = status === 503 ? 503 : 502;
    } else {
      code = 'BadGateway';
      mapped = 502;
    }
    retryable = true;
  } else if (status >= 400) {
    code = upstreamCode ?? CODE_BY_STATUS[status] ?? 'BadGateway';
    mapped = upstreamCode !== undefined || CODE_BY_STATUS[status] !== undefined ? status : 502;
    retryable = false;
  } else {
    // 1xx/3xx: not an answer the token endpoint gives.
    code = 'BadGateway';
    mapped = 502;
    retryable = false;
  }

  const message =
    upstreamMessage !== undefined
      ? clip(upstreamMessage)
      : upstreamCode !== undefined
        ? `Model Studio answered HTTP ${status} (${upstreamCode}).`
        : `Model Studio answered HTTP ${status} with ${describeBody(body)}.`;
  return new DashScopeError({
    code,
    status: mapped,
    retryable,
    message,
    secrets,
    ...(requestId !== undefined && { requestId }),
    ...(retryAfterSeconds !== undefined && { retryAfterSeconds }),
    upstreamStatus: status,
  });
}

/** A word about an unexpected body, for messages (never the body itself). */
export function describeBody(body: string): string {
  const start = body.trimStart();
  if (start === '') return 'an empty body';
  if (start.startsWith('<')) return 'an HTML/XML page instead of JSON';
  if (start.startsWith('{') || start.startsWith('[')) return 'malformed or truncated JSON';
  return 'a body that is not JSON';
}

/** The error for a 2xx answer whose body is not a usable token. */
export function badTokenAnswer(
  detail: string,
  status: number,
  retryable: boolean,
  secrets: readonly string[],
  requestId?: string,
): DashScopeError {
  return new DashScopeError({
    code: 'BadGateway',
    status: 502,
    retryable,
    message: `Model Studio answered the token request with ${detail}.`,
    secrets,
    upstreamStatus: status,
    ...(requestId !== undefined && { requestId: redactSecrets(requestId, secrets) }),
  });
}

/** Node/undici error codes that mean the connection could not be made or was lost. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EAI_FAIL',
  'EAI_NONAME',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EADDRNOTAVAIL',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_DESTROYED',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'UND_ERR_INFO',
  'EPROTO',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_HAS_EXPIRED',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
]);

const TIMEOUT_CODES = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
]);

/** The first `code` found along an error's `cause` chain (undici wraps node errors). */
function errorCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current !== null && typeof current === 'object'; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && (NETWORK_CODES.has(code) || TIMEOUT_CODES.has(code)))
      return code;
    current = (current as { cause?: unknown }).cause;
  }
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** A copy of an underlying error that carries no reference to request objects or secrets. */
function sanitizedCause(error: unknown, secrets: readonly string[]): Error {
  const name = error instanceof Error ? error.name : 'Error';
  const message = error instanceof Error ? error.message : String(error);
  const copy = new Error(redactSecrets(clip(message), secrets));
  copy.name = name;
  copy.stack = `${name}: ${copy.message}`;
  const code = errorCode(error);
  if (code !== undefined) (copy as Error & { code?: string }).code = code;
  return copy;
}

/** What the request was doing, for messages: `'requesting a token from https://host'`. */
export interface FailureContext {
  /** e.g. `requesting a temporary key from https://dashscope.aliyuncs.com` */
  action: string;
  secrets: readonly string[];
}

/** The `Timeout` error (504, retryable). */
export function timeoutError(context: FailureContext, ms: number, cause?: unknown): DashScopeError {
  return new DashScopeError({
    code: 'Timeout',
    status: 504,
    retryable: true,
    message: `Timed out after ${ms} ms ${context.action}.`,
    secrets: context.secrets,
    ...(cause !== undefined && { cause: sanitizedCause(cause, context.secrets) }),
  });
}

/** The `Aborted` error (499, not retryable): the caller's signal fired. */
export function abortedError(context: FailureContext): DashScopeError {
  return new DashScopeError({
    code: 'Aborted',
    status: 499,
    retryable: false,
    message: `Aborted by the caller while ${context.action}.`,
    secrets: context.secrets,
  });
}

/**
 * The error for a failure that is not an answer: connection refused/reset, DNS, TLS, timeouts.
 * A `DashScopeError` passes through unchanged.
 */
export function errorFromFailure(error: unknown, context: FailureContext): DashScopeError {
  if (isDashScopeError(error)) return error;
  const code = errorCode(error);
  if (code !== undefined && TIMEOUT_CODES.has(code)) {
    const what = code === 'UND_ERR_CONNECT_TIMEOUT' ? 'connecting' : 'waiting for the answer';
    return new DashScopeError({
      code: 'Timeout',
      status: 504,
      retryable: true,
      message: `Timed out ${what} while ${context.action}.`,
      secrets: context.secrets,
      cause: sanitizedCause(error, context.secrets),
    });
  }
  const detail =
    code === 'ECONNREFUSED'
      ? 'connection refused'
      : code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_FAIL' || code === 'EAI_NONAME'
        ? 'host name not found (DNS)'
        : code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE'
          ? 'connection reset or closed by the other side'
          : code === 'UND_ERR_CLOSED' || code === 'UND_ERR_DESTROYED'
            ? 'the HTTP client was closed'
            : code !== undefined
              ? code
              : 'network failure';
  return new DashScopeError({
    code: 'NetworkError',
    status: 502,
    retryable: true,
    message: `Network error (${detail}) while ${context.action}.`,
    secrets: context.secrets,
    cause: sanitizedCause(error, context.secrets),
  });
}

/** Runs `fn`, re-issuing a DashScopeError it throws with `secrets` redacted from its message. */
export function withSecrets<T>(fn: () => T, secrets: readonly string[]): T {
  try {
    return fn();
  } catch (error) {
    if (!isDashScopeError(error)) throw error;
    throw new DashScopeError({
      code: error.code,
      status: error.status,
      retryable: error.retryable,
      message: error.message,
      secrets,
    });
  }
}
