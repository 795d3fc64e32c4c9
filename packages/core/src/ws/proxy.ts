/**
 * The WebSocket proxy: `{prefix}/api-ws/v1/inference` and `{prefix}/api-ws/v1/realtime`
 * upgrades are checked (handshake, origin, capacity, `authorize`), given a temporary key, and
 * connected to Model Studio before the client's handshake is completed, so that every upstream
 * failure reaches the client as an HTTP answer and the subprotocol Model Studio picked is the
 * one the client gets.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { checkAccess, hookErrorAnswer, resolveApiKey } from '../handler/access.js';
import type { HandlerConfig } from '../handler/config.js';
import { type ErrorAnswer, INTERNAL_ERROR, tokenErrorAnswer } from '../handler/error-response.js';
import { matchRoute } from '../handler/routes.js';
import { tokenAfterUnauthorized } from '../proxy/replay.js';
import type { TokenProvider } from '../types.js';
import { resolveWebSocketConfig, type WebSocketConfig } from './config.js';
import { checkClientHandshake, refuseUpgrade } from './handshake.js';
import { isOriginAllowed } from './origin.js';
import { type Relay, relay } from './relay.js';
import type { HandleUpgradeOptions, WebSocketOptions, WebSocketStats } from './types.js';
import {
  connectUpstream,
  refusalAnswer,
  type UpstreamOutcome,
  upstreamHeaders,
  withoutCredentialParams,
} from './upstream.js';

/** The WebSocket paths proxied, after the prefix (the SDKs use a trailing slash too). */
const WEBSOCKET_PATHS: ReadonlySet<string> = new Set([
  '/api-ws/v1/inference',
  '/api-ws/v1/inference/',
  '/api-ws/v1/realtime',
  '/api-ws/v1/realtime/',
]);

/** Most bytes a client may send before its handshake is answered (it should send none). */
const MAX_EARLY_BYTES = 64 * 1024;

/** How long `close()` waits for sessions to finish their closing handshakes. */
const SHUTDOWN_GRACE_MS = 2000;

const NOT_FOUND: ErrorAnswer = Object.freeze({
  status: 404,
  code: 'NotFound',
  message: 'No such WebSocket route.',
});
const ORIGIN_REFUSED: ErrorAnswer = Object.freeze({
  status: 403,
  code: 'AccessDenied',
  message: 'WebSocket connections from this origin are not allowed.',
});
const TOO_MANY_SESSIONS: ErrorAnswer = Object.freeze({
  status: 503,
  code: 'TooManySessions',
  message: 'Too many WebSocket sessions; try again later.',
  retryAfterSeconds: 1,
});
const CLOSING: ErrorAnswer = Object.freeze({
  status: 503,
  code: 'ServerClosing',
  message: 'The server is shutting down.',
});

function noop(): void {}

/** The WebSocket half of a handler. */
export interface WebSocketProxy<Ctx> {
  /** See `DashScopeHandler.handleUpgrade`. */
  handleUpgrade(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    options?: HandleUpgradeOptions<Ctx>,
  ): boolean;
  stats(): WebSocketStats;
  /** Refuses new upgrades, aborts pending ones, closes sessions with 1001. */
  close(): Promise<void>;
}

/**
 * Creates the WebSocket proxy of a handler (options validated now).
 * @param expireInSeconds TTL of the handler's own provider; `undefined` with a shared provider
 * @throws DashScopeError `InvalidParameter` for invalid `websocket` options.
 */
export function createWebSocketProxy<Ctx>(
  options: false | WebSocketOptions<Ctx> | undefined,
  config: HandlerConfig<Ctx>,
  provider: TokenProvider,
  expireInSeconds: number | undefined,
): WebSocketProxy<Ctx> {
  const ws: WebSocketConfig<Ctx> | undefined = resolveWebSocketConfig(
    options,
    config.origin,
    config.basePath,
    config.minValiditySeconds,
    expireInSeconds,
  );
  const counters = { open: 0, connecting: 0, opened: 0, refused: 0 };
  const pending = new Set<AbortController>();
  const sessions = new Set<Relay>();
  /** The subprotocol Model Studio selected, for the client's handshake. */
  const selected = new WeakMap<IncomingMessage, string>();
  let server: WebSocketServer | undefined;
  let closed = false;

  function clientServer(settings: WebSocketConfig<Ctx>): WebSocketServer {
    server ??= new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: settings.maxMessageBytes,
      handleProtocols: (_offered, req) => selected.get(req) ?? false,
    });
    return server;
  }

  function refuse(socket: Duplex, answer: ErrorAnswer, requestId?: string): void {
    counters.refused += 1;
    refuseUpgrade(socket, answer, requestId);
  }

  async function setUp(
    settings: WebSocketConfig<Ctx>,
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    path: string,
    query: string,
    protocols: readonly string[],
    handleOptions: HandleUpgradeOptions<Ctx> | undefined,
  ): Promise<void> {
    const controller = new AbortController();
    pending.add(controller);
    const onGone = () => controller.abort();
    // The socket is read while the session is set up, or a client that goes away (FIN) would
    // go unnoticed until the upstream handshake ends. Early bytes are kept for `ws`.
    const early: Buffer[] = [];
    let earlyBytes = 0;
    const collect = (chunk: Buffer) => {
      earlyBytes += chunk.length;
      if (earlyBytes > MAX_EARLY_BYTES) socket.destroy();
      else early.push(chunk);
    };
    const watch = (on: boolean) => {
      if (on) {
        socket.once('close', onGone);
        socket.once('end', onGone);
        socket.on('data', collect);
      } else {
        socket.off('close', onGone);
        socket.off('end', onGone);
        socket.off('data', collect);
        socket.pause();
      }
    };
    watch(true);
    let settled = false;
    /** Ends the connecting phase: refuses with `answer` (or just drops a gone client). */
    const fail = (answer: ErrorAnswer | undefined, requestId?: string) => {
      if (settled) return;
      settled = true;
      pending.delete(controller);
      watch(false);
      counters.connecting -= 1;
      if (closed && !socket.destroyed) refuse(socket, CLOSING);
      else if (answer !== undefined && !controller.signal.aborted)
        refuse(socket, answer, requestId);
      else socket.destroy();
    };
    try {
      let ctx: Ctx;
      if (handleOptions?.context !== undefined) ctx = handleOptions.context;
      else if (settings.context !== undefined) {
        try {
          ctx = await settings.context(req);
        } catch (error) {
          fail(hookErrorAnswer(error));
          return;
        }
      } else ctx = req as unknown as Ctx;
      if (controller.signal.aborted) return fail(undefined);

      const refused = await checkAccess(config.authorize, ctx);
      if (refused !== undefined) return fail(refused);
      let apiKey: string;
      try {
        apiKey = await resolveApiKey(config.apiKey, ctx);
      } catch (error) {
        return fail(hookErrorAnswer(error));
      }
      if (controller.signal.aborted) return fail(undefined);

      const minValiditySeconds = settings.minValiditySeconds;
      let token: string;
      try {
        token = (await provider.getToken({ apiKey, minValiditySeconds, signal: controller.signal }))
          .token;
      } catch (error) {
        return fail(controller.signal.aborted ? undefined : tokenErrorAnswer(error, [apiKey]));
      }

      const upstreamQuery = withoutCredentialParams(query);
      const url = `${settings.upstreamBase}${path}${upstreamQuery === '' ? '' : `?${upstreamQuery}`}`;
      const connect = (key: string): Promise<UpstreamOutcome> =>
        connectUpstream(url, {
          protocols,
          headers: upstreamHeaders(req.rawHeaders, config.forwardClientIdentity, key),
          timeoutMs: settings.handshakeTimeoutMs,
          maxPayload: settings.maxMessageBytes,
          secrets: [apiKey, key],
          signal: controller.signal,
        });
      let outcome = await connect(token);
      if (outcome.kind === 'refused' && outcome.status === 401) {
        // The injected key was refused (expired early, clock skew): once more with a new one.
        try {
          token = (await tokenAfterUnauthorized(provider, apiKey, token, minValiditySeconds)).token;
        } catch (error) {
          return fail(controller.signal.aborted ? undefined : tokenErrorAnswer(error, [apiKey]));
        }
        outcome = await connect(token);
      }
      if (outcome.kind === 'gone') return fail(undefined);
      if (outcome.kind === 'failed') return fail(outcome.answer);
      if (outcome.kind === 'refused') {
        return fail(refusalAnswer(outcome.error), outcome.error.requestId);
      }

      const upstream = outcome.ws;
      if (settled || controller.signal.aborted || closed || socket.destroyed) {
        upstream.terminate();
        return fail(undefined);
      }
      settled = true;
      pending.delete(controller);
      watch(false);
      if (upstream.protocol) selected.set(req, upstream.protocol);
      let upgraded = false;
      const rest = early.length === 0 ? head : Buffer.concat([head, ...early]);
      clientServer(settings).handleUpgrade(req, socket, rest, (client) => {
        upgraded = true;
        // Paused by watch(false); `ws` reads it from now on.
        socket.resume();
        counters.connecting -= 1;
        counters.open += 1;
        counters.opened += 1;
        const session = relay(client, upstream, {
          maxBufferedBytes: settings.maxBufferedBytes,
          pingIntervalMs: settings.pingIntervalMs,
          maxSessionSeconds: settings.maxSessionSeconds,
          onEnd: () => {
            counters.open -= 1;
            sessions.delete(session);
          },
        });
        sessions.add(session);
      });
      if (!upgraded) {
        // `ws` refused or dropped the socket (the client went away meanwhile).
        counters.connecting -= 1;
        upstream.terminate();
        if (!socket.destroyed) socket.destroy();
      }
    } catch {
      fail(INTERNAL_ERROR);
    }
  }

  return {
    handleUpgrade(req, socket, head, handleOptions) {
      if (ws === undefined) return false;
      const url = handleOptions?.url ?? req.url ?? '/';
      const match = matchRoute(url, config.prefix);
      if (match.kind === 'outside') return false;
      // From here on the socket is ours: an error on it must not crash the process.
      socket.on('error', noop);
      if (closed) {
        refuse(socket, CLOSING);
        return true;
      }
      if (match.kind === 'bad-target') {
        refuse(socket, {
          status: 400,
          code: 'InvalidPath',
          message: `Request target refused: ${match.reason}.`,
        });
        return true;
      }
      const q = url.indexOf('?');
      const path = (q < 0 ? url : url.slice(0, q)).slice(config.prefix.length);
      if (match.kind !== 'websocket' || !WEBSOCKET_PATHS.has(path)) {
        refuse(socket, NOT_FOUND);
        return true;
      }
      const handshake = checkClientHandshake(req);
      if (!('protocols' in handshake)) {
        refuse(socket, handshake);
        return true;
      }
      if (!isOriginAllowed(req, ws.allowedOrigins)) {
        refuse(socket, ORIGIN_REFUSED);
        return true;
      }
      if (counters.open + counters.connecting >= ws.maxSessions) {
        refuse(socket, TOO_MANY_SESSIONS);
        return true;
      }
      counters.connecting += 1;
      void setUp(
        ws,
        req,
        socket,
        head,
        path,
        q < 0 ? '' : url.slice(q + 1),
        handshake.protocols,
        handleOptions,
      );
      return true;
    },
    stats() {
      let bufferedBytes = 0;
      for (const session of sessions) bufferedBytes += session.buffered();
      return { ...counters, bufferedBytes };
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const controller of pending) controller.abort();
      const open = [...sessions];
      if (open.length > 0) {
        let timer: NodeJS.Timeout | undefined;
        const grace = new Promise<void>((resolve) => {
          timer = setTimeout(resolve, SHUTDOWN_GRACE_MS);
        });
        await Promise.race([Promise.all(open.map((s) => s.shutdown())), grace]);
        clearTimeout(timer);
        for (const session of open) session.terminate();
      }
      server?.close();
    },
  };
}
