import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  createDashScopeHandler,
  type DashScopeHandler,
  type DashScopeHandlerOptions,
  type HandlerGetTokenOptions,
  type TemporaryToken,
  withUpgradeContext,
} from '@dashscope-token/core';
import type {
  FastifyInstance,
  FastifyPluginAsync,
  FastifyReply,
  FastifyRequest,
  onRequestHookHandler,
} from 'fastify';
import fp from 'fastify-plugin';
import { upgradeRequest } from './upgrade-request.js';

/** What the plugin puts on `request.dashscope` for the app's own route handlers. */
export interface DashScopeRequestApi {
  /**
   * A temporary key (`st-…`) for this request's API key (the `apiKey` option, resolved with
   * this request for multi-tenant setups), from the shared cache. Keep it on the server.
   */
  getToken(opts?: HandlerGetTokenOptions): Promise<TemporaryToken>;
}

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * Set by the `dashscopeToken` plugin from `@dashscope-token/fastify` on every request of
     * the instance it is registered on (and its children: the plugin is not encapsulated).
     */
    readonly dashscope: DashScopeRequestApi;
  }
  interface FastifyInstance {
    /**
     * The core handler the `dashscopeToken` plugin wraps (shares the token cache and the
     * upstream pool): `app.dashscope.getToken()` outside a request, `app.dashscope.stats()`.
     */
    readonly dashscope: DashScopeHandler<FastifyRequest>;
  }
}

/**
 * Options of {@link dashscopeToken}: the core handler's options, with the Fastify request as
 * context. `prefix` is the core handler's (Fastify's own `prefix` of `register` does not apply
 * to this plugin, which is not encapsulated).
 */
export type DashScopeFastifyOptions = DashScopeHandlerOptions<FastifyRequest>;

function hookFor(handler: DashScopeHandler<FastifyRequest>): onRequestHookHandler {
  // onRequest runs before Fastify reads the body: the proxy gets the raw stream, whatever its
  // content type, and Fastify's content-type parsers never see a proxied request.
  return async function dashscopeOnRequest(request: FastifyRequest, reply: FastifyReply) {
    const handled = await handler.handle(request.raw, reply.raw, {
      context: request,
      url: request.url,
      // request.ip honours Fastify's trustProxy: the client address per-client limits count by.
      clientAddress: request.ip,
    });
    // The handler answered on the raw response: Fastify must not send anything more.
    if (handled) reply.hijack();
  };
}

/** Marks the `upgrade` listeners of this plugin (one per registration). */
const OURS = Symbol('dashscope-token upgrade listener');

/**
 * The `upgrade` listener on Fastify's server: proxies upgrades under `prefix`; leaves the
 * others to the server's other `upgrade` listeners, or, when there are only this plugin's (and
 * this is the last of them), closes the socket, as Node does for an upgrade nobody listens to.
 */
function upgradeListenerFor(
  server: FastifyInstance['server'],
  handler: DashScopeHandler<FastifyRequest>,
) {
  const listener = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    if (handler.upgrade(req, socket, head)) return;
    const listeners = server.listeners('upgrade');
    if (listeners.at(-1) === listener && listeners.every((l) => OURS in l)) socket.destroy();
  };
  return Object.assign(listener, { [OURS]: true });
}

const plugin: FastifyPluginAsync<DashScopeFastifyOptions> = async (app, options) => {
  const handler = createDashScopeHandler<FastifyRequest>(
    withUpgradeContext(options, upgradeRequest),
  );
  // Registered more than once on one instance (several prefixes), the first registration
  // provides `app.dashscope` and `request.dashscope`.
  if (!app.hasDecorator('dashscope')) app.decorate('dashscope', handler);
  if (!app.hasRequestDecorator('dashscope')) {
    app.decorateRequest('dashscope', {
      getter(this: FastifyRequest): DashScopeRequestApi {
        return { getToken: (opts) => handler.getToken(this, opts) };
      },
    });
  }
  app.addHook('onRequest', hookFor(handler));
  const upgrade = options.websocket === false ? undefined : upgradeListenerFor(app.server, handler);
  if (upgrade) app.server.on('upgrade', upgrade);
  // preClose, not onClose: Fastify waits for the server to close before onClose, and the server
  // waits for the WebSocket sessions, which only the handler's close() ends. The upstream pool
  // closes gracefully: proxied requests in flight still finish.
  app.addHook('preClose', async () => {
    if (upgrade) app.server.off('upgrade', upgrade);
    await handler.close();
  });
};

/**
 * Fastify 4/5 plugin serving `POST {prefix}/token` and proxying `{prefix}/api/v1/…` and
 * `{prefix}/compatible-mode/v1/…` to Model Studio with a fresh temporary key injected, and the
 * WebSocket routes `{prefix}/api-ws/v1/inference` and `{prefix}/api-ws/v1/realtime` on
 * `app.server`. It answers those requests in an `onRequest` hook, on the raw response
 * (`reply.hijack()`), before any body parsing; other requests go on to your routes. Every
 * request gets `request.dashscope.getToken()`. Not encapsulated (`fastify-plugin`): register it
 * on the root instance. `app.close()` closes it.
 *
 * Options: the core handler's (see `createDashScopeHandler`); `apiKey` and `authorize` receive
 * the `FastifyRequest`. @default `{}` (routes under `/dashscope`, key from `DASHSCOPE_API_KEY`)
 * @example
 * await app.register(dashscopeToken);                       // routes under /dashscope
 * await app.register(dashscopeToken, { prefix: '/ai' });    // routes under /ai
 */
export const dashscopeToken = fp(plugin, {
  fastify: '4.x || 5.x',
  name: '@dashscope-token/fastify',
});

export default dashscopeToken;

export type {
  AuthorizeResult,
  DashScopeHandler,
  DashScopeHandlerOptions,
  HandlerGetTokenOptions,
  TemporaryToken,
  WebSocketOptions,
} from '@dashscope-token/core';
