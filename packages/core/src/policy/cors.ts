/**
 * CORS of the token route and the proxy routes: the headers of an actual answer and the answer
 * to a preflight, decided from the request's `Origin` and `Access-Control-Request-*` headers.
 * The executor writes them.
 */
import { type Answer, type ErrorAnswer, type ErrorDialect, errorAnswer } from './answers.js';
import { HOP_BY_HOP } from './headers.js';
import type { CorsOptions } from './options.js';
import { compileOrigins, type OriginCheck } from './origin.js';

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
  ...HOP_BY_HOP,
  'cookie',
  'cookie2',
  'host',
  'content-length',
  'expect',
  'forwarded',
  'via',
  'x-real-ip',
  'origin',
  'referer',
]);

const PREFLIGHT_VARY = 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers';

const CROSS_ORIGIN_REFUSED: ErrorAnswer = Object.freeze({
  status: 403,
  code: 'AccessDenied',
  message: 'Cross-origin requests from this origin are not allowed.',
});

function isSafeRequestedHeader(name: string): boolean {
  return (
    HEADER_TOKEN.test(name) &&
    !NEVER_ALLOWED.has(name) &&
    !name.startsWith('proxy-') &&
    !name.startsWith('sec-') &&
    !name.startsWith('x-forwarded-')
  );
}

/** The handler's CORS policy, compiled once from {@link CorsOptions}. */
export class CorsPolicy {
  private readonly allowed: OriginCheck;
  private readonly credentials: boolean;
  private readonly maxAge: string;

  constructor(options: CorsOptions, allowed: OriginCheck) {
    this.allowed = allowed;
    this.credentials = options.credentials === true;
    this.maxAge = String(options.maxAgeSeconds ?? DEFAULT_CORS_MAX_AGE_SECONDS);
  }

  /** Compiles `options`; `undefined` when its `origins` is neither a list nor a function. */
  static compile(options: CorsOptions): CorsPolicy | undefined {
    const allowed = compileOrigins(options.origins);
    return allowed === undefined ? undefined : new CorsPolicy(options, allowed);
  }

  /** Whether `origin` is one of the configured origins. */
  allows(origin: string): boolean {
    return this.allowed(origin);
  }

  /**
   * The CORS headers of an actual (non-preflight) answer, flat `[name, value, …]`:
   * `Vary: Origin` always (merged with any `Vary`), and `Access-Control-Allow-Origin`
   * (+ credentials, exposed headers) when `origin` is allowed.
   */
  answerHeaders(origin: string | undefined): string[] {
    if (origin === undefined || !this.allowed(origin)) return ['vary', 'Origin'];
    const headers = ['vary', 'Origin', 'access-control-allow-origin', origin];
    if (this.credentials) headers.push('access-control-allow-credentials', 'true');
    headers.push('access-control-expose-headers', EXPOSED_HEADERS);
    return headers;
  }

  /**
   * The answer to a preflight: 204 with the allowed `methods`, the requested headers that are
   * safe, `Max-Age`, and credentials when configured; 403 without any CORS header when `origin`
   * is not allowed.
   */
  preflight(
    dialect: ErrorDialect,
    origin: string,
    methods: string,
    requestedHeaders: string | undefined,
  ): Answer {
    if (!this.allowed(origin)) return refusedPreflight(dialect);
    const headers: Record<string, string> = {
      vary: PREFLIGHT_VARY,
      'access-control-allow-origin': origin,
    };
    if (this.credentials) headers['access-control-allow-credentials'] = 'true';
    headers['access-control-allow-methods'] = methods;
    if (requestedHeaders) {
      const safe: string[] = [];
      for (const raw of requestedHeaders.split(',', MAX_REQUESTED_HEADERS)) {
        const name = raw.trim().toLowerCase();
        if (name !== '' && isSafeRequestedHeader(name) && !safe.includes(name)) safe.push(name);
      }
      if (safe.length > 0) headers['access-control-allow-headers'] = safe.join(', ');
    }
    headers['access-control-max-age'] = this.maxAge;
    headers['content-length'] = '0';
    return { status: 204, headers, body: '' };
  }
}

/** 403 to a preflight from an origin that is not allowed (or with CORS off). */
export function refusedPreflight(dialect: ErrorDialect): Answer {
  const answer = errorAnswer(dialect, CROSS_ORIGIN_REFUSED);
  answer.headers.vary = PREFLIGHT_VARY;
  return answer;
}
