/**
 * What the handler logs, and what it never logs, whatever the runtime: the logger interface,
 * the fields of a request line (built from plain facts), failed refreshes and internal errors.
 */
import { type DashScopeError, redactSecrets } from '../errors.js';

/**
 * Where the handler writes its log lines: any object with some of `debug`, `info`, `warn` and
 * `error` (`console`, or a pino/winston-style logger). Each call gets a one-line message and the
 * same facts as fields. A missing level is skipped.
 *
 * What is logged, and what never is:
 * - `info`: one line per request the handler answered (token route, proxy, refusals): method,
 *   path (without the query string), status, duration in ms, the request id of the answer, and
 *   whether the client left before the answer ended;
 * - `warn`: a background refresh of a temporary key that failed (code and redacted message),
 *   the shared store failing or timing out (once per outage, `StoreUnavailable`), and (once)
 *   an Express/Koa middleware mounted under a path while WebSocket routes stay at `{prefix}`;
 * - `error`: an unexpected failure of the handler itself (answered 500 `InternalError`).
 *
 * Never: header values (`Authorization`, `Cookie`, …), query strings, bodies, or any key
 * (`sk-…`, `st-…`).
 */
export interface DashScopeLogger {
  debug?(message: string, fields?: Record<string, unknown>): void;
  info?(message: string, fields?: Record<string, unknown>): void;
  warn?(message: string, fields?: Record<string, unknown>): void;
  error?(message: string, fields?: Record<string, unknown>): void;
}

/** The fields of the `info` line logged for one request. */
export interface RequestLogFields {
  method: string;
  /** The request path as received, without the query string (keys redacted). */
  path: string;
  /** Status answered (0 when the connection was cut before any answer). */
  status: number;
  durationMs: number;
  /** `x-request-id` of the answer (Model Studio's for proxied answers, ours otherwise). */
  requestId?: string;
  /** The client went away before the answer ended. */
  clientClosed: boolean;
}

/** The facts of one answered request, as an executor knows them. */
export interface RequestLogFacts {
  method: string | undefined;
  /** Path + query relative to the mount point. */
  url: string;
  status: number;
  /** Milliseconds the request took. */
  durationMs: number;
  requestId: string | undefined;
  clientClosed: boolean;
}

/** The one `warn` about WebSocket routes under a framework's mount path. */
export function logMountPathWarning(
  logger: DashScopeLogger,
  message: string,
  fields: { mountPath: string; prefix: string },
): void {
  call(logger, 'warn', message, fields);
}

/** Longest path logged. */
const MAX_PATH = 300;

function call(
  logger: DashScopeLogger,
  level: keyof DashScopeLogger,
  message: string,
  fields: Record<string, unknown>,
): void {
  const fn = logger[level];
  if (typeof fn !== 'function') return;
  try {
    fn.call(logger, message, fields);
  } catch {
    // A broken logger must not break the handler.
  }
}

function pathOf(url: string): string {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  return redactSecrets(path.length > MAX_PATH ? `${path.slice(0, MAX_PATH)}…` : path);
}

function methodOf(method: string | undefined): string {
  return (method ?? '?').slice(0, 20);
}

/** Logs one line for a request the handler answered. */
export function logRequest(logger: DashScopeLogger, facts: RequestLogFacts): void {
  const fields: RequestLogFields = {
    method: methodOf(facts.method),
    path: pathOf(facts.url),
    status: facts.status,
    durationMs: Math.round(facts.durationMs * 10) / 10,
    clientClosed: facts.clientClosed,
  };
  if (facts.requestId !== undefined) fields.requestId = redactSecrets(facts.requestId);
  const message =
    `${fields.method} ${fields.path} ${fields.status || '-'} ${fields.durationMs}ms` +
    (fields.requestId === undefined ? '' : ` id=${fields.requestId}`) +
    (fields.clientClosed ? ' (client closed)' : '');
  call(logger, 'info', message, fields as unknown as Record<string, unknown>);
}

/** Logs a failed background refresh of a temporary key. */
export function logRefreshError(logger: DashScopeLogger, error: DashScopeError): void {
  const message = redactSecrets(error.message);
  call(logger, 'warn', `Refreshing a temporary key failed: ${error.code}: ${message}`, {
    code: error.code,
    status: error.status,
    message,
    ...(error.requestId !== undefined && { requestId: redactSecrets(error.requestId) }),
  });
}

/** Logs that the shared store failed or timed out (once per outage). */
export function logStoreError(logger: DashScopeLogger, error: DashScopeError): void {
  const message = redactSecrets(error.message);
  call(logger, 'warn', `${error.code}: ${message}`, { code: error.code, message });
}

/** Logs an unexpected failure of the handler (a bug), without its message. */
export function logInternalError(
  logger: DashScopeLogger,
  method: string | undefined,
  url: string,
): void {
  const m = methodOf(method);
  const path = pathOf(url);
  call(logger, 'error', `${m} ${path}: the handler failed unexpectedly (answered 500)`, {
    method: m,
    path,
  });
}
