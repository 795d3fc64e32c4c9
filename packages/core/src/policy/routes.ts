import type { ErrorDialect } from './answers.js';
import { matchPaiEasRoute, PAI_EAS_PREFIX, type PaiEasRoute } from './pai-eas.js';
import { unsafePathReason, unsafeQueryReason } from './path-safety.js';

/** What a request target means to the handler. */
export type Route =
  /** Not under the prefix: the next middleware's business. */
  | { kind: 'outside' }
  /** `{prefix}/token`. */
  | { kind: 'token' }
  /** `{prefix}/api/v1/…` or `{prefix}/compatible-mode/v1/…`; `target` is the upstream path + query. */
  | { kind: 'proxy'; dialect: ErrorDialect; target: string; query: string }
  /** `{prefix}/api-ws/v1/…` reached as a plain HTTP request. */
  | { kind: 'websocket' }
  /** A proxied path the proxy refuses (403): minting through the proxy. */
  | { kind: 'refused'; dialect: ErrorDialect; message: string }
  /** Anything else under the prefix. */
  | { kind: 'not-found'; dialect: ErrorDialect }
  /** Unsafe target under the prefix: 400, forwarded nowhere. */
  | { kind: 'bad-target'; dialect: ErrorDialect; reason: string }
  /** `{prefix}/pai-eas/workbench` or `{prefix}/pai-eas/services/{service}/…`. */
  | PaiEasRoute;

const OUTSIDE: Route = Object.freeze({ kind: 'outside' });
const TOKEN: Route = Object.freeze({ kind: 'token' });
const WEBSOCKET: Route = Object.freeze({ kind: 'websocket' });

const NATIVE_PREFIX = '/api/v1/';
const COMPATIBLE_PREFIX = '/compatible-mode/';
const COMPATIBLE_V1_PREFIX = '/compatible-mode/v1/';
const WEBSOCKET_PREFIX = '/api-ws/v1/';

/**
 * Normalises a mount prefix: leading `/`, no trailing `/`; `''` and `'/'` mean the root (`''`).
 * Throws on a prefix that is not a plain path.
 */
export function normalisePrefix(prefix: string): string {
  let p = prefix.trim();
  if (!p.startsWith('/')) p = '/' + p;
  while (p.endsWith('/')) p = p.slice(0, -1);
  if (p !== '' && (unsafePathReason(p) !== undefined || p.includes('?') || p.includes('%'))) {
    throw new TypeError(`Invalid prefix: ${JSON.stringify(prefix)}`);
  }
  return p;
}

const TOKEN_ENDPOINT = '/api/v1/tokens';

/**
 * Model Studio's own mint endpoint (any case, any sub-path). Proxying it would let a client mint
 * keys with the injected key: keys of up to 30 minutes, outside `authorize` and `tokenRoute`.
 */
function isTokenEndpoint(rest: string): boolean {
  const n = TOKEN_ENDPOINT.length;
  if (rest.length < n) return false;
  // ASCII case-insensitive comparison without allocating a lower-cased copy (hot path).
  for (let i = 0; i < n; i++) {
    let c = rest.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    if (c !== TOKEN_ENDPOINT.charCodeAt(i)) return false;
  }
  return rest.length === n || rest.charCodeAt(n) === 0x2f;
}

function dialectOf(rest: string): ErrorDialect {
  return rest.startsWith(COMPATIBLE_PREFIX) ? 'openai' : 'dashscope';
}

function isUnderPrefix(path: string, prefix: string): boolean {
  if (prefix === '') return true;
  return (
    path.startsWith(prefix) &&
    (path.length === prefix.length || path.charCodeAt(prefix.length) === 0x2f)
  );
}

/**
 * Matches a request target (path + query, as received) against the routes under `prefix`.
 * Absolute-form targets (`http://host/…`) whose path falls under the prefix are refused: the
 * upstream origin comes from configuration only.
 */
export function matchRoute(url: string, prefix: string): Route {
  if (url.charCodeAt(0) !== 0x2f) {
    // Absolute-form (`http://evil/dashscope/...`), authority-form or `*`.
    const scheme = url.indexOf('://');
    if (scheme <= 0) return OUTSIDE;
    const pathStart = url.indexOf('/', scheme + 3);
    const rest = pathStart < 0 ? '/' : url.slice(pathStart);
    const q = rest.indexOf('?');
    const path = q < 0 ? rest : rest.slice(0, q);
    if (!isUnderPrefix(path, prefix)) return OUTSIDE;
    return {
      kind: 'bad-target',
      dialect: dialectOf(path.slice(prefix.length)),
      reason: 'absolute-form request target',
    };
  }
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  if (!isUnderPrefix(path, prefix)) {
    // `//dashscope/...` and similar do not start with the prefix and are left to others.
    return OUTSIDE;
  }
  const rest = path.slice(prefix.length);
  const dialect = dialectOf(rest);
  if (rest !== '') {
    const reason = unsafePathReason(rest);
    if (reason !== undefined) return { kind: 'bad-target', dialect, reason };
  }
  const query = q < 0 ? '' : url.slice(q + 1);
  if (query !== '') {
    const reason = unsafeQueryReason(query);
    if (reason !== undefined) return { kind: 'bad-target', dialect, reason };
  }
  if (isTokenEndpoint(rest)) {
    return {
      kind: 'refused',
      dialect,
      message: 'Temporary keys are not minted through the proxy; use the token route.',
    };
  }
  if (rest.startsWith(NATIVE_PREFIX) || rest.startsWith(COMPATIBLE_V1_PREFIX)) {
    return { kind: 'proxy', dialect, target: q < 0 ? rest : rest + url.slice(q), query };
  }
  if (rest === '/token') return TOKEN;
  if (rest.startsWith(WEBSOCKET_PREFIX)) return WEBSOCKET;
  if (rest.startsWith(PAI_EAS_PREFIX)) {
    const eas = matchPaiEasRoute(rest, query);
    if (eas !== undefined) return eas;
  }
  return { kind: 'not-found', dialect };
}
