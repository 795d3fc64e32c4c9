import type { ServerResponse } from 'node:http';
import type { CorsOptions } from './types.js';

/** Default `Access-Control-Max-Age` of preflight answers, in seconds. */
export const DEFAULT_CORS_MAX_AGE_SECONDS = 600;

/** Response headers a browser script may read on cross-origin answers. */
const EXPOSED_HEADERS = 'x-request-id, retry-after';

/** Longest `Access-Control-Request-Headers` list that is looked at. */
const MAX_REQUESTED_HEADERS = 64;

const HEADER_TOKEN = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;

/**
 * Request headers a preflight never allows, even when asked for: connection-level headers,
 * cookies, the client's identity. (Browsers refuse to set most of them anyway.)
 */
const NEVER_ALLOWED: ReadonlySet<string> = new Set([
  'cookie',
  'cookie2',
  'host',
  'connection',
  'keep-alive',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'content-length',
  'expect',
  'forwarded',
  'via',
  'x-real-ip',
  'origin',
  'referer',
]);

function isSafeRequestedHeader(name: string): boolean {
  return (
    HEADER_TOKEN.test(name) &&
    !NEVER_ALLOWED.has(name) &&
    !name.startsWith('proxy-') &&
    !name.startsWith('sec-') &&
    !name.startsWith('x-forwarded-')
  );
}

/** Appends `value` to the response's `Vary` header. */
function addVary(res: ServerResponse, value: string): void {
  const existing = res.getHeader('vary');
  if (existing === undefined || existing === '') res.setHeader('vary', value);
  else if (existing !== '*') res.setHeader('vary', `${String(existing)}, ${value}`);
}

/** The handler's CORS policy, compiled once from {@link CorsOptions}. */
export class CorsPolicy {
  private readonly allowed: ((origin: string) => boolean) | ReadonlySet<string>;
  private readonly credentials: boolean;
  private readonly maxAge: string;

  constructor(options: CorsOptions) {
    this.allowed =
      typeof options.origins === 'function'
        ? options.origins
        : new Set(options.origins.map((o) => o.trim().replace(/\/+$/, '').toLowerCase()));
    this.credentials = options.credentials === true;
    this.maxAge = String(options.maxAgeSeconds ?? DEFAULT_CORS_MAX_AGE_SECONDS);
  }

  /** Whether `origin` (the request's `Origin` header) is on the allow-list. */
  isAllowed(origin: string): boolean {
    if (typeof this.allowed === 'function') {
      try {
        return this.allowed(origin) === true;
      } catch {
        return false;
      }
    }
    return this.allowed.has(origin.toLowerCase());
  }

  /**
   * Adds the CORS headers of an actual (non-preflight) answer: `Vary: Origin` always, and
   * `Access-Control-Allow-Origin` (+ credentials, exposed headers) when `origin` is allowed.
   */
  applyToResponse(res: ServerResponse, origin: string | undefined): void {
    addVary(res, 'Origin');
    if (origin === undefined || !this.isAllowed(origin)) return;
    res.setHeader('access-control-allow-origin', origin);
    if (this.credentials) res.setHeader('access-control-allow-credentials', 'true');
    res.setHeader('access-control-expose-headers', EXPOSED_HEADERS);
  }

  /**
   * Answers a preflight: 204 with the allowed methods, the requested headers that are safe,
   * `Max-Age`, and credentials when configured; 403 without any CORS header when `origin` is not
   * allowed. Returns whether the origin was allowed (the caller answers the 403).
   */
  answerPreflight(
    res: ServerResponse,
    origin: string,
    methods: string,
    requestedHeaders: string | undefined,
  ): boolean {
    addVary(res, 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers');
    if (!this.isAllowed(origin)) return false;
    res.statusCode = 204;
    res.setHeader('access-control-allow-origin', origin);
    if (this.credentials) res.setHeader('access-control-allow-credentials', 'true');
    res.setHeader('access-control-allow-methods', methods);
    if (requestedHeaders) {
      const safe: string[] = [];
      const names = requestedHeaders.split(',', MAX_REQUESTED_HEADERS);
      for (const raw of names) {
        const name = raw.trim().toLowerCase();
        if (name !== '' && isSafeRequestedHeader(name) && !safe.includes(name)) safe.push(name);
      }
      if (safe.length > 0) res.setHeader('access-control-allow-headers', safe.join(', '));
    }
    res.setHeader('access-control-max-age', this.maxAge);
    res.setHeader('content-length', '0');
    res.end();
    return true;
  }
}
