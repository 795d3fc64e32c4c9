/**
 * The smallest node:http → Fetch bridge (what `@hono/node-server` and similar adapters do), for
 * suites that drive a fetch handler over real sockets: the request line, headers and body
 * stream become a `Request` whose `signal` aborts when the client goes away; the `Response` is
 * written back as it streams, with backpressure.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';

/** A Fetch-style handler: `handler.fetch`, or anything answering a `Request`. */
export type FetchLike = (request: Request) => Promise<Response>;

/** `req` as a `Request`, or `undefined` when it cannot be one (a runtime answers 400 then). */
export function toRequest(req: IncomingMessage, signal: AbortSignal): Request | undefined {
  try {
    const url = new URL(req.url ?? '/', `http://${req.headers.host ?? '127.0.0.1'}`);
    const headers = new Headers();
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
      headers.append(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
    }
    const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
    return new Request(url, {
      method: req.method,
      headers,
      signal,
      ...(hasBody && { body: Readable.toWeb(req) as ReadableStream, duplex: 'half' }),
    } as RequestInit);
  } catch {
    return undefined;
  }
}

/** Writes `response` to `res`, streaming its body. */
export async function writeResponse(response: Response, res: ServerResponse): Promise<void> {
  const flat: string[] = [];
  response.headers.forEach((value, name) => {
    flat.push(name, value);
  });
  res.writeHead(response.status, flat);
  if (response.body === null) {
    res.end();
    return;
  }
  try {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      if (!res.write(chunk)) await new Promise((resolve) => res.once('drain', resolve));
    }
    res.end();
  } catch {
    res.destroy();
  }
}

/**
 * A node:http listener serving `handle`; `fallback` answers what `handle` leaves (`undefined`).
 */
export function nodeListener(
  handle: (request: Request) => Promise<Response | undefined>,
  fallback: (request: Request) => Promise<Response> | Response = () =>
    new Response('not found', { status: 404 }),
) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const abort = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) abort.abort();
    });
    const request = toRequest(req, abort.signal);
    if (request === undefined) {
      res.writeHead(400, { connection: 'close', 'content-length': '0' }).end();
      return;
    }
    const response = (await handle(request)) ?? (await fallback(request));
    await writeResponse(response, res);
  };
}

/** Methods a Fetch `Request` cannot carry (the runtime refuses them). */
const FORBIDDEN_METHODS = new Set(['CONNECT', 'TRACE', 'TRACK']);

/**
 * Whether a Fetch runtime hands the handler this raw request as sent (else it normalises the
 * target, or refuses the request, before any handler sees it): an HTTP/1.x request line
 * whose target the URL parser keeps byte for byte, with a method a `Request` can carry.
 */
export function reachesFetchUnchanged(raw: string): boolean {
  const end = raw.indexOf('\r\n');
  const line = end < 0 ? raw : raw.slice(0, end);
  const parts = line.split(' ');
  if (parts.length !== 3 || !/^HTTP\/1\.[01]$/.test(parts[2]!)) return false;
  const [method, target] = parts as [string, string];
  if (FORBIDDEN_METHODS.has(method.toUpperCase()) || !target.startsWith('/')) return false;
  for (let i = 0; i < target.length; i++) {
    const c = target.charCodeAt(i);
    // Controls, spaces and non-ASCII: a URL parser percent-encodes or drops them.
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  try {
    const url = new URL(target, 'http://127.0.0.1');
    return url.pathname + url.search === target;
  } catch {
    return false;
  }
}
