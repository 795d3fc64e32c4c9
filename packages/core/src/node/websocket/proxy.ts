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
import { boundAdmission, obtainToken, tokenAfterUnauthorized } from '../../policy/admission.js';
import { type ErrorAnswer, failureAnswer, INTERNAL_ERROR } from '../../policy/answers.js';
import type { HandlerConfig } from '../../policy/config.js';
import { admitWithinLimits, type ClientFacts, withinModelBudgets } from '../../policy/limits.js';
import { usageIdentity } from '../../policy/usage.js';
import {
  planUpgrade,
  refusedMessageModel,
  SERVER_CLOSING,
  upstreamHandshakeHeaders,
} from '../../policy/websocket.js';
import type { WebSocketConfig } from '../../policy/websocket-config.js';
import type { TokenProvider } from '../../types.js';
import type { DashScopeHandler } from '../types.js';
import { meterSession, type SessionObserver } from './metering.js';
import { refuseUpgrade } from './refuse.js';
import { type Relay, relay } from './relay.js';
import type { HandleUpgradeOptions } from './types.js';
import { connectUpstream, type UpstreamOutcome } from './upstream.js';

/** Most bytes a client may send before its handshake is answered (it should send none). */
const MAX_EARLY_BYTES = 64 * 1024;

/** Longest interval of the sessions' watchdog (it runs more often for short timeouts). */
const WATCHDOG_INTERVAL_MS = 1000;

/** How long `close()` waits for sessions to finish their closing handshakes. */
const SHUTDOWN_GRACE_MS = 2000;

function noop(): void {}

/** The WebSocket half of a handler. */
export interface WebSocketProxy<Ctx> {
  handleUpgrade: DashScopeHandler<Ctx>['handleUpgrade'];
  stats: DashScopeHandler<Ctx>['websocketStats'];
  /** Refuses new upgrades, aborts pending ones, closes sessions with 1001. */
  close(): Promise<void>;
}

/**
 * Creates the WebSocket proxy of a handler: carries out the upgrade policy (`planUpgrade`) and
 * admission, with the proxy's provider, on node sockets.
 */
export function createWebSocketProxy<Ctx>(
  config: HandlerConfig<Ctx, IncomingMessage>,
  provider: TokenProvider,
): WebSocketProxy<Ctx> {
  const counters = { open: 0, connecting: 0, opened: 0, refused: 0 };
  const pending = new Set<AbortController>();
  const sessions = new Set<Relay>();
  const allowModels = config.allowModels;
  /** The subprotocol Model Studio selected, for the client's handshake. */
  const selected = new WeakMap<IncomingMessage, string>();
  let server: WebSocketServer | undefined;
  let closed = false;

  function clientServer(settings: WebSocketConfig<Ctx, IncomingMessage>): WebSocketServer {
    server ??= new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: settings.maxMessageBytes,
      handleProtocols: (_offered, req) => selected.get(req) ?? false,
    });
    return server;
  }

  /**
   * One timer for every open session: ends late messages and idle sessions, and keeps the
   * bytes of unfinished messages over all sessions within `maxPendingBytes`.
   */
  let watchdog: NodeJS.Timeout | undefined;
  function watchSessions(settings: WebSocketConfig<Ctx, IncomingMessage>): void {
    if (watchdog !== undefined) return;
    const shortest = Math.min(
      settings.messageTimeoutMs,
      settings.idleTimeoutMs > 0 ? settings.idleTimeoutMs : Number.POSITIVE_INFINITY,
    );
    const every = Math.max(10, Math.min(WATCHDOG_INTERVAL_MS, Math.floor(shortest / 4)));
    watchdog = setInterval(() => checkSessions(settings.maxPendingBytes), every);
    watchdog.unref();
  }
  function stopWatching(): void {
    clearInterval(watchdog);
    watchdog = undefined;
  }
  function checkSessions(maxPendingBytes: number): void {
    const now = Date.now();
    let total = 0;
    for (const session of sessions) {
      session.check(now);
      total += session.pendingBytes();
    }
    if (total <= maxPendingBytes) return;
    const holding = [...sessions]
      .map((session) => ({ session, bytes: session.pendingBytes() }))
      .sort((a, b) => b.bytes - a.bytes);
    for (const { session, bytes } of holding) {
      if (total <= maxPendingBytes || bytes === 0) break;
      session.evict();
      total -= bytes;
    }
  }

  function refuse(socket: Duplex, answer: ErrorAnswer, requestId?: string): void {
    counters.refused += 1;
    refuseUpgrade(socket, answer, requestId);
  }

  async function setUp(
    settings: WebSocketConfig<Ctx, IncomingMessage>,
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    plan: { upstreamUrl: string; protocols: readonly string[]; path: string; model?: string },
    handleOptions: HandleUpgradeOptions<Ctx> | undefined,
  ): Promise<void> {
    const url = plan.upstreamUrl;
    const protocols = plan.protocols;
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
      if (closed && !socket.destroyed) refuse(socket, SERVER_CLOSING);
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
          fail(failureAnswer(error, 'hook'));
          return;
        }
      } else ctx = req as unknown as Ctx;
      if (controller.signal.aborted) return fail(undefined);

      const client: ClientFacts = { address: req.socket.remoteAddress, headers: req.headers };
      let admission = admitWithinLimits(config, 'websocket', ctx, client);
      if (admission instanceof Promise) {
        admission = await boundAdmission(config, admission, controller.signal);
      }
      if ('refused' in admission) return fail(admission.refused);
      let withinModel = withinModelBudgets(config, ctx, admission, client, { model: plan.model });
      if (withinModel instanceof Promise) withinModel = await withinModel;
      if ('refused' in withinModel) return fail(withinModel.refused);
      const apiKey = admission.apiKey;
      if (controller.signal.aborted) return fail(undefined);

      const minValiditySeconds = settings.minValiditySeconds;
      const signal = controller.signal;
      const token = await obtainToken(provider, { apiKey, minValiditySeconds, signal });
      if ('refused' in token) return fail(signal.aborted ? undefined : token.refused);

      const connect = (key: string): Promise<UpstreamOutcome> =>
        connectUpstream(url, {
          protocols,
          headers: upstreamHandshakeHeaders(
            req.rawHeaders,
            config.forwardClientIdentity,
            key,
            config.forwardHeaders,
          ),
          timeoutMs: settings.handshakeTimeoutMs,
          maxPayload: settings.maxMessageBytes,
          secrets: [apiKey, key],
          signal,
        });
      let outcome = await connect(token.token);
      if (outcome.kind === 'refused' && outcome.status === 401) {
        // The injected key was refused (expired early, clock skew): once more with a new one.
        const fresh = await tokenAfterUnauthorized(
          provider,
          apiKey,
          token.token,
          minValiditySeconds,
          config.remints,
        );
        if ('refused' in fresh) return fail(signal.aborted ? undefined : fresh.refused);
        // Re-mints for this key are rate-limited: no replay, the refusal answers 502 below.
        if (!('noReplay' in fresh)) outcome = await connect(fresh.token);
      }
      if (outcome.kind === 'gone') return fail(undefined);
      if (outcome.kind === 'failed') return fail(outcome.answer);
      if (outcome.kind === 'refused') {
        return fail(
          failureAnswer(outcome.error, 'websocket-refusal', [apiKey]),
          outcome.error.requestId,
        );
      }

      const upstream = outcome.ws;
      const admitted = admission;
      const observe = (): SessionObserver | undefined => {
        const metering = config.metering;
        if (!metering.active) return undefined;
        let identity: string;
        try {
          identity = usageIdentity(config.limits, ctx, admitted, client);
        } catch {
          identity = 'unknown';
        }
        const keyHash = metering.keyHash(apiKey);
        return meterSession(
          metering,
          { identity, keyHash, path: plan.path, model: plan.model },
          ctx,
        );
      };
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
          messageTimeoutMs: settings.messageTimeoutMs,
          inspectClient:
            allowModels === undefined
              ? undefined
              : (text: string) => refusedMessageModel(allowModels, text),
          idleTimeoutMs: settings.idleTimeoutMs,
          observe: observe(),
          onEnd: () => {
            counters.open -= 1;
            sessions.delete(session);
            if (sessions.size === 0) stopWatching();
          },
        });
        sessions.add(session);
        watchSessions(settings);
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
      const ws = config.websocket;
      if (ws === undefined) return false;
      const plan = planUpgrade(config, {
        method: req.method ?? 'GET',
        url: handleOptions?.url ?? req.url ?? '/',
        headers: req.headers,
        request: req,
        sessions: counters.open + counters.connecting,
        closing: closed,
      });
      if (plan.kind === 'outside') return false;
      // From here on the socket is ours: an error on it must not crash the process.
      socket.on('error', noop);
      if (plan.kind === 'refuse') {
        refuse(socket, plan.answer);
        return true;
      }
      counters.connecting += 1;
      void setUp(ws, req, socket, head, plan, handleOptions);
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
      stopWatching();
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
