import type { IncomingMessage } from 'node:http';
import type { WebSocketConfig } from './config.js';

/**
 * Whether `origin` (an `Origin` header) names the same host as `host` (the `Host` header),
 * whatever the scheme: behind a TLS-terminating proxy the server cannot tell which scheme the
 * browser used, and a browser page on the same host is the app's own. Default ports are
 * normalised (`https://a.example` matches `Host: a.example:443`).
 */
export function isSameOriginAsHost(origin: string, host: string | undefined): boolean {
  if (host === undefined || host === '') return false;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
  if (url.username || url.password || (url.pathname !== '/' && url.pathname !== '')) return false;
  const wanted = host.trim().toLowerCase();
  const originHost = url.host.toLowerCase();
  if (originHost === wanted) return true;
  if (url.port === '') {
    const defaultPort = url.protocol === 'https:' ? '443' : '80';
    return `${originHost}:${defaultPort}` === wanted;
  }
  return false;
}

/**
 * The cross-site WebSocket hijacking check: whether the handshake's `Origin` is allowed. A
 * handshake without `Origin` comes from a non-browser client (browsers always send it on
 * WebSocket handshakes) and is allowed: it carries no ambient browser credentials.
 */
export function isOriginAllowed(
  req: IncomingMessage,
  allowed: WebSocketConfig<unknown>['allowedOrigins'],
): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  if (allowed === undefined) return isSameOriginAsHost(origin, req.headers.host);
  if (typeof allowed === 'function') {
    try {
      return allowed(origin, req) === true;
    } catch {
      return false;
    }
  }
  return allowed.has(origin.trim().toLowerCase());
}
