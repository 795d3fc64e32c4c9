/**
 * The Node transport: undici over one shared keep-alive `Agent` per process (created lazily).
 * The default of `@dashscope-token/core`.
 */
import { Agent, type Dispatcher, request } from 'undici';
import type { HttpResponse, HttpTransport } from './types.js';

/** Default milliseconds to establish a connection. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

/** Shared agents by connect timeout: in practice one (the default timeout). */
const sharedAgents = new Map<number, Agent>();

/**
 * The process-wide keep-alive dispatcher for a connect timeout, created on first use. Idle
 * sockets do not keep the process alive (undici unrefs them), so it is never closed.
 *
 * @param connectTimeoutMs milliseconds to establish the TCP/TLS connection
 * @default connectTimeoutMs 5000
 */
export function sharedDispatcher(
  connectTimeoutMs: number = DEFAULT_CONNECT_TIMEOUT_MS,
): Dispatcher {
  let agent = sharedAgents.get(connectTimeoutMs);
  if (agent === undefined) {
    agent = new Agent({
      connect: { timeout: connectTimeoutMs },
      keepAliveTimeout: 4_000,
      keepAliveMaxTimeout: 60_000,
    });
    sharedAgents.set(connectTimeoutMs, agent);
  }
  return agent;
}

/** Options of {@link undiciTransport}. */
export interface UndiciTransportOptions {
  /**
   * undici dispatcher the requests go through (inject one in tests).
   * @default the shared keep-alive `Agent` for `connectTimeoutMs`
   */
  dispatcher?: Dispatcher;
  /**
   * Milliseconds to establish the TCP/TLS connection (used for the shared `Agent` only).
   * @default 5000
   */
  connectTimeoutMs?: number;
}

/**
 * An {@link HttpTransport} over undici: headers and body timeouts of `timeoutMs`, the body read
 * as a stream and abandoned once it passes the byte limit.
 */
export function undiciTransport(options: UndiciTransportOptions = {}): HttpTransport {
  const dispatcher = options.dispatcher ?? sharedDispatcher(options.connectTimeoutMs);
  return {
    async request({ url, method, headers, body, signal, timeoutMs }): Promise<HttpResponse> {
      const answer = await request(url, {
        method: method as Dispatcher.HttpMethod,
        headers: { ...headers },
        ...(body !== undefined && { body }),
        dispatcher,
        signal,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      return {
        status: answer.statusCode,
        header(name) {
          const value = answer.headers[name];
          return Array.isArray(value) ? value[0] : value;
        },
        async text(maxBytes) {
          const chunks: Buffer[] = [];
          let size = 0;
          for await (const chunk of answer.body as AsyncIterable<Buffer>) {
            size += chunk.length;
            if (size > maxBytes) {
              answer.body.destroy();
              return undefined;
            }
            chunks.push(chunk);
          }
          return Buffer.concat(chunks).toString('utf8');
        },
      };
    },
  };
}
