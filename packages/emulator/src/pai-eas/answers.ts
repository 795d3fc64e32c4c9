/** Answers in the Alibaba Cloud OpenAPI gateway's shape: `{RequestId, HostId, Code, Message, Recommend}`. */
import type { Exchange } from '../exchange.js';

/** An OpenAPI failure: HTTP status, code and message. */
export interface EasFailure {
  status: number;
  code: string;
  message: string;
}

/** The request id of `ex` as the gateway writes them (upper-case UUID). */
export function easRequestId(ex: Exchange): string {
  return ex.id.toUpperCase();
}

/** Sends a JSON answer with `x-acs-request-id`. */
export function sendEasJson(
  ex: Exchange,
  status: number,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
): void {
  ex.sendJson(
    status,
    { RequestId: easRequestId(ex), ...body },
    {
      'x-acs-request-id': easRequestId(ex),
      ...headers,
    },
  );
}

/** Sends an OpenAPI error. */
export function sendEasError(
  ex: Exchange,
  failure: EasFailure,
  headers: Record<string, string> = {},
): void {
  const host = ex.req.headers.host ?? 'pai-eas.emulator';
  sendEasJson(
    ex,
    failure.status,
    {
      HostId: host,
      Code: failure.code,
      Message: failure.message,
      Recommend: `https://api.aliyun.com/troubleshoot?q=${encodeURIComponent(failure.code)}`,
    },
    headers,
  );
}
