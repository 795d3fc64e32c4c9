import type { IncomingMessage, ServerResponse } from 'node:http';
import { type DashScopeLogger, logRequest } from '../policy/logging.js';

const REQUEST_ID_LINE = /\r\nx-request-id: *([^\r\n]{1,200})/i;

/** The answer's `x-request-id`: set by the handler, or relayed from upstream with `writeHead`. */
function requestIdOf(res: ServerResponse): string | undefined {
  const own = res.getHeader('x-request-id');
  if (typeof own === 'string') return own;
  // Relayed headers are written with `writeHead(status, flatArray)` and not kept by
  // `getHeader`; the header block Node built for the socket still has them.
  const block = (res as unknown as { _header?: unknown })._header;
  if (typeof block !== 'string') return undefined;
  return REQUEST_ID_LINE.exec(block)?.[1];
}

/** Logs one line for a node:http request the handler answered (`started`: `performance.now()`). */
export function logNodeRequest(
  logger: DashScopeLogger,
  req: IncomingMessage,
  res: ServerResponse,
  url: string,
  started: number,
): void {
  logRequest(logger, {
    method: req.method,
    url,
    status: res.headersSent ? res.statusCode : 0,
    durationMs: performance.now() - started,
    requestId: requestIdOf(res),
    clientClosed: !res.writableFinished && (res.destroyed || req.destroyed),
  });
}
