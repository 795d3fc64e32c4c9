/** CORS for browsers that call the emulator directly with a temporary key. */

/** Request headers a browser may send (answered on preflight). */
export const CORS_ALLOW_HEADERS =
  'Authorization, Content-Type, Accept, X-DashScope-SSE, X-DashScope-Async, X-DashScope-WorkSpace, X-DashScope-DataInspection, X-DashScope-OssResourceResolve, X-Request-Id';

/** Response headers a browser script may read. */
export const CORS_EXPOSE_HEADERS = 'x-request-id, Retry-After, Date';

/** Whether `origin` may call under the `cors` setting. */
export function originAllowed(
  origin: string | undefined,
  cors: boolean | readonly string[],
): boolean {
  if (!origin || cors === false) return false;
  if (cors === true) return true;
  return cors.includes(origin);
}

/** Headers added to every answer to a request from an allowed origin. */
export function corsHeaders(
  origin: string | undefined,
  cors: boolean | readonly string[],
): Record<string, string> {
  if (!origin || !originAllowed(origin, cors)) return {};
  return {
    'Access-Control-Allow-Origin': origin,
    'Access-Control-Expose-Headers': CORS_EXPOSE_HEADERS,
    Vary: 'Origin',
  };
}

/** Extra headers of a preflight answer for an allowed origin. */
export function preflightHeaders(methods: readonly string[]): Record<string, string> {
  return {
    'Access-Control-Allow-Methods': [...methods, 'OPTIONS'].join(', '),
    'Access-Control-Allow-Headers': CORS_ALLOW_HEADERS,
    'Access-Control-Max-Age': '600',
  };
}
