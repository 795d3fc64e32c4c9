/**
 * The runtime-neutral transport: the global `fetch` (Node 18+, Bun, Deno, Cloudflare Workers,
 * Vercel Edge, browsers). The default of `@dashscope-token/core/neutral`.
 */
import type { HttpResponse, HttpTransport } from './types.js';

/** Options of {@link fetchTransport}. */
export interface FetchTransportOptions {
  /**
   * The fetch function to call (a runtime's own, or one wrapped with tracing).
   * @default globalThis.fetch, looked up at each request
   */
  fetch?: typeof fetch;
}

/** Reads at most `maxBytes` of a body stream as UTF-8; `undefined` when it is longer. */
async function readBounded(
  body: ReadableStream<Uint8Array> | null,
  maxBytes: number,
): Promise<string | undefined> {
  if (body === null) return '';
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return text + decoder.decode();
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => {});
      return undefined;
    }
    text += decoder.decode(value, { stream: true });
  }
}

/**
 * An {@link HttpTransport} over `fetch`. The overall timeout is enforced through the request's
 * signal (fetch has no separate header or body timeouts); connection settings are the runtime's.
 */
export function fetchTransport(options: FetchTransportOptions = {}): HttpTransport {
  const custom = options.fetch;
  return {
    async request({ url, method, headers, body, signal }): Promise<HttpResponse> {
      const run = custom ?? globalThis.fetch;
      const answer = await run(url, {
        method,
        headers,
        ...(body !== undefined && { body }),
        signal,
        redirect: 'manual',
      });
      return {
        status: answer.status,
        header: (name) => answer.headers.get(name) ?? undefined,
        text: (maxBytes) => readBounded(answer.body, maxBytes),
      };
    },
  };
}
