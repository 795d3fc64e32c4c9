import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { isDashScopeError, redactSecrets } from '../errors.js';

/**
 * Which error shape a route speaks: Model Studio's `{code, message, request_id}` (native API and
 * token route) or OpenAI's `{error: {message, type, code}}` (compatible-mode routes).
 */
export type ErrorDialect = 'dashscope' | 'openai';

/** An error the handler itself answers with (never an upstream answer, which passes through). */
export interface ErrorAnswer {
  status: number;
  /** Model Studio style code (`AccessDenied`, `Throttling.RateQuota`, ...). */
  code: string;
  message: string;
  retryAfterSeconds?: number;
  /** Extra response headers (e.g. `Allow`, `Connection: close`). */
  headers?: Readonly<Record<string, string>>;
}

/** A fresh request id for an answer the handler produces. */
export function newRequestId(): string {
  return randomUUID();
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
 * Answers with an error in `dialect`. Headers already set on `res` (CORS) are kept. When the
 * response has already started (mid-stream), the connection is cut instead: the client sees a
 * truncated response rather than a spliced one.
 */
export function sendError(
  res: ServerResponse,
  dialect: ErrorDialect,
  answer: ErrorAnswer,
  requestId: string = newRequestId(),
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (res.destroyed || res.writableEnded) return;
  const body = errorBody(dialect, answer, requestId);
  res.statusCode = answer.status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(body));
  res.setHeader('cache-control', 'no-store');
  res.setHeader('x-request-id', requestId);
  if (answer.retryAfterSeconds !== undefined) {
    res.setHeader('retry-after', String(Math.max(0, Math.ceil(answer.retryAfterSeconds))));
  }
  if (answer.headers) {
    for (const name in answer.headers) res.setHeader(name, answer.headers[name]!);
  }
  res.end(body);
}

/** The answer for an unexpected (non-DashScopeError) failure: 500 without the thrown message. */
export const INTERNAL_ERROR: ErrorAnswer = Object.freeze({
  status: 500,
  code: 'InternalError',
  message: 'The server failed to handle the request.',
});

/**
 * The answer for a failure to obtain a temporary key (mint or cache). The mint is the server's
 * business, not the client's, so its 4xx answers are not the client's fault:
 *
 * - `Throttling*` / 429 → 429 with `Retry-After` (the value Model Studio sent, else 1 s);
 * - `InvalidApiKey` / any other upstream 4xx (the server's permanent key or configuration is
 *   bad) → 502, keeping the code so operators can see what went wrong;
 * - option or configuration errors without an upstream answer (`InvalidParameter`,
 *   `MissingApiKey`) → 500;
 * - `Timeout` → 504, `NetworkError`/`BadGateway`/`SystemError` → their status (502/503);
 * - anything else → 500 `InternalError` without its message.
 *
 * Messages are passed through {@link redactSecrets} once more, with `secrets`.
 */
export function tokenErrorAnswer(error: unknown, secrets: readonly string[] = []): ErrorAnswer {
  if (!isDashScopeError(error)) return INTERNAL_ERROR;
  const message = redactSecrets(error.message, secrets);
  const retryAfter = error.retryAfterSeconds;
  if (error.status === 429 || error.code.startsWith('Throttling')) {
    return {
      status: 429,
      code: error.code,
      message,
      retryAfterSeconds: retryAfter ?? 1,
    };
  }
  let status = error.status;
  if (status === 401 || error.code === 'InvalidApiKey') {
    return {
      status: 502,
      code: error.code,
      message:
        "Model Studio rejected the server's API key (the client's credentials are not the problem); " +
        'check the configured key and its region.',
    };
  }
  if (status >= 400 && status < 500) status = error.upstreamStatus === undefined ? 500 : 502;
  if (status < 400 || status > 599) status = 500;
  const answer: ErrorAnswer = { status, code: error.code, message };
  if (retryAfter !== undefined) answer.retryAfterSeconds = retryAfter;
  return answer;
}
