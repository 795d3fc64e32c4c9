import type { IncomingMessage } from 'node:http';
import type { Context } from 'koa';

/**
 * The context `authorize` and `apiKey` get for a WebSocket upgrade. Upgrades do not pass
 * through Koa, so there is no real `ctx`: this is a minimal one with `req`, `request`,
 * `headers`/`header`, `get()`, `method`, `url`, `path`, `querystring`, `query`, `ip` and an empty
 * `state` (no middleware ran, so `ctx.state.user` is undefined and `ctx.cookies` is absent).
 * Read the `Cookie` header with `ctx.get('cookie')`, or set `websocket.context` (for example
 * `(req) => app.createContext(req, new ServerResponse(req))` plus your own session lookup).
 */
export function upgradeContext(req: IncomingMessage): Context {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const querystring = q < 0 ? '' : url.slice(q + 1);
  const headers = req.headers;
  const get = (name: string): string => {
    const lc = name.toLowerCase();
    const value =
      lc === 'referer' || lc === 'referrer' ? (headers.referer ?? headers.referrer) : headers[lc];
    return Array.isArray(value) ? value.join(', ') : (value ?? '');
  };
  const query = Object.fromEntries(new URLSearchParams(querystring));
  const method = req.method ?? 'GET';
  const request = {
    req,
    headers,
    header: headers,
    url,
    originalUrl: url,
    method,
    path,
    querystring,
    query,
    get,
  };
  const ctx = {
    req,
    request,
    headers,
    header: headers,
    url,
    originalUrl: url,
    method,
    path,
    querystring,
    query,
    ip: req.socket?.remoteAddress ?? '',
    state: {},
    get,
  };
  return ctx as unknown as Context;
}
