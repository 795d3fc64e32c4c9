/**
 * One factory per server kind (Express 4, Express 5, Koa 2, Koa 3, Fastify 4, Fastify 5, plain
 * node:http, Hono on `@hono/node-server`, the fetch handler behind a node:http bridge, called
 * directly, and served by real Bun and real Deno), each starting the same app
 * (`fixtures/matrix-app.mjs`): the DashScope middleware mounted at the root and under extra
 * mount paths (one of them behind a JSON body parser), plus a few app routes that use
 * `getToken()` and show that other middleware keeps working. In-process kinds listen on
 * 127.0.0.1:0; the direct kind has no socket and gives the suite its own `fetch` and `raw`.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createDashScopeHandler, type UsageEvent } from '@dashscope-token/core';
import { dashscopeToken as expressDashscope } from '@dashscope-token/express';
import { dashscopeToken as fastifyDashscope } from '@dashscope-token/fastify';
import { createFetchHandler } from '@dashscope-token/fetch';
import { dashscopeToken as honoDashscope } from '@dashscope-token/hono';
import { dashscopeToken as koaDashscope } from '@dashscope-token/koa';
import { serve as honoServe } from '@hono/node-server';
import { bodyParser as koaBodyParser } from '@koa/bodyparser';
import type { Request } from 'express';
import express5 from 'express';
import express4 from 'express4';
import fastify5, { type FastifyInstance, type FastifyRequest } from 'fastify';
import fastify4 from 'fastify4';
import { Hono, type Context as HonoContext } from 'hono';
import type { Context } from 'koa';
import Koa3 from 'koa';
import mount from 'koa-mount';
import Koa2 from 'koa2';
import { nodeListener } from '../../../packages/fetch/test/node-bridge.js';
import {
  APP_ROUTES,
  type AppConfig,
  appMounts,
  fetchApp,
  type HeaderReader,
  tokenSummary,
  usageLog,
} from '../fixtures/matrix-app.mjs';
import { type RawResponse, rawViaRequest } from './client.js';
import { type Runtime, startRuntimeServer } from './runtimes.js';

export type { AppConfig, HeaderReader, MountSpec } from '../fixtures/matrix-app.mjs';
export { APP_ROUTES } from '../fixtures/matrix-app.mjs';

/** A started app. */
export interface RunningServer {
  /** `http://127.0.0.1:PORT` (for the direct kind, an origin that is never connected to). */
  base: string;
  /** The TCP port (0 for the direct kind). */
  port: number;
  /**
   * How a client reaches this app when it is not over a socket (the direct kind calls the
   * handler with the `Request`); `undefined` = the global `fetch`.
   */
  fetch?: typeof fetch;
  /** Sends raw request bytes when there is no socket (see `client.ts` `rawRequest`). */
  raw?: (raw: string) => Promise<RawResponse>;
  /** Errors the app's error handling saw so far (Express error handler, Koa try/catch, …). */
  appErrors(): Promise<unknown[]>;
  /** Usage events the metered mounts reported so far (`onUsage`). */
  usage(): Promise<UsageEvent[]>;
  close(): Promise<void>;
}

export interface ServerKind {
  name: string;
  /**
   * The requests reach the handler as a Fetch `Request`, whose URL parser normalises (or
   * refuses) some request targets before any handler sees them.
   */
  viaRequest?: boolean;
  start(config: AppConfig): Promise<RunningServer>;
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

function running(
  server: Server,
  port: number,
  appErrors: unknown[],
  closeMiddleware: () => Promise<unknown>,
): RunningServer {
  return {
    base: `http://127.0.0.1:${port}`,
    port,
    appErrors: async () => appErrors,
    usage: async () => usageLog,
    async close() {
      await closeServer(server);
      await closeMiddleware();
    },
  };
}

function expressKind(name: string, express: typeof express5): ServerKind {
  return {
    name,
    async start(config) {
      const header: HeaderReader = (req, n) => (req as Request).get(n);
      const app = express();
      const appErrors: unknown[] = [];
      const middlewares = appMounts(config, header).map((m) => {
        const mw = expressDashscope(m.options);
        if (m.parseBody) app.use(m.path || '/', express.json({ limit: '1mb' }));
        app.use(m.path || '/', mw);
        return mw;
      });
      app.get(APP_ROUTES.token, async (req, res, next) => {
        try {
          res.json(tokenSummary(await req.dashscope.getToken()));
        } catch (error) {
          next(error);
        }
      });
      app.get(APP_ROUTES.hello, (_req, res) => {
        res.type('text/plain').send('hello');
      });
      app.get(APP_ROUTES.boom, () => {
        throw new Error('boom');
      });
      app.use(
        (error: unknown, _req: Request, res: express5.Response, _next: express5.NextFunction) => {
          appErrors.push(error);
          res.status(500).type('text/plain').send('boom');
        },
      );
      const server = createServer(app);
      const port = await listen(server);
      return running(server, port, appErrors, () =>
        Promise.all(middlewares.map((mw) => mw.close())),
      );
    },
  };
}

function koaKind(name: string, Koa: typeof Koa3): ServerKind {
  return {
    name,
    async start(config) {
      const header: HeaderReader = (ctx, n) => (ctx as Context).get(n) || undefined;
      const app = new Koa();
      const appErrors: unknown[] = [];
      // Upstream error handling: sees errors thrown anywhere downstream, including through us.
      app.use(async (ctx, next) => {
        try {
          await next();
        } catch (error) {
          appErrors.push(error);
          ctx.status = 500;
          ctx.type = 'text/plain';
          ctx.body = 'boom';
        }
      });
      const middlewares = appMounts(config, header).map((m) => {
        const mw = koaDashscope(m.options);
        if (m.path) {
          if (m.parseBody) app.use(mount(m.path, koaBodyParser({ jsonLimit: '1mb' })));
          app.use(mount(m.path, mw));
        } else {
          if (m.parseBody) app.use(koaBodyParser({ jsonLimit: '1mb' }));
          app.use(mw);
        }
        return mw;
      });
      app.use(async (ctx, next) => {
        if (ctx.method === 'GET' && ctx.path === APP_ROUTES.token) {
          ctx.body = tokenSummary(await ctx.state.dashscope.getToken());
        } else if (ctx.method === 'GET' && ctx.path === APP_ROUTES.hello) {
          ctx.type = 'text/plain';
          ctx.body = 'hello';
        } else if (ctx.method === 'GET' && ctx.path === APP_ROUTES.boom) {
          throw new Error('boom');
        } else {
          await next();
        }
      });
      const server = createServer(app.callback());
      const port = await listen(server);
      return running(server, port, appErrors, () =>
        Promise.all(middlewares.map((mw) => mw.close())),
      );
    },
  };
}

/**
 * Fastify: one registration of the plugin per mount, the mount path folded into its `prefix`
 * (Fastify's encapsulation does not reach hooks for unmatched URLs, so the plugin is registered
 * on the root). A `parseBody` mount needs nothing: Fastify's JSON parser is always on and never
 * runs for proxied requests.
 */
function fastifyKind(name: string, Fastify: typeof fastify5): ServerKind {
  return {
    name,
    async start(config) {
      const header: HeaderReader = (request, n) => {
        const value = (request as FastifyRequest).headers[n.toLowerCase()];
        return Array.isArray(value) ? value.join(', ') : value;
      };
      const app = Fastify({ bodyLimit: 1024 * 1024 }) as unknown as FastifyInstance;
      const appErrors: unknown[] = [];
      for (const m of appMounts(config, header)) {
        const prefix = `${m.path}${m.options.prefix ?? '/dashscope'}`;
        await app.register(fastifyDashscope, { ...m.options, prefix });
      }
      app.get(APP_ROUTES.token, async (request) =>
        tokenSummary(await request.dashscope.getToken()),
      );
      app.get(APP_ROUTES.hello, async (_request, reply) => reply.type('text/plain').send('hello'));
      app.get(APP_ROUTES.boom, async () => {
        throw new Error('boom');
      });
      app.setErrorHandler((error, _request, reply) => {
        appErrors.push(error);
        reply.code(500).type('text/plain').send('boom');
      });
      await app.ready();
      const port = await listen(app.server);
      return running(app.server, port, appErrors, () => app.close());
    },
  };
}

/** Reads and JSON-parses a request body, as a hand-written node:http body parser would. */
async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : undefined;
}

/** Plain node:http: the core handler itself, mounted by hand (strip the path, pass `url`). */
const nodeHttpKind: ServerKind = {
  name: 'node:http',
  async start(config) {
    const header: HeaderReader = (req, n) => {
      const value = (req as IncomingMessage).headers[n.toLowerCase()];
      return Array.isArray(value) ? value.join(', ') : value;
    };
    const mounts = appMounts(config, header).map((m) => ({
      ...m,
      handler: createDashScopeHandler(m.options),
    }));
    const appErrors: unknown[] = [];
    const root = mounts.find((m) => !m.path);

    async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
      const url = req.url ?? '/';
      for (const m of mounts) {
        if (!m.path) continue;
        if (url !== m.path && !url.startsWith(`${m.path}/`) && !url.startsWith(`${m.path}?`)) {
          continue;
        }
        const parsedBody =
          m.parseBody && req.headers['content-type']?.startsWith('application/json')
            ? await readJson(req)
            : undefined;
        const rest = url.slice(m.path.length);
        const handled = await m.handler.handle(req, res, {
          parsedBody,
          url: rest.startsWith('/') ? rest : `/${rest}`,
        });
        if (handled) return;
      }
      if (req.method === 'GET' && url === APP_ROUTES.token) {
        const handler = (root ?? mounts[0])!.handler;
        const token = await handler.getToken(req);
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(tokenSummary(token)));
      } else if (req.method === 'GET' && url === APP_ROUTES.hello) {
        res.setHeader('content-type', 'text/plain');
        res.end('hello');
      } else if (req.method === 'GET' && url === APP_ROUTES.boom) {
        throw new Error('boom');
      } else {
        res.statusCode = 404;
        res.end('not found');
      }
    }

    const fail = (res: ServerResponse) => (error: unknown) => {
      appErrors.push(error);
      if (!res.headersSent) {
        res.statusCode = 500;
        res.setHeader('content-type', 'text/plain');
      }
      res.end('boom');
    };
    const server = createServer((req, res) => {
      // The root instance through the node-style call signature; the rest by hand.
      if (root)
        root.handler(req, res, (error) =>
          error ? fail(res)(error) : route(req, res).catch(fail(res)),
        );
      else route(req, res).catch(fail(res));
    });
    const port = await listen(server);
    return running(server, port, appErrors, () =>
      Promise.all(mounts.map((m) => m.handler.close())),
    );
  },
};

/** The Fetch API's `Request` (not Express's). */
type WebRequest = globalThis.Request;

const requestHeader: HeaderReader = (request, n) =>
  (request as WebRequest).headers.get(n) ?? undefined;

/**
 * One fetch handler (`@dashscope-token/fetch`) per mount, the mount path in its `prefix`, and
 * the app's routes as Fetch handlers too (`fetchApp`). There is no body parser in front of it
 * (`/parsed` gets the raw body) and `authorize`/`apiKey` get the `Request`.
 */
function startFetchApp(config: AppConfig) {
  const handlers = appMounts(config, requestHeader).map((m) =>
    createFetchHandler<unknown>({
      ...m.options,
      prefix: `${m.path}${m.options.prefix ?? '/dashscope'}`,
    }),
  );
  return { ...fetchApp(handlers), close: () => Promise.all(handlers.map((h) => h.close())) };
}

/** The fetch handler served by node:http through a minimal Request/Response bridge. */
const fetchBridgeKind: ServerKind = {
  name: 'fetch (node:http bridge)',
  viaRequest: true,
  async start(config) {
    const app = startFetchApp(config);
    const server = createServer(nodeListener(app.handle, app.app));
    const port = await listen(server);
    return running(server, port, app.errors, app.close);
  },
};

/**
 * The fetch handler called directly, as Next.js calls a route handler: the suite's requests
 * become `new Request(…)` handed to it, and its `Response` is what the client reads; no socket.
 */
const fetchDirectKind: ServerKind = {
  name: 'fetch (direct calls)',
  viaRequest: true,
  async start(config) {
    const app = startFetchApp(config);
    const call: typeof fetch = (input, init) => app.fetch(new Request(input, init));
    return {
      base: 'http://direct.invalid',
      port: 0,
      fetch: call,
      raw: (raw) => rawViaRequest(call, raw),
      appErrors: async () => app.errors,
      usage: async () => usageLog,
      close: async () => {
        await app.close();
      },
    };
  },
};

/**
 * Hono 4 on `@hono/node-server`: `app.use(dashscopeToken(…))` per mount, the mount path in its
 * `prefix` (Hono does not strip it) and as the middleware's path filter; a `parseBody` mount
 * has a middleware before it that reads JSON bodies with `c.req.json()`.
 */
const honoKind: ServerKind = {
  name: 'hono (@hono/node-server)',
  viaRequest: true,
  async start(config) {
    const header: HeaderReader = (c, n) => (c as HonoContext).req.header(n);
    const app = new Hono();
    const appErrors: unknown[] = [];
    const middlewares = appMounts(config, header).map((m) => {
      const mw = honoDashscope({
        ...m.options,
        prefix: `${m.path}${m.options.prefix ?? '/dashscope'}`,
      });
      const path = m.path ? `${m.path}/*` : '*';
      if (m.parseBody) {
        app.use(path, async (c, next) => {
          if (c.req.header('content-type')?.startsWith('application/json')) await c.req.json();
          await next();
        });
      }
      app.use(path, mw);
      return mw;
    });
    app.get(APP_ROUTES.token, async (c) =>
      c.json(tokenSummary(await c.get('dashscope').getToken())),
    );
    app.get(APP_ROUTES.hello, (c) => c.text('hello'));
    app.get(APP_ROUTES.boom, () => {
      throw new Error('boom');
    });
    app.onError((error, c) => {
      appErrors.push(error);
      return c.text('boom', 500);
    });
    let server!: Server;
    const port = await new Promise<number>((resolve) => {
      server = honoServe({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) =>
        resolve(info.port),
      ) as Server;
    });
    return running(server, port, appErrors, () => Promise.all(middlewares.map((mw) => mw.close())));
  },
};

/**
 * The fetch handler served by a real runtime (`fixtures/matrix-fetch.mjs`: the same app, each
 * mount's `handler.fetch` called by `Bun.serve` / `Deno.serve` with its second argument).
 */
function runtimeKind(runtime: Runtime): ServerKind {
  return {
    name: `fetch (real ${runtime === 'bun' ? 'Bun' : 'Deno'})`,
    viaRequest: true,
    async start(config) {
      const server = await startRuntimeServer(runtime, 'matrix-fetch.mjs', {
        env: {
          MATRIX_BASE_URL: config.baseUrl,
          MATRIX_KEY_A: config.keyA,
          ...(config.paiEas && { MATRIX_PAI_EAS: JSON.stringify(config.paiEas) }),
        },
      });
      return {
        base: server.base,
        port: server.port,
        appErrors: async () =>
          (await (await fetch(`${server.base}/app/errors`)).json()) as unknown[],
        usage: async () => (await (await fetch(`${server.base}/app/usage`)).json()) as UsageEvent[],
        close: () => server.close(),
      };
    },
  };
}

/** Every server kind of the matrix. */
export const SERVER_KINDS: ServerKind[] = [
  expressKind('express 4', express4),
  expressKind('express 5', express5),
  koaKind('koa 2', Koa2),
  koaKind('koa 3', Koa3),
  fastifyKind('fastify 4', fastify4 as unknown as typeof fastify5),
  fastifyKind('fastify 5', fastify5),
  nodeHttpKind,
  honoKind,
  fetchBridgeKind,
  fetchDirectKind,
  runtimeKind('bun'),
  runtimeKind('deno'),
];
