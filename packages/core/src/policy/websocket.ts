/**
 * WebSocket admission, before anything is authorised, minted or connected: the route, the
 * client's opening handshake (RFC 6455 §4.2.1), the origin check against cross-site WebSocket
 * hijacking, capacity; then the upstream URL and handshake headers with the injected key.
 * Runtime-neutral; the executor owns the sockets.
 */
import { badTargetAnswer, type ErrorAnswer } from './answers.js';
import type { HandlerConfig } from './config.js';
import { CROSS_SITE_REFUSED, isForgedCrossSite } from './csrf.js';
import { hasDuplicateKey } from './duplicate-keys.js';
import { readClientHeaders } from './headers.js';
import { isSameOriginAsHost } from './origin.js';
import { modelRefused } from './proxy.js';
import type { RequestHeaders } from './request.js';
import { matchRoute } from './routes.js';

/** 403 for a handshake when there is no `authorize` and no `websocket.allowUnauthenticated`. */
const UNAUTHENTICATED_REFUSED: ErrorAnswer = Object.freeze({
  status: 403,
  code: 'WebSocketUnauthenticated',
  message:
    'WebSocket sessions need an authorize hook (or websocket.allowUnauthenticated: true on the server).',
});

/** `Sec-WebSocket-Key`: base64 of 16 bytes (RFC 6455 §4.1). */
const KEY = /^[+/0-9A-Za-z]{22}==$/;
/** A subprotocol name: an RFC 7230 token. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Most subprotocols a client may offer. */
const MAX_PROTOCOLS = 32;

/** The WebSocket paths proxied, after the prefix (the SDKs use a trailing slash too). */
const WEBSOCKET_PATHS: ReadonlySet<string> = new Set([
  '/api-ws/v1/inference',
  '/api-ws/v1/inference/',
  '/api-ws/v1/realtime',
  '/api-ws/v1/realtime/',
]);

function isRealtimePath(path: string): boolean {
  return path === '/api-ws/v1/realtime' || path === '/api-ws/v1/realtime/';
}

/** Query parameters that carry a credential (Alibaba's browser samples use `?api_key=`). */
const CREDENTIAL_PARAMS: ReadonlySet<string> = new Set([
  'api_key',
  'apikey',
  'api-key',
  'access_token',
]);

const NOT_FOUND: ErrorAnswer = Object.freeze({
  status: 404,
  code: 'NotFound',
  message: 'No such WebSocket route.',
});
const ORIGIN_REFUSED: ErrorAnswer = Object.freeze({
  status: 403,
  code: 'AccessDenied',
  message: 'WebSocket connections from this origin are not allowed.',
});
const TOO_MANY_SESSIONS: ErrorAnswer = Object.freeze({
  status: 503,
  code: 'TooManySessions',
  message: 'Too many WebSocket sessions; try again later.',
  retryAfterSeconds: 1,
});
/** 503 for upgrades while the handler closes. */
export const SERVER_CLOSING: ErrorAnswer = Object.freeze({
  status: 503,
  code: 'ServerClosing',
  message: 'The server is shutting down.',
});

function header(headers: RequestHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/**
 * Checks a client's opening handshake.
 * @returns its subprotocols in the client's order, or the answer to refuse it with
 */
function checkClientHandshake(
  method: string,
  headers: RequestHeaders,
): { protocols: string[] } | ErrorAnswer {
  if (method !== 'GET') {
    return {
      status: 405,
      code: 'MethodNotAllowed',
      message: 'WebSocket handshakes use GET.',
      headers: { allow: 'GET' },
    };
  }
  const upgrade = header(headers, 'upgrade');
  if (upgrade === undefined || upgrade.trim().toLowerCase() !== 'websocket') {
    return {
      status: 400,
      code: 'InvalidParameter',
      message: 'Only WebSocket upgrades are accepted here.',
    };
  }
  const key = header(headers, 'sec-websocket-key');
  if (key === undefined || !KEY.test(key)) {
    return {
      status: 400,
      code: 'InvalidParameter',
      message: 'Missing or invalid Sec-WebSocket-Key header.',
    };
  }
  if (header(headers, 'sec-websocket-version') !== '13') {
    return {
      status: 426,
      code: 'UpgradeRequired',
      message: 'Unsupported WebSocket version; use 13.',
      headers: { 'sec-websocket-version': '13' },
    };
  }
  const protocols: string[] = [];
  const offered = header(headers, 'sec-websocket-protocol');
  if (offered !== undefined) {
    for (const raw of offered.split(',')) {
      const name = raw.trim();
      if (!TOKEN.test(name) || protocols.includes(name) || protocols.length >= MAX_PROTOCOLS) {
        return {
          status: 400,
          code: 'InvalidParameter',
          message: 'Invalid Sec-WebSocket-Protocol header.',
        };
      }
      protocols.push(name);
    }
  }
  return { protocols };
}

/** The facts of an upgrade request admission needs. */
export interface UpgradeFacts<Req> {
  method: string;
  /** Path + query relative to the mount point. */
  url: string;
  headers: RequestHeaders;
  /** The handshake request, for an `allowedOrigins` predicate. */
  request: Req;
  /** Sessions open or being set up now. */
  sessions: number;
  /** The handler is closing. */
  closing: boolean;
}

/** What to do with an upgrade request. */
export type UpgradePlan =
  /** Not under the prefix: other `upgrade` listeners' business. */
  | { kind: 'outside' }
  /** Ours, refused with this HTTP answer. */
  | { kind: 'refuse'; answer: ErrorAnswer }
  /**
   * Admit (authorize, key), then connect to `upstreamUrl` offering `protocols`. `path` is the
   * WebSocket path after the prefix (`/api-ws/v1/inference`, …), `model` the URL's `model`
   * query parameter (the realtime API's model), if any.
   */
  | {
      kind: 'connect';
      upstreamUrl: string;
      protocols: string[];
      path: string;
      model: string | undefined;
    };

const OUTSIDE: UpgradePlan = Object.freeze({ kind: 'outside' });

function refuse(answer: ErrorAnswer): UpgradePlan {
  return { kind: 'refuse', answer };
}

/**
 * Decides on an upgrade request. WebSockets disabled → every upgrade is left alone.
 */
export function planUpgrade<Ctx, Req>(
  config: HandlerConfig<Ctx, Req>,
  facts: UpgradeFacts<Req>,
): UpgradePlan {
  const ws = config.websocket;
  if (ws === undefined) return OUTSIDE;
  const url = facts.url;
  const match = matchRoute(url, config.prefix);
  if (match.kind === 'outside') return OUTSIDE;
  if (facts.closing) return refuse(SERVER_CLOSING);
  if (match.kind === 'bad-target') return refuse(badTargetAnswer(match.reason));
  const q = url.indexOf('?');
  const path = (q < 0 ? url : url.slice(0, q)).slice(config.prefix.length);
  if (match.kind !== 'websocket' || !WEBSOCKET_PATHS.has(path)) return refuse(NOT_FOUND);
  if (config.authorize === undefined && !ws.allowUnauthenticated) {
    return refuse(UNAUTHENTICATED_REFUSED);
  }
  const handshake = checkClientHandshake(facts.method, facts.headers);
  if (!('protocols' in handshake)) return refuse(handshake);
  const origin = header(facts.headers, 'origin');
  // Browsers always send `Origin` on WebSocket handshakes; one without it that still carries
  // cookies and is marked cross-site is refused (see csrf.ts).
  if (origin !== undefined) {
    const allowed =
      ws.allowedOrigins === undefined
        ? isSameOriginAsHost(origin, header(facts.headers, 'host'))
        : ws.allowedOrigins(origin, facts.request);
    if (!allowed) return refuse(ORIGIN_REFUSED);
  } else if (isForgedCrossSite(facts.headers, undefined)) return refuse(CROSS_SITE_REFUSED);
  if (facts.sessions >= ws.maxSessions) return refuse(TOO_MANY_SESSIONS);
  const query = withoutCredentialParams(q < 0 ? '' : url.slice(q + 1));
  if (config.allowModels !== undefined) {
    const refused = refusedSessionModel(config.allowModels, path, query);
    if (refused !== undefined) return refuse(refused);
  }
  return {
    kind: 'connect',
    upstreamUrl: `${ws.upstreamBase}${path}${query === '' ? '' : `?${query}`}`,
    protocols: handshake.protocols,
    path,
    model: query === '' ? undefined : (new URLSearchParams(query).get('model') ?? undefined),
  };
}

/**
 * The query without credential parameters (`api_key`, `apikey`, `api-key`, `access_token`, in
 * any case, encoded or not); every other parameter is kept byte for byte, in order.
 */
export function withoutCredentialParams(query: string): string {
  if (query === '') return '';
  const kept: string[] = [];
  for (const part of query.split('&')) {
    const eq = part.indexOf('=');
    const rawName = eq < 0 ? part : part.slice(0, eq);
    let name: string;
    try {
      name = decodeURIComponent(rawName.replace(/\+/g, ' ')).toLowerCase();
    } catch {
      continue; // unreadable name: dropped rather than risk forwarding a credential
    }
    if (!CREDENTIAL_PARAMS.has(name.trim())) kept.push(part);
  }
  return kept.join('&');
}

/**
 * Headers of the upstream handshake: the client's headers filtered as for the HTTP proxy (no
 * `Authorization`, `Cookie`, hop-by-hop, `Host`, and no identity headers such as `Origin`
 * unless `forwardClientIdentity`), without the client's `Sec-WebSocket-*` (the upstream
 * handshake has its own), plus `Authorization: Bearer <token>`.
 */
export function upstreamHandshakeHeaders(
  rawHeaders: readonly string[],
  forwardClientIdentity: boolean,
  token: string,
  forwardHeaders?: ReadonlySet<string>,
): Record<string, string> {
  const flat = readClientHeaders(rawHeaders, forwardClientIdentity, forwardHeaders).headers;
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const name = flat[i]!.toLowerCase();
    if (name.startsWith('sec-websocket-')) continue;
    const value = flat[i + 1]!;
    out[name] = out[name] === undefined ? value : `${out[name]}, ${value}`;
  }
  out.authorization = `Bearer ${token}`;
  return out;
}

/**
 * `allowModels` on a session start: every `model` query parameter must be listed, and the
 * realtime API (whose model is chosen in the URL) must name one. (Parameter names that
 * percent-encode a letter, `mod%65l=`, never get here: `matchRoute` refuses them.)
 */
function refusedSessionModel(
  allow: ReadonlySet<string>,
  path: string,
  query: string,
): ErrorAnswer | undefined {
  const models = query === '' ? [] : new URLSearchParams(query).getAll('model');
  for (const model of models) if (!allow.has(model)) return modelRefused(model);
  if (models.length === 0 && isRealtimePath(path)) return modelRefused(undefined);
  return undefined;
}

/** The keys whose values `refusedMessageModel` reads (top level, and `model` one level in). */
const CHECKED_MESSAGE_KEYS: ReadonlySet<string> = new Set([
  'model',
  'payload',
  'session',
  'response',
]);

/**
 * `allowModels` on a client's message (text; binary frames are audio): the model a speech
 * `run-task` (`payload.model`), a realtime `session.update` (`session.model`) or any message
 * (`model`, `response.model`) names must be listed, each key named once.
 * @returns why the message is refused, or `undefined` to forward it
 */
export function refusedMessageModel(allow: ReadonlySet<string>, text: string): string | undefined {
  // A JSON key can only spell `model` literally or with \u escapes: a message with neither
  // names no model, and large audio appends are not parsed.
  if (!text.includes('"model"') && !text.includes('\\u')) return undefined;
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch {
    return undefined; // not JSON: Model Studio refuses it, and it names no model
  }
  if (typeof message !== 'object' || message === null) return undefined;
  // `{"model":"ok","model":"x"}`: upstream might read the other one.
  if (hasDuplicateKey(text, CHECKED_MESSAGE_KEYS, 2)) return 'Model named more than once';
  const m = message as Record<string, unknown>;
  const named: unknown[] = [m.model];
  for (const key of ['payload', 'session', 'response']) {
    const inner = m[key];
    if (typeof inner === 'object' && inner !== null)
      named.push((inner as { model?: unknown }).model);
  }
  for (const model of named) {
    if (model === undefined) continue;
    if (typeof model !== 'string' || !allow.has(model)) return 'Model not allowed';
  }
  return undefined;
}
