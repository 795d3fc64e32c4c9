import type { IncomingMessage } from 'node:http';
import type { Request } from 'express';

function getter(req: IncomingMessage) {
  return (name: string): string | string[] | undefined => {
    const lc = name.toLowerCase();
    if (lc === 'referer' || lc === 'referrer') return req.headers.referer ?? req.headers.referrer;
    return req.headers[lc];
  };
}

/**
 * The context `authorize` and `apiKey` get for a WebSocket upgrade: the handshake's
 * IncomingMessage with Express's `req.get()` / `req.header()`. Upgrades do not pass through
 * Express, so nothing else a middleware would add (`req.session`, `req.user`, `req.cookies`)
 * is there: read the `Cookie` header yourself, or set `websocket.context`.
 */
export function upgradeRequest(req: IncomingMessage): Request {
  const r = req as IncomingMessage & { get?: unknown; header?: unknown };
  if (typeof r.get !== 'function') {
    const get = getter(req);
    Object.defineProperty(r, 'get', { value: get, configurable: true, writable: true });
    Object.defineProperty(r, 'header', { value: get, configurable: true, writable: true });
  }
  return r as unknown as Request;
}
