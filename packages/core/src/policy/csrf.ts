/**
 * Cross-site request forgery. A browser attaches the visitor's cookies to requests another
 * site's page makes to the app (a form post, a `fetch` without preflight, a WebSocket
 * handshake); with a cookie-based `authorize`, those would run with the visitor's session.
 * Requests that change state (every method but GET, HEAD and OPTIONS) and WebSocket handshakes
 * that carry a `Cookie` are refused (403) when:
 *
 * - their `Origin` is neither the server's own (the `Host` it was reached at) nor a configured
 *   one (`cors.origins` for HTTP, `websocket.allowedOrigins` for handshakes; `Origin: null`
 *   is never allowed), or
 * - they have no `Origin` and the browser marks them cross-site (`Sec-Fetch-Site: cross-site`).
 *
 * Requests without cookies carry no ambient credentials and are not checked here; non-browser
 * clients send neither header.
 */
import type { ErrorAnswer } from './answers.js';
import { isSameOriginAsHost } from './origin.js';
import type { RequestHeaders } from './request.js';

/** Methods that do not change state (RFC 9110 §9.2.1 safe methods that browsers send). */
const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS']);

/** 403 for a cross-site request that carries cookies. */
export const CROSS_SITE_REFUSED: ErrorAnswer = Object.freeze({
  status: 403,
  code: 'AccessDenied',
  message: 'Cross-site requests that carry cookies are not allowed.',
});

/** The configured origins (a `CorsPolicy`, or the WebSocket allow-list). */
export interface ConfiguredOrigins {
  allows(origin: string): boolean;
}

function header(headers: RequestHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Whether a request with these headers, carrying cookies, comes from a page the app does not
 * trust: see the module comment. `configured` checks an `Origin` against the configured list.
 */
export function isForgedCrossSite(
  headers: RequestHeaders,
  configured: ConfiguredOrigins | undefined,
): boolean {
  if (headers.cookie === undefined) return false;
  const origin = header(headers, 'origin');
  if (origin === undefined) {
    return header(headers, 'sec-fetch-site')?.trim().toLowerCase() === 'cross-site';
  }
  if (isSameOriginAsHost(origin, header(headers, 'host'))) return false;
  return configured === undefined || !configured.allows(origin);
}

/**
 * The CSRF refusal of an HTTP request: 403 for a state-changing request that carries cookies
 * from an untrusted page, `undefined` otherwise.
 */
export function crossSiteRefusal(
  method: string,
  headers: RequestHeaders,
  configured: ConfiguredOrigins | undefined,
): ErrorAnswer | undefined {
  if (SAFE_METHODS.has(method)) return undefined;
  return isForgedCrossSite(headers, configured) ? CROSS_SITE_REFUSED : undefined;
}

/**
 * The content types a page on another site can post without a CORS preflight (an HTML form,
 * a `fetch` with a string body): Model Studio's endpoints take JSON, so a proxied body of one
 * of these types is refused (415), with or without cookies. `multipart/form-data` is still
 * accepted by file-upload endpoints (a path ending in `/files`).
 */
const SIMPLE_CONTENT_TYPES = ['text/plain', 'application/x-www-form-urlencoded'];
const MULTIPART = 'multipart/form-data';

function unsupportedMediaType(type: string): ErrorAnswer {
  return {
    status: 415,
    code: 'UnsupportedMediaType',
    message: `Content-Type ${type} is not accepted here; send JSON (application/json).`,
  };
}

/**
 * 415 for a proxied body whose `contentType` (lower-cased) is one a cross-site form can send,
 * `undefined` otherwise. `path` is the upstream path (no query).
 */
export function formContentRefusal(contentType: string, path: string): ErrorAnswer | undefined {
  const semicolon = contentType.indexOf(';');
  const type = (semicolon < 0 ? contentType : contentType.slice(0, semicolon)).trim();
  if (SIMPLE_CONTENT_TYPES.includes(type)) return unsupportedMediaType(type);
  if (type === MULTIPART && !path.endsWith('/files')) return unsupportedMediaType(type);
  return undefined;
}
