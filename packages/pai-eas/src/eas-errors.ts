/**
 * EAS OpenAPI failures as `DashScopeError`s: the gateway's `{RequestId, Code, Message}` keeps
 * its code and request id and gets a status to answer with and a `retryable` flag.
 *
 * | answer                                                                        | status | retryable |
 * | ----------------------------------------------------------------------------- | ------ | --------- |
 * | `SignatureDoesNotMatch`, `IncompleteSignature`, `InvalidAccessKeyId.*`, `InvalidSecurityToken.*` | 502 | no |
 * | `InvalidTimeStamp.*` (clock skew; retried with the gateway's clock)           | 502    | yes       |
 * | `SignatureNonceUsed` (retried with a new nonce)                               | 502    | yes       |
 * | `Throttling*` (any status), an `x-acs-retry-after` header, or 429             | 429    | yes       |
 * | `Forbidden*`, 403                                                             | 403    | no        |
 * | 404 (`InvalidApi.NotFound`, an unknown service or instance)                   | 404    | no        |
 * | other 4xx                                                                     | 400    | no        |
 * | 5xx                                                                           | 502 (503 kept) | yes |
 * | answer not JSON, or its `Code` not an identifier                              | `BadGateway` 502 | yes for 5xx |
 * | 2xx without the expected fields                                               | `BadGateway` 502 | no |
 */
import { DashScopeError } from '@dashscope-token/core/neutral';

/** The error body the Alibaba Cloud OpenAPI gateway answers with. */
export interface EasErrorBody {
  RequestId?: string;
  Code?: string;
  Message?: string;
}

/** Codes and request ids are dotted identifiers; anything else in their place is not trusted. */
function identifier(value: unknown): string | undefined {
  return typeof value === 'string' && /^[A-Za-z0-9._-]{1,128}$/.test(value) ? value : undefined;
}

const CREDENTIAL_CODES =
  /^(SignatureDoesNotMatch|IncompleteSignature|InvalidAccessKeyId|InvalidSecurityToken)/;

function statusFor(
  code: string,
  httpStatus: number,
  throttled: boolean,
): { status: number; retryable: boolean } {
  if (throttled || /^Throttling/.test(code) || httpStatus === 429) {
    return { status: 429, retryable: true };
  }
  if (/^InvalidTimeStamp/.test(code) || code === 'SignatureNonceUsed') {
    return { status: 502, retryable: true };
  }
  if (CREDENTIAL_CODES.test(code)) return { status: 502, retryable: false };
  if (/^Forbidden/.test(code) || httpStatus === 403) return { status: 403, retryable: false };
  if (httpStatus === 404) return { status: 404, retryable: false };
  if (httpStatus >= 500) return { status: httpStatus === 503 ? 503 : 502, retryable: true };
  return { status: httpStatus >= 400 ? 400 : 502, retryable: false };
}

/** Seconds to wait from `Retry-After` (seconds) or `x-acs-retry-after` (milliseconds). */
export function retryAfterSeconds(headers: Headers): number | undefined {
  const acs = Number.parseInt(headers.get('x-acs-retry-after') ?? '', 10);
  if (Number.isFinite(acs) && acs > 0) return acs / 1000;
  const retryAfter = Number(headers.get('retry-after') ?? Number.NaN);
  return Number.isFinite(retryAfter) && retryAfter >= 0 ? retryAfter : undefined;
}

/**
 * The error for a non-2xx EAS answer. `secrets` (the AccessKey secret, the security token,
 * the signature) are redacted from the message.
 */
export function easError(
  action: string,
  httpStatus: number,
  headers: Headers,
  text: string,
  secrets: readonly string[],
): DashScopeError {
  let body: EasErrorBody | undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === 'object' && parsed !== null) body = parsed as EasErrorBody;
  } catch {
    body = undefined;
  }
  const requestId = identifier(body?.RequestId) ?? identifier(headers.get('x-acs-request-id'));
  const code = identifier(body?.Code);
  const retryAfter = retryAfterSeconds(headers);
  if (code === undefined || body === undefined) {
    return new DashScopeError({
      code: 'BadGateway',
      status: 502,
      retryable: httpStatus >= 500 || httpStatus === 429,
      message: `PAI-EAS ${action} answered HTTP ${httpStatus} without a valid error code.`,
      upstreamStatus: httpStatus,
      ...(requestId === undefined ? {} : { requestId }),
      ...(retryAfter === undefined ? {} : { retryAfterSeconds: retryAfter }),
    });
  }
  // As the official SDK does: any error answer with `x-acs-retry-after` is throttling.
  const throttled = Number.parseInt(headers.get('x-acs-retry-after') ?? '', 10) > 0;
  const { status, retryable } = statusFor(code, httpStatus, throttled);
  const detail = typeof body.Message === 'string' ? `: ${body.Message.slice(0, 500)}` : '.';
  return new DashScopeError({
    code,
    status,
    retryable,
    message: `PAI-EAS ${action} failed with ${code} (HTTP ${httpStatus})${detail}`,
    upstreamStatus: httpStatus,
    secrets,
    ...(requestId === undefined ? {} : { requestId }),
    ...(retryAfter === undefined ? {} : { retryAfterSeconds: retryAfter }),
  });
}

/** A 2xx answer that lacks what the operation promises. */
export function malformedAnswer(action: string, what: string, requestId?: string): DashScopeError {
  return new DashScopeError({
    code: 'BadGateway',
    status: 502,
    retryable: false,
    message: `PAI-EAS ${action} answered without ${what}.`,
    ...(requestId === undefined ? {} : { requestId }),
  });
}
