import type { IncomingMessage } from 'node:http';
import { DashScopeError } from '../errors.js';
import type { WebSocketOptions } from './types.js';

/** Default `websocket.maxMessageBytes`. */
export const DEFAULT_WS_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
/** Default `websocket.maxSessions`. */
export const DEFAULT_WS_MAX_SESSIONS = 1000;
/** Default `websocket.handshakeTimeoutMs`. */
export const DEFAULT_WS_HANDSHAKE_TIMEOUT_MS = 10_000;
/** Default `websocket.pingIntervalMs`. */
export const DEFAULT_WS_PING_INTERVAL_MS = 30_000;
/** Default `websocket.maxBufferedBytes`. */
export const DEFAULT_WS_MAX_BUFFERED_BYTES = 1024 * 1024;

/** The WebSocket options, validated and precomputed once per handler. */
export interface WebSocketConfig<Ctx> {
  /** `ws://` or `wss://` origin plus base path (no trailing `/`) of the upstream WebSocket API. */
  upstreamBase: string;
  allowedOrigins:
    | ((origin: string, req: IncomingMessage) => boolean)
    | ReadonlySet<string>
    | undefined;
  maxSessionSeconds: number;
  maxMessageBytes: number;
  maxSessions: number;
  handshakeTimeoutMs: number;
  minValiditySeconds: number;
  pingIntervalMs: number;
  maxBufferedBytes: number;
  context: ((req: IncomingMessage) => Ctx | Promise<Ctx>) | undefined;
}

function invalid(message: string): DashScopeError {
  return new DashScopeError({ code: 'InvalidParameter', status: 400, retryable: false, message });
}

function integer(value: number | undefined, fallback: number, name: string, min: number): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw invalid(`Invalid websocket.${name} ${String(v)}: expected an integer >= ${min}.`);
  }
  return v;
}

/** `ws(s)://host[:port]/path` (no trailing slash) for an `http(s)`/`ws(s)` base URL. */
function upstreamBaseOf(baseUrl: string): string {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw invalid('Invalid websocket.baseUrl: expected an absolute ws(s):// or http(s):// URL.');
  }
  const scheme =
    url.protocol === 'https:' || url.protocol === 'wss:'
      ? 'wss:'
      : url.protocol === 'http:' || url.protocol === 'ws:'
        ? 'ws:'
        : undefined;
  if (scheme === undefined || url.username || url.password || url.search || url.hash) {
    throw invalid(
      'Invalid websocket.baseUrl: expected a ws(s):// or http(s):// URL without credentials, query or fragment.',
    );
  }
  let path = url.pathname.replace(/\/+$/, '');
  // `…/api-ws/v1` (SDK style) is where the API paths are appended.
  if (path.endsWith('/api-ws/v1')) path = path.slice(0, -'/api-ws/v1'.length);
  return `${scheme}//${url.host}${path}`;
}

/**
 * Resolves the `websocket` option; `undefined` when WebSockets are disabled (`false`).
 * @param origin the handler's HTTP origin (`https://host`), used when `baseUrl` is not set
 * @param basePath the handler's base path (usually `''`)
 * @throws DashScopeError `InvalidParameter` for invalid options (at creation).
 */
export function resolveWebSocketConfig<Ctx>(
  options: false | WebSocketOptions<Ctx> | undefined,
  origin: string,
  basePath: string,
  proxyMinValiditySeconds: number,
  /** TTL of the keys the handler's own provider mints; `undefined` with a shared provider. */
  expireInSeconds: number | undefined,
): WebSocketConfig<Ctx> | undefined {
  if (options === false) return undefined;
  const o = options ?? {};
  let allowedOrigins: WebSocketConfig<Ctx>['allowedOrigins'];
  if (typeof o.allowedOrigins === 'function') allowedOrigins = o.allowedOrigins;
  else if (o.allowedOrigins !== undefined) {
    if (!Array.isArray(o.allowedOrigins) || o.allowedOrigins.some((x) => typeof x !== 'string')) {
      throw invalid(
        'Invalid websocket.allowedOrigins: expected an array of origins or a function.',
      );
    }
    allowedOrigins = new Set(
      o.allowedOrigins.map((x) => x.trim().replace(/\/+$/, '').toLowerCase()),
    );
  }
  if (o.context !== undefined && typeof o.context !== 'function') {
    throw invalid('Invalid websocket.context: expected a function.');
  }
  const maxBufferedBytes = integer(
    o.maxBufferedBytes,
    DEFAULT_WS_MAX_BUFFERED_BYTES,
    'maxBufferedBytes',
    1,
  );
  const minValiditySeconds = integer(
    o.minValiditySeconds,
    // The proxy's default is already below the TTL; an explicit one is checked.
    proxyMinValiditySeconds,
    'minValiditySeconds',
    0,
  );
  if (expireInSeconds !== undefined && minValiditySeconds >= expireInSeconds) {
    throw invalid(
      `websocket.minValiditySeconds ${minValiditySeconds} is not below expireInSeconds ${expireInSeconds}: no key could have that much life left.`,
    );
  }
  return {
    upstreamBase: upstreamBaseOf(o.baseUrl ?? `${origin}${basePath}`),
    allowedOrigins,
    maxSessionSeconds: integer(o.maxSessionSeconds, 0, 'maxSessionSeconds', 0),
    maxMessageBytes: integer(o.maxMessageBytes, DEFAULT_WS_MAX_MESSAGE_BYTES, 'maxMessageBytes', 1),
    maxSessions: integer(o.maxSessions, DEFAULT_WS_MAX_SESSIONS, 'maxSessions', 1),
    handshakeTimeoutMs: integer(
      o.handshakeTimeoutMs,
      DEFAULT_WS_HANDSHAKE_TIMEOUT_MS,
      'handshakeTimeoutMs',
      1,
    ),
    minValiditySeconds,
    pingIntervalMs: integer(o.pingIntervalMs, DEFAULT_WS_PING_INTERVAL_MS, 'pingIntervalMs', 0),
    maxBufferedBytes,
    context: o.context,
  };
}
