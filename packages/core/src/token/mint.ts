/**
 * Minting one temporary API key: `POST {base}/api/v1/tokens?expire_in_seconds=N`.
 */
import { DashScopeError } from '../errors.js';
import { resolveBaseUrl } from '../regions.js';
import { unrefTimer } from '../timer.js';
import type { HttpTransport } from '../transport/types.js';
import { USER_AGENT } from '../transport/user-agent.js';
import type { MintTokenOptions, TemporaryToken, TransportOptions } from '../types.js';
import {
  abortedError,
  badTokenAnswer,
  describeBody,
  errorFromAnswer,
  errorFromFailure,
  type FailureContext,
  parseDateHeader,
  timeoutError,
  withSecrets,
} from '../upstream-errors.js';

/** Default lifetime of a temporary key, seconds. */
export const DEFAULT_EXPIRE_IN_SECONDS = 60;
/** Longest lifetime Model Studio allows, seconds. */
export const MAX_EXPIRE_IN_SECONDS = 1800;
/**
 * Builds the transport a mint uses when none is injected, from the network options (the entry
 * point decides: undici in `@dashscope-token/core`, fetch in `@dashscope-token/core/neutral`).
 */
export type DefaultTransport = (options: TransportOptions) => HttpTransport;

/** Default milliseconds for one whole token request. */
export const DEFAULT_TIMEOUT_MS = 10_000;
/** Most bytes of an answer read; a longer answer is a `BadGateway`. */
export const MAX_ANSWER_BYTES = 64 * 1024;

/** Header-safe characters only: visible ASCII, no spaces or control characters. */
const HEADER_TOKEN = /^[\x21-\x7e]+$/;

/** A minted key with the timing needed to place its expiry on the local clock. */
export interface TimedToken {
  /** The temporary key, as returned by {@link mintToken}. */
  token: TemporaryToken;
  /** The server's `Date` header in ms (1 s resolution), when it sent one. */
  serverDate?: number;
  /** Local clock (ms) just before the request was sent. */
  requestStartedAt: number;
  /** Local clock (ms) once the whole answer was read. */
  responseReceivedAt: number;
}

/** Options of {@link mintTokenWithTiming}: those of {@link mintToken} plus the local clock. */
export interface MintWithTimingOptions extends MintTokenOptions {
  /**
   * Millisecond clock used for `requestStartedAt`/`responseReceivedAt`.
   * @default Date.now
   */
  now?: () => number;
}

/** Shortest fragment of the permanent key that counts as the key (as in `redactSecrets`). */
const KEY_FRAGMENT = 8;

/** Whether `token` is, or carries any 8-character fragment of, the permanent key `apiKey`. */
function echoesKey(token: string, apiKey: string): boolean {
  if (token.includes(apiKey)) return true;
  for (let i = 0; i + KEY_FRAGMENT <= apiKey.length; i++) {
    if (token.includes(apiKey.slice(i, i + KEY_FRAGMENT))) return true;
  }
  return false;
}

function invalidParameter(message: string): DashScopeError {
  return new DashScopeError({ code: 'InvalidParameter', status: 400, retryable: false, message });
}

/**
 * Checks a permanent API key: a non-empty string of header-safe characters.
 * @throws DashScopeError `MissingApiKey` (absent/empty) or `InvalidParameter` (bad characters)
 */
export function checkApiKey(apiKey: unknown): asserts apiKey is string {
  if (typeof apiKey !== 'string' || apiKey === '') {
    throw new DashScopeError({
      code: 'MissingApiKey',
      status: 500,
      retryable: false,
      message:
        'No Model Studio API key: pass `apiKey` or set the DASHSCOPE_API_KEY environment variable.',
    });
  }
  if (!HEADER_TOKEN.test(apiKey)) {
    throw invalidParameter(
      'The API key contains whitespace or characters not allowed in an HTTP header (check for a trailing newline).',
    );
  }
}

/**
 * Checks a token lifetime: an integer in 1..1800.
 * @throws DashScopeError `InvalidParameter`
 */
export function checkExpireInSeconds(value: unknown): number {
  if (value === undefined) return DEFAULT_EXPIRE_IN_SECONDS;
  if (
    typeof value !== 'number' ||
    !Number.isInteger(value) ||
    value < 1 ||
    value > MAX_EXPIRE_IN_SECONDS
  ) {
    throw invalidParameter(
      `Invalid expireInSeconds ${JSON.stringify(value) ?? String(value)}: expected an integer from 1 to ${MAX_EXPIRE_IN_SECONDS}.`,
    );
  }
  return value;
}

function checkMs(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw invalidParameter(
      `Invalid ${name} ${String(value)}: expected a positive number of milliseconds.`,
    );
  }
  return value;
}

/**
 * Mints one temporary key through `opts.transport`, else through `defaultTransport(opts)`, and
 * returns it with the timing of the request (see {@link TimedToken}). The public `mintToken` and
 * `mintTokenWithTiming` of each entry point are this with their runtime's default transport.
 *
 * Options are validated before any request. Every failure is a `DashScopeError` (see the
 * mapping table in the README); the API key never appears in one.
 *
 * A successful answer must carry a non-empty `token` of header-safe characters (the `st-`
 * prefix is not required) and a numeric `expires_at` later than the server's `Date`
 * (or the local clock when there is none).
 */
export async function mintWithTransport(
  options: MintWithTimingOptions,
  defaultTransport: DefaultTransport,
): Promise<TimedToken> {
  const opts: Partial<MintWithTimingOptions> = options ?? {};
  const apiKey = opts.apiKey;
  checkApiKey(apiKey);
  const expireInSeconds = checkExpireInSeconds(opts.expireInSeconds);
  const timeoutMs = checkMs(opts.timeoutMs, 'timeoutMs', DEFAULT_TIMEOUT_MS);
  const connectTimeoutMs = checkMs(opts.connectTimeoutMs, 'connectTimeoutMs', 5_000);
  const transport =
    opts.transport ??
    defaultTransport({
      connectTimeoutMs,
      ...(opts.dispatcher !== undefined && { dispatcher: opts.dispatcher }),
    });
  const baseUrl = withSecrets(() => resolveBaseUrl(opts), [apiKey]);
  const now = opts.now ?? Date.now;
  const secrets = [apiKey];
  const context: FailureContext = {
    action: `requesting a temporary key from ${baseUrl}`,
    secrets,
  };
  const signal = opts.signal;
  if (signal?.aborted) throw abortedError(context);

  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, timeoutMs);
  unrefTimer(timer);
  const onAbort = (): void => controller.abort();
  signal?.addEventListener('abort', onAbort, { once: true });

  const requestStartedAt = now();
  let status: number;
  let readHeader: (name: string) => string | undefined;
  let body: string | undefined;
  try {
    const answer = await transport.request({
      url: `${baseUrl}/api/v1/tokens?expire_in_seconds=${expireInSeconds}`,
      method: 'POST',
      headers: {
        authorization: `Bearer ${apiKey}`,
        accept: 'application/json',
        'user-agent': USER_AGENT,
      },
      signal: controller.signal,
      timeoutMs,
    });
    status = answer.status;
    readHeader = (name) => answer.header(name);
    body = await answer.text(MAX_ANSWER_BYTES);
  } catch (error) {
    if (timedOut) throw timeoutError(context, timeoutMs, error);
    if (signal?.aborted) throw abortedError(context);
    throw errorFromFailure(error, context);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
  const responseReceivedAt = now();
  const serverDate = parseDateHeader(readHeader);
  const requestId = readHeader('x-request-id');

  if (body === undefined) {
    throw badTokenAnswer(
      `an answer larger than ${MAX_ANSWER_BYTES} bytes`,
      status,
      true,
      secrets,
      requestId,
    );
  }
  if (status < 200 || status > 299) throw errorFromAnswer(status, readHeader, body, secrets);

  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw badTokenAnswer(describeBody(body), status, true, secrets, requestId);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw badTokenAnswer('JSON that is not an object', status, false, secrets, requestId);
  }
  const fields = parsed as Record<string, unknown>;
  const answerRequestId = typeof fields.request_id === 'string' ? fields.request_id : requestId;
  const token = fields.token;
  if (typeof token !== 'string' || token === '') {
    throw badTokenAnswer('no `token` string', status, false, secrets, answerRequestId);
  }
  if (token.length > 4096 || !HEADER_TOKEN.test(token)) {
    throw badTokenAnswer(
      'a `token` that cannot be used in an HTTP header',
      status,
      false,
      secrets,
      answerRequestId,
    );
  }
  if (echoesKey(token, apiKey)) {
    // An echo of the request (a misrouted base URL, a gateway that reflects headers), never a
    // temporary key: handing it on would give the permanent key to whoever asked for a token.
    throw badTokenAnswer(
      'a `token` that contains the permanent API key',
      status,
      false,
      secrets,
      answerRequestId,
    );
  }
  const expiresAt = fields.expires_at;
  if (typeof expiresAt !== 'number' || !Number.isFinite(expiresAt) || expiresAt <= 0) {
    throw badTokenAnswer('no numeric `expires_at`', status, false, secrets, answerRequestId);
  }
  const reference = serverDate ?? responseReceivedAt;
  if (expiresAt * 1000 <= reference) {
    throw badTokenAnswer(
      `an \`expires_at\` (${expiresAt}) that is already past (${serverDate === undefined ? 'local clock' : "server's Date header"}: ${Math.floor(reference / 1000)})`,
      status,
      false,
      secrets,
      answerRequestId,
    );
  }
  const result: TimedToken = {
    token: { token, expiresAt },
    requestStartedAt,
    responseReceivedAt,
  };
  if (serverDate !== undefined) result.serverDate = serverDate;
  return result;
}
