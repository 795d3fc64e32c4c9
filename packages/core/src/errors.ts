/**
 * One error type for every failure the project can produce.
 *
 * Mapping table (also in the package README):
 *
 * | cause                                         | code                      | status | retryable |
 * | --------------------------------------------- | ------------------------- | ------ | --------- |
 * | options invalid before any request            | `InvalidParameter`        | 400    | no        |
 * | no API key configured / resolved              | `MissingApiKey`           | 500    | no        |
 * | upstream 400 (any code)                       | upstream code             | 400    | no        |
 * | upstream 401 / `InvalidApiKey`                | `InvalidApiKey`           | 401    | no        |
 * | upstream 403 / `AccessDenied`                 | upstream code             | 403    | no        |
 * | upstream 404                                  | upstream code             | 404    | no        |
 * | upstream 429 / `Throttling*`                  | upstream code             | 429    | yes       |
 * | upstream 5xx with a JSON `{code}`             | upstream code (`SystemError`) | 502 (503 kept) | yes |
 * | upstream answer not JSON / truncated / HTML   | `BadGateway`              | 502    | yes       |
 * | upstream 2xx with a malformed body            | `BadGateway`              | 502    | no        |
 * | connection refused / reset / DNS failure      | `NetworkError`            | 502    | yes       |
 * | connect or overall timeout                    | `Timeout`                 | 504    | yes       |
 * | the caller's `AbortSignal` fired              | `Aborted`                 | 499    | no        |
 *
 * No message, property or JSON of a `DashScopeError` contains a permanent API
 * key: every message passes through {@link redactSecrets}.
 */

/** The JSON shape Model Studio uses for errors, and the one `toJSON()` returns. */
export interface DashScopeErrorBody {
  code: string;
  message: string;
  request_id?: string;
}

/** Fields accepted by the {@link DashScopeError} constructor. */
export interface DashScopeErrorInit {
  /** Stable code a program can branch on, e.g. `InvalidApiKey`, `Timeout`. */
  code: string;
  /** Message a person can act on. Secrets are redacted from it. */
  message: string;
  /** The HTTP status a server should answer with for this failure. */
  status: number;
  /** Whether trying again later may succeed. */
  retryable: boolean;
  /** Model Studio's `request_id`, when the failure came from an answer that had one. */
  requestId?: string;
  /** Seconds to wait before retrying, from `Retry-After` when upstream sent one. */
  retryAfterSeconds?: number;
  /** HTTP status Model Studio answered with, when the failure came from an answer. */
  upstreamStatus?: number;
  /** Underlying error (already free of secrets). */
  cause?: unknown;
  /** Extra strings that must never appear in the message (e.g. the API key in use). */
  secrets?: readonly string[];
}

/** The one error class for every failure in dashscope-token. */
export class DashScopeError extends Error {
  override readonly name = 'DashScopeError';
  /** Stable code a program can branch on (`InvalidApiKey`, `Throttling.RateQuota`, `Timeout`, ...). */
  readonly code: string;
  /** The HTTP status a server should answer with for this failure. */
  readonly status: number;
  /** Whether trying again later may succeed. */
  readonly retryable: boolean;
  /** Model Studio's `request_id`, when there is one. */
  readonly requestId?: string;
  /** Seconds to wait before retrying, when known (from `Retry-After`). */
  readonly retryAfterSeconds?: number;
  /** The HTTP status Model Studio answered with, when the failure came from an answer. */
  readonly upstreamStatus?: number;

  constructor(init: DashScopeErrorInit) {
    super(
      redactSecrets(init.message, init.secrets),
      init.cause === undefined ? undefined : { cause: init.cause },
    );
    this.code = init.code;
    this.status = init.status;
    this.retryable = init.retryable;
    if (init.requestId !== undefined) this.requestId = init.requestId;
    if (init.retryAfterSeconds !== undefined) this.retryAfterSeconds = init.retryAfterSeconds;
    if (init.upstreamStatus !== undefined) this.upstreamStatus = init.upstreamStatus;
  }

  /** Model Studio's error shape: `{code, message, request_id}`. */
  toJSON(): DashScopeErrorBody {
    const body: DashScopeErrorBody = { code: this.code, message: this.message };
    if (this.requestId !== undefined) body.request_id = this.requestId;
    return body;
  }
}

/** Whether `value` is a {@link DashScopeError} (also across duplicated package copies). */
export function isDashScopeError(value: unknown): value is DashScopeError {
  return (
    value instanceof DashScopeError ||
    (value instanceof Error &&
      value.name === 'DashScopeError' &&
      typeof (value as { code?: unknown }).code === 'string')
  );
}

const KEY_LIKE = /\b(sk|st)-[A-Za-z0-9_-]{8,}/g;
const BEARER = /(Bearer\s+)[^\s"',;]+/gi;
/** Shortest fragment of a secret that is treated as a leak. */
const MIN_FRAGMENT = 8;

/**
 * Removes secrets from `text`: anything shaped like a Model Studio key
 * (`sk-…`, `st-…`), any `Bearer …` credential, each of `secrets`, and every
 * fragment of 8 or more characters of them.
 */
export function redactSecrets(text: string, secrets: readonly string[] = []): string {
  let out = text.replace(BEARER, '$1[redacted]').replace(KEY_LIKE, '$1-[redacted]');
  for (const secret of secrets) {
    if (!secret || secret.length < MIN_FRAGMENT) continue;
    if (out.includes(secret)) out = out.split(secret).join('[redacted]');
    // Any fragment of 8+ characters counts as a leak; slide a window over the secret.
    for (let i = 0; i + MIN_FRAGMENT <= secret.length; i++) {
      const fragment = secret.slice(i, i + MIN_FRAGMENT);
      if (out.includes(fragment)) out = out.split(fragment).join('[redacted]');
    }
  }
  return out;
}
