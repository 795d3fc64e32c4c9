/**
 * The HTTP transport used to call Model Studio: one shared keep-alive undici `Agent` per
 * process (created lazily), and the user-agent string.
 */
import { Agent, type Dispatcher } from 'undici';
import pkg from '../package.json' with { type: 'json' };

/** `dashscope-token/<package version> node/<node version>`, sent on every call to Model Studio. */
export const USER_AGENT = `dashscope-token/${pkg.version} node/${process.versions.node}`;

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
