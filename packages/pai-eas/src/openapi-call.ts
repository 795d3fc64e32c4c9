/**
 * One EAS OpenAPI operation over `fetch`: resolve credentials, sign (V3), send, bound by a
 * timeout, normalise failures, and retry the retryable ones, each attempt signed anew with a
 * new date and nonce (and the gateway's clock after `InvalidTimeStamp.*`).
 */
import {
  DashScopeError,
  isDashScopeError,
  resolveRetryOptions,
  retrying,
} from '@dashscope-token/core/neutral';
import type { ResolvedClientOptions } from './client-options.js';
import { resolveCredentials } from './credentials.js';
import { easError } from './eas-errors.js';
import { encodePathSegment } from './percent-encode.js';
import { signRequest } from './sign.js';

/** EAS OpenAPI version. */
export const EAS_API_VERSION = '2021-07-01';

/** Largest answer read (EAS answers are small JSON documents). */
const MAX_ANSWER_BYTES = 1024 * 1024;

/** An operation to call. */
export interface OpenApiOperation {
  action: string;
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Path segments, unencoded; each is percent-encoded as the official SDK does. */
  segments: readonly string[];
  query?: Readonly<Record<string, string | undefined>>;
}

/** A successful answer: the parsed JSON object and its request id. */
export interface OpenApiAnswer {
  body: Record<string, unknown>;
  requestId: string | undefined;
}

/** A value from an answer, safe for a log line (no spaces, newlines or control characters). */
function loggable(value: string | undefined): string {
  return value ? value.replace(/[^\w.:-]/g, '?').slice(0, 80) : '-';
}

function signatureOf(authorization: string | undefined): string | undefined {
  return authorization ? /Signature=([0-9a-f]+)/.exec(authorization)?.[1] : undefined;
}

async function readCapped(res: Response): Promise<string> {
  const declared = Number(res.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > MAX_ANSWER_BYTES) {
    await res.body?.cancel();
    throw new DashScopeError({
      code: 'BadGateway',
      status: 502,
      retryable: false,
      message: 'PAI-EAS answered with a body larger than 1 MiB.',
    });
  }
  const text = await res.text();
  if (text.length > MAX_ANSWER_BYTES) {
    throw new DashScopeError({
      code: 'BadGateway',
      status: 502,
      retryable: false,
      message: 'PAI-EAS answered with a body larger than 1 MiB.',
    });
  }
  return text;
}

function transportError(
  action: string,
  error: unknown,
  timedOut: boolean,
  callerAborted: boolean,
): DashScopeError {
  if (isDashScopeError(error)) return error;
  if (callerAborted) {
    return new DashScopeError({
      code: 'Aborted',
      status: 499,
      retryable: false,
      message: `PAI-EAS ${action} was aborted.`,
    });
  }
  if (timedOut) {
    return new DashScopeError({
      code: 'Timeout',
      status: 504,
      retryable: true,
      message: `PAI-EAS ${action} timed out.`,
    });
  }
  const cause = (error as { cause?: { code?: unknown } } | undefined)?.cause;
  const code = typeof cause?.code === 'string' ? ` (${cause.code})` : '';
  return new DashScopeError({
    code: 'NetworkError',
    status: 502,
    retryable: true,
    message: `PAI-EAS ${action} could not be reached${code}.`,
  });
}

/** Re-creates a retry-loop `Aborted` error as this package's `DashScopeError`. */
function ownError(error: unknown): unknown {
  if (error instanceof DashScopeError || !isDashScopeError(error)) return error;
  const foreign = error as DashScopeError;
  return new DashScopeError({
    code: foreign.code,
    status: foreign.status,
    retryable: foreign.retryable,
    message: foreign.message,
  });
}

/**
 * Calls `operation` and resolves with its JSON answer.
 * @throws DashScopeError for every failure (see `eas-errors.ts` for the mapping)
 */
export async function callOpenApi(
  options: ResolvedClientOptions,
  operation: OpenApiOperation,
  signal?: AbortSignal,
): Promise<OpenApiAnswer> {
  const base = options.endpoint.pathname.replace(/\/+$/, '');
  const path = `${base}/${operation.segments.map(encodePathSegment).join('/')}`;
  let skewMs = 0;

  const attempt = async (n: number): Promise<OpenApiAnswer> => {
    const credentials = await resolveCredentials(options.credentials);
    const signed = await signRequest(
      {
        method: operation.method,
        host: options.endpoint.host,
        path,
        query: operation.query ?? {},
        action: operation.action,
        version: EAS_API_VERSION,
        headers: { accept: 'application/json' },
      },
      credentials,
      { date: new Date(Date.now() + skewMs) },
    );
    const secrets = [
      credentials.accessKeySecret,
      credentials.securityToken ?? '',
      signatureOf(signed.headers.authorization) ?? '',
    ];
    const { host: _host, ...headers } = signed.headers;
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, options.timeoutMs);
    (timer as { unref?: () => void }).unref?.();
    const onAbort = (): void => controller.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const res = await options.fetch(new URL(signed.pathAndQuery, options.endpoint.origin), {
        method: operation.method,
        headers,
        signal: controller.signal,
        redirect: 'manual',
      });
      const text = await readCapped(res);
      const requestId = res.headers.get('x-acs-request-id') ?? undefined;
      if (!res.ok) {
        const error = easError(operation.action, res.status, res.headers, text, secrets);
        if (error.code.startsWith('InvalidTimeStamp')) {
          const serverDate = Date.parse(res.headers.get('date') ?? '');
          if (Number.isFinite(serverDate)) skewMs = serverDate - Date.now();
        }
        options.log?.(
          `pai-eas ${operation.action} ${res.status} ${loggable(error.code)} request_id=${loggable(error.requestId)} attempt=${n}`,
        );
        throw error;
      }
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
      if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        throw new DashScopeError({
          code: 'BadGateway',
          status: 502,
          retryable: false,
          message: `PAI-EAS ${operation.action} answered HTTP ${res.status} with a body that is not a JSON object.`,
          ...(requestId === undefined ? {} : { requestId }),
        });
      }
      const record = body as Record<string, unknown>;
      const id = typeof record.RequestId === 'string' ? record.RequestId : requestId;
      options.log?.(
        `pai-eas ${operation.action} ${res.status} request_id=${loggable(id)} attempt=${n}`,
      );
      return { body: record, requestId: id };
    } catch (error) {
      const normalised = transportError(
        operation.action,
        error,
        timedOut,
        signal?.aborted === true,
      );
      if (!isDashScopeError(error)) {
        options.log?.(`pai-eas ${operation.action} ${normalised.code} attempt=${n}`);
      }
      throw normalised;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  };

  try {
    const policy = resolveRetryOptions(options.retry);
    return await retrying(attempt, policy, signal ? { signal } : {});
  } catch (error) {
    throw ownError(error);
  }
}
