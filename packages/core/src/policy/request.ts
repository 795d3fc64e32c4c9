/**
 * The first decision about every HTTP request, in every runtime: is it ours, which route, is
 * it a preflight, which CORS headers go on its answer, and which requests are answered at once
 * (refused targets, unknown routes, wrong methods). Plain facts in, a plan out.
 */
import {
  type Answer,
  badTargetAnswer,
  type ErrorAnswer,
  type ErrorDialect,
  errorAnswer,
  NOT_FOUND,
  newRequestId,
  noStoreAnswer,
} from './answers.js';
import type { HandlerConfig } from './config.js';
import { refusedPreflight } from './cors.js';
import { crossSiteRefusal } from './csrf.js';
import {
  serviceNotAllowed,
  WORKBENCH_METHOD_NOT_ALLOWED,
  WORKBENCH_ROUTE_ALLOW,
} from './pai-eas.js';
import { matchRoute } from './routes.js';

/** Request headers with lower-case names (node's `req.headers`, or a `Headers` copied). */
export type RequestHeaders = Readonly<Record<string, string | string[] | undefined>>;

/** The facts of a request the first decision needs. */
export interface RequestFacts {
  method: string;
  /** Path + query relative to the mount point, as received. */
  url: string;
  headers: RequestHeaders;
  /** The request line had no HTTP version (node parses it as HTTP/0.9). */
  http09?: boolean;
  /**
   * The executor cannot take WebSocket upgrades (the Fetch handler): an upgrade on a WebSocket
   * route is answered 501 instead of 426.
   */
  upgradeUnavailable?: boolean;
}

/** What to do with a request. `cors` is flat `[name, value, …]` for every answer to it. */
export type RequestPlan =
  /** Not under the prefix: the next middleware's business. */
  | { kind: 'outside' }
  /** Answer with `answer` (after the `cors` headers). */
  | { kind: 'answer'; answer: Answer; cors: readonly string[] }
  /** `POST {prefix}/token`: admit, then vend a key. */
  | { kind: 'token'; cors: readonly string[] }
  /** A proxied route; `target` is the upstream path + query. */
  | {
      kind: 'proxy';
      dialect: ErrorDialect;
      target: string;
      query: string;
      cors: readonly string[];
    }
  /** `POST {prefix}/pai-eas/workbench`: parse, authorize, then ask EAS for a Workbench URL. */
  | { kind: 'pai-eas-workbench'; cors: readonly string[] }
  /** `{prefix}/pai-eas/services/{service}/…` of an allow-listed service: proxied to it. */
  | {
      kind: 'pai-eas-service';
      service: string;
      target: string;
      query: string;
      cors: readonly string[];
    };

/** `Allow` of the token route. */
export const TOKEN_ROUTE_ALLOW = 'POST, OPTIONS';

/** Methods a preflight may ask for, per route. */
const TOKEN_PREFLIGHT_METHODS = 'POST';
const PROXY_PREFLIGHT_METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE';

const NO_HEADERS: readonly string[] = Object.freeze([]);
const OUTSIDE: RequestPlan = Object.freeze({ kind: 'outside' });

const WEBSOCKET_NOT_AVAILABLE: ErrorAnswer = Object.freeze({
  status: 426,
  code: 'UpgradeRequired',
  message: 'This route only takes WebSocket upgrades.',
  headers: { upgrade: 'websocket', connection: 'Upgrade' },
});

const WEBSOCKET_NOT_IMPLEMENTED: ErrorAnswer = Object.freeze({
  status: 501,
  code: 'NotImplemented',
  message:
    'WebSocket upgrades are not proxied by this handler; use the node:http handler (createDashScopeHandler) for the WebSocket APIs.',
});

const HTTP_09_REFUSED: ErrorAnswer = Object.freeze({
  status: 400,
  code: 'InvalidPath',
  message: 'Request target refused: HTTP/0.9 request line (no HTTP version).',
  headers: { connection: 'close' },
});

const TOKEN_METHOD_NOT_ALLOWED: ErrorAnswer = Object.freeze({
  status: 405,
  code: 'MethodNotAllowed',
  message: 'Use POST to get a temporary key.',
  headers: { allow: TOKEN_ROUTE_ALLOW },
});

/** 204 for `OPTIONS` (not a preflight) on a POST-only route. */
function optionsAnswer(allow: string): Answer {
  return Object.freeze({
    status: 204,
    headers: Object.freeze({ allow, 'content-length': '0' }) as Record<string, string>,
    body: '',
  });
}

const TOKEN_OPTIONS = optionsAnswer(TOKEN_ROUTE_ALLOW);
const WORKBENCH_OPTIONS = optionsAnswer(WORKBENCH_ROUTE_ALLOW);

function header(headers: RequestHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function answer(dialect: ErrorDialect, error: ErrorAnswer, cors: readonly string[]): RequestPlan {
  return { kind: 'answer', answer: errorAnswer(dialect, error), cors };
}

/** Decides what to do with a request (see {@link RequestPlan}). */
export function planRequest<Ctx>(config: HandlerConfig<Ctx>, facts: RequestFacts): RequestPlan {
  const match = matchRoute(facts.url, config.prefix);
  if (match.kind === 'outside') return OUTSIDE;
  const dialect: ErrorDialect = 'dialect' in match ? match.dialect : 'dashscope';
  if (facts.http09 === true) {
    // Node parses a request line without a version (`GET /path\n`, or a raw LF inside the
    // target) as HTTP/0.9 and still reads headers after it: a request another server in
    // the path may split differently. Nothing legitimate speaks HTTP/0.9.
    return answer(dialect, HTTP_09_REFUSED, NO_HEADERS);
  }
  const method = facts.method;
  const cors = config.cors;
  let corsHeaders = NO_HEADERS;
  if (cors !== undefined || method === 'OPTIONS') {
    const origin = header(facts.headers, 'origin');
    const routed =
      match.kind === 'proxy' ||
      (match.kind === 'token' && config.tokenRoute !== undefined) ||
      (config.paiEas !== undefined &&
        (match.kind === 'pai-eas-workbench' || match.kind === 'pai-eas-service'));
    if (
      routed &&
      method === 'OPTIONS' &&
      origin !== undefined &&
      facts.headers['access-control-request-method'] !== undefined
    ) {
      const methods =
        match.kind === 'token' || match.kind === 'pai-eas-workbench'
          ? TOKEN_PREFLIGHT_METHODS
          : PROXY_PREFLIGHT_METHODS;
      const requested = header(facts.headers, 'access-control-request-headers');
      return {
        kind: 'answer',
        answer:
          cors === undefined
            ? refusedPreflight(dialect)
            : cors.preflight(dialect, origin, methods, requested),
        cors: NO_HEADERS,
      };
    }
    if (cors !== undefined) corsHeaders = cors.answerHeaders(origin);
  }

  if (match.kind === 'proxy' || match.kind === 'token') {
    const forged = crossSiteRefusal(method, facts.headers, cors);
    if (forged !== undefined) return answer(dialect, forged, corsHeaders);
  }
  switch (match.kind) {
    case 'proxy':
      return {
        kind: 'proxy',
        dialect: match.dialect,
        target: match.target,
        query: match.query,
        cors: corsHeaders,
      };
    case 'token':
      if (config.tokenRoute === undefined) return answer('dashscope', NOT_FOUND, corsHeaders);
      if (method === 'POST') return { kind: 'token', cors: corsHeaders };
      if (method === 'OPTIONS') return { kind: 'answer', answer: TOKEN_OPTIONS, cors: corsHeaders };
      return answer('dashscope', TOKEN_METHOD_NOT_ALLOWED, corsHeaders);
    case 'pai-eas-workbench':
      if (config.paiEas === undefined) return answer('dashscope', NOT_FOUND, corsHeaders);
      if (method === 'POST') return { kind: 'pai-eas-workbench', cors: corsHeaders };
      if (method === 'OPTIONS') {
        return { kind: 'answer', answer: WORKBENCH_OPTIONS, cors: corsHeaders };
      }
      return answer('dashscope', WORKBENCH_METHOD_NOT_ALLOWED, corsHeaders);
    case 'pai-eas-service':
      if (config.paiEas === undefined) return answer('dashscope', NOT_FOUND, corsHeaders);
      if (!config.paiEas.services.has(match.service)) {
        return answer('dashscope', serviceNotAllowed(match.service), corsHeaders);
      }
      return {
        kind: 'pai-eas-service',
        service: match.service,
        target: match.target,
        query: match.query,
        cors: corsHeaders,
      };
    case 'bad-target':
      return answer(match.dialect, badTargetAnswer(match.reason), corsHeaders);
    case 'refused':
      return answer(
        match.dialect,
        { status: 403, code: 'AccessDenied', message: match.message },
        corsHeaders,
      );
    case 'websocket':
      if (
        facts.upgradeUnavailable === true &&
        String(header(facts.headers, 'upgrade')).toLowerCase() === 'websocket'
      ) {
        return answer('dashscope', WEBSOCKET_NOT_IMPLEMENTED, corsHeaders);
      }
      return answer('dashscope', WEBSOCKET_NOT_AVAILABLE, corsHeaders);
    default:
      return answer(dialect, NOT_FOUND, corsHeaders);
  }
}

/**
 * The answer of the token route for a vended key: `{"token", "expires_at"}` with
 * `Cache-Control: no-store`.
 */
export function tokenAnswer(token: { token: string; expiresAt: number }): Answer {
  const body = JSON.stringify({ token: token.token, expires_at: token.expiresAt });
  return noStoreAnswer(body, newRequestId());
}
