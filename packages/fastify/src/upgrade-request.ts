import type { IncomingMessage } from 'node:http';
import type { FastifyRequest } from 'fastify';

/**
 * The context `authorize` and `apiKey` get for a WebSocket upgrade. Upgrades do not pass
 * through Fastify's routing, so there is no real `FastifyRequest`: this is a minimal one with
 * `raw`, `headers`, `method`, `url`, `originalUrl`, `query` and `ip` (no hook ran on it, so
 * nothing a plugin decorates, such as `request.user` or `request.cookies`, is there). Read the
 * `Cookie` header from `request.headers.cookie`, or set `websocket.context`.
 */
export function upgradeRequest(req: IncomingMessage): FastifyRequest {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return {
    raw: req,
    headers: req.headers,
    method: req.method ?? 'GET',
    url,
    originalUrl: url,
    query: Object.fromEntries(new URLSearchParams(q < 0 ? '' : url.slice(q + 1))),
    ip: req.socket?.remoteAddress ?? '',
  } as unknown as FastifyRequest;
}
