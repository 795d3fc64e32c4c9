/**
 * Error bodies in the two dialects Model Studio speaks: native
 * `{"code","message","request_id"}` and OpenAI-compatible
 * `{"error":{"message","type","param","code"},"request_id"}` (on `/compatible-mode/…`).
 */

/** Which error shape a path answers with. */
export type Dialect = 'native' | 'compatible';

/** The dialect of a request path: `compatible` under `/compatible-mode/`, else `native`. */
export function dialectOf(pathname: string): Dialect {
  return pathname.startsWith('/compatible-mode/') ? 'compatible' : 'native';
}

/** The errors the emulator produces by itself. */
export type ErrorKind =
  | 'invalid-api-key'
  | 'invalid-parameter'
  | 'model-not-found'
  | 'access-denied'
  | 'not-found'
  | 'method-not-allowed'
  | 'too-large'
  | 'throttle'
  | 'system-error';

interface ErrorSpec {
  status: number;
  code: string;
  message: string;
  compatType: string;
  compatCode: string;
  compatMessage: string;
}

const ERRORS: Record<ErrorKind, ErrorSpec> = {
  'invalid-api-key': {
    status: 401,
    code: 'InvalidApiKey',
    message: 'Invalid API-key provided.',
    compatType: 'invalid_request_error',
    compatCode: 'invalid_api_key',
    compatMessage: 'Incorrect API key provided.',
  },
  'invalid-parameter': {
    status: 400,
    code: 'InvalidParameter',
    message: 'Invalid parameter.',
    compatType: 'invalid_request_error',
    compatCode: 'invalid_parameter_error',
    compatMessage: 'Invalid parameter.',
  },
  // Error messages page and issue #14: compatible mode answers 404 `model_not_found`,
  // native 400 `InvalidParameter` "Model not exist." (the message is set per model by callers).
  'model-not-found': {
    status: 400,
    code: 'InvalidParameter',
    message: 'Model not exist.',
    compatType: 'invalid_request_error',
    compatCode: 'model_not_found',
    compatMessage: 'The model does not exist or you do not have access to it.',
  },
  // Error messages page: 403 AccessDenied ("current user api does not support asynchronous calls").
  'access-denied': {
    status: 403,
    code: 'AccessDenied',
    message: 'Access denied.',
    compatType: 'invalid_request_error',
    compatCode: 'access_denied',
    compatMessage: 'Access denied.',
  },
  'not-found': {
    status: 404,
    code: 'NotFound',
    message: 'The requested path does not exist.',
    compatType: 'invalid_request_error',
    compatCode: 'not_found',
    compatMessage: 'The requested path does not exist.',
  },
  'method-not-allowed': {
    status: 405,
    code: 'MethodNotAllowed',
    message: 'The HTTP method is not allowed on this path.',
    compatType: 'invalid_request_error',
    compatCode: 'method_not_allowed',
    compatMessage: 'The HTTP method is not allowed on this path.',
  },
  'too-large': {
    status: 413,
    code: 'RequestTooLarge',
    message: 'The request body is too large.',
    compatType: 'invalid_request_error',
    compatCode: 'request_too_large',
    compatMessage: 'The request body is too large.',
  },
  throttle: {
    status: 429,
    code: 'Throttling.RateQuota',
    message: 'Requests rate limit exceeded, please try again later.',
    compatType: 'limit_requests',
    compatCode: 'limit_requests',
    compatMessage: 'Requests rate limit exceeded, please try again later.',
  },
  'system-error': {
    status: 500,
    code: 'SystemError',
    message: 'An internal error has occurred, please try again later or contact service support.',
    compatType: 'internal_error',
    compatCode: 'internal_error',
    compatMessage:
      'An internal error has occurred, please try again later or contact service support.',
  },
};

/** Status and body of a known error kind in `dialect`; `message` overrides the default text. */
export function errorFor(
  kind: ErrorKind,
  dialect: Dialect,
  requestId: string,
  message?: string,
): { status: number; body: Record<string, unknown> } {
  const spec = ERRORS[kind];
  return {
    // Compatible mode answers an unknown model with 404 (native: 400).
    status: kind === 'model-not-found' && dialect === 'compatible' ? 404 : spec.status,
    body:
      dialect === 'native'
        ? nativeError(spec.code, message ?? spec.message, requestId)
        : compatibleError(
            spec.compatType,
            spec.compatCode,
            message ?? spec.compatMessage,
            requestId,
          ),
  };
}

/** `{"code","message","request_id"}`. */
export function nativeError(
  code: string,
  message: string,
  requestId: string,
): Record<string, unknown> {
  return { code, message, request_id: requestId };
}

/** `{"error":{"message","type","param":null,"code"},"request_id"}`. */
export function compatibleError(
  type: string,
  code: string,
  message: string,
  requestId: string,
): Record<string, unknown> {
  return { error: { message, type, param: null, code }, request_id: requestId };
}

/** An error body for an arbitrary status/code (used by `stream-error` faults). */
export function customError(
  dialect: Dialect,
  status: number,
  code: string,
  message: string,
  requestId: string,
): Record<string, unknown> {
  if (dialect === 'native') return nativeError(code, message, requestId);
  const type =
    status === 429 ? 'limit_requests' : status >= 500 ? 'internal_error' : 'invalid_request_error';
  return compatibleError(type, code, message, requestId);
}

/** The page a gateway answers with when the service behind it is down. */
export const HTML_502 =
  '<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>emulated gateway</center>\r\n</body>\r\n</html>\r\n';
