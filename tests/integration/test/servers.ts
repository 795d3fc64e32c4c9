/**
 * One factory per server kind (Express 4, Express 5, Koa 2, Koa 3, Fastify 4, Fastify 5, plain
 * node:http, the fetch handler behind a node:http bridge), each
 * starting the same app on 127.0.0.1:0: the DashScope middleware mounted at the root and
 * under extra mount paths (one of them behind a JSON body parser), plus a few app routes
 * that use `getToken()` and show that other middleware keeps working.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  createDashScopeHandler,
  type DashScopeHandler,
  type DashScopeHandlerOptions,
} from '@dashscope-token/core';
import { dashscopeToken as expressDashscope } from '@dashscope-token/express';
import { dashscopeToken as fastifyDashscope } from '@dashscope-token/fastify';
import { createFetchHandler, type FetchHandler } from '@dashscope-token/fetch';
import { dashscopeToken as koaDashscope } from '@dashscope-token/koa';
import { bodyParser as koaBodyParser } from '@koa/bodyparser';
import type { Request } from 'express';
import express5 from 'express';
import express4 from 'express4';
import fastify5, { type FastifyInstance, type FastifyRequest } from 'fastify';
import fastify4 from 'fastify4';
import type { Context } from 'koa';
import Koa3 from 'koa';
import mount from 'koa-mount';
import Koa2 from 'koa2';
import { nodeListener } from '../../../packages/fetch/test/node-bridge.js';

/** Reads a request header through the framework's own context object (req or ctx). */
export type HeaderReader = (ctx: unknown, name: string) => string | undefined;

/** One instance of the middleware. */
export interface MountSpec {
  /** Framework mount path (`app.use(path, mw)`, `koa-mount`); `''` = the root. */
  path: '' | `/${string}`;
  /** Put the framework's JSON body parser in front of the middleware. */
  parseBody?: boolean;
  // biome-ignore lint/suspicious/noExplicitAny: the context type differs per framework.
  options: DashScopeHandlerOptions<any>;
}

/** What the shared suite asks every server kind to serve. */
export type AppSpec = (header: HeaderReader) => MountSpec[];

/** A started app. */
export interface RunningServer {
  /** `http://127.0.0.1:PORT` */
  base: string;
  port: number;
  /** The handlers, in the order of the mounts. */
  handlers: (DashScopeHandler<unknown> | FetchHandler<unknown>)[];
  /** Errors the app's error handling saw (Express error handler, Koa try/catch). */
  appErrors: unknown[];
  close(): Promise<void>;
}

export interface ServerKind {
  name: string;
  start(spec: AppSpec): Promise<RunningServer>;
}

/**
 * App routes served by every kind:
 * - `GET /app/token` → `{ token_prefix, expires_at }` from `req.dashscope.getToken()` /
 *   `ctx.state.dashscope.getToken()` (the token itself stays on the server).
 * - `GET /app/hello` → `hello` (requests outside the prefix fall through).
 * - `GET /app/boom` → the route throws; the app's error handling answers 500 `boom`.
 */
export const APP_ROUTES = { token: '/app/token', hello: '/app/hello', boom: '/app/boom' };

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
  handlers: RunningServer['handlers'],
  appErrors: unknown[],
  closeMiddleware: () => Promise<unknown>,
): RunningServer {
  return {
    base: `http://127.0.0.1:${port}`,
    port,
    handlers,
    appErrors,
    async close() {
      await closeServer(server);
      await closeMiddleware();
    },
  };
}

function tokenSummary(token: { token: string; expiresAt: number }) {
  return { token_prefix: token.token.slice(0, 3), expires_at: token.expiresAt };
}

function expressKind(name: string, express: typeof express5): ServerKind {
  return {
    name,
    async start(spec) {
      const header: HeaderReader = (req, n) => (req as Request).get(n);
      const app = express();
      const appErrors: unknown[] = [];
      const middlewares = spec(header).map((m) => {
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
      return running(
        server,
        port,
        middlewares.map((mw) => mw.handler as DashScopeHandler<unknown>),
        appErrors,
        () => Promise.all(middlewares.map((mw) => mw.close())),
      );
    },
  };
}

function koaKind(name: string, Koa: typeof Koa3): ServerKind {
  return {
    name,
    async start(spec) {
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
      const middlewares = spec(header).map((m) => {
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
      return running(
        server,
        port,
        middlewares.map((mw) => mw.handler as DashScopeHandler<unknown>),
        appErrors,
        () => Promise.all(middlewares.map((mw) => mw.close())),
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
    async start(spec) {
      const header: HeaderReader = (request, n) => {
        const value = (request as FastifyRequest).headers[n.toLowerCase()];
        return Array.isArray(value) ? value.join(', ') : value;
      };
      const app = Fastify({ bodyLimit: 1024 * 1024 }) as unknown as FastifyInstance;
      const appErrors: unknown[] = [];
      for (const m of spec(header)) {
        const prefix = `${m.path}${m.options.prefix ?? '/dashscope'}`;
        await app.register(fastifyDashscope, { ...m.options, prefix });
      }
      // `app.dashscope` is the first registration's handler (the root mount's).
      const handlers = [app.dashscope as DashScopeHandler<unknown>];
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
      return running(app.server, port, handlers, appErrors, () => app.close());
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
  async start(spec) {
    const header: HeaderReader = (req, n) => {
      const value = (req as IncomingMessage).headers[n.toLowerCase()];
      return Array.isArray(value) ? value.join(', ') : value;
    };
    const mounts = spec(header).map((m) => ({ ...m, handler: createDashScopeHandler(m.options) }));
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
    return running(
      server,
      port,
      mounts.map((m) => m.handler as DashScopeHandler<unknown>),
      appErrors,
      () => Promise.all(mounts.map((m) => m.handler.close())),
    );
  },
};

/** The Fetch API's `Request` (not Express's). */
type WebRequest = globalThis.Request;

/**
 * The fetch handler (`@dashscope-token/fetch`), one per mount with the mount path in its
 * `prefix`, served by node:http through a minimal Request/Response bridge; the app's own
 * routes are Fetch handlers too. There is no body parser in front of it (`/parsed` gets the
 * raw body) and `authorize`/`apiKey` get the `Request`.
 */
const fetchKind: ServerKind = {
  name: 'fetch (node:http bridge)',
  async start(spec) {
    const header: HeaderReader = (request, n) =>
      (request as WebRequest).headers.get(n) ?? undefined;
    const mounts = spec(header).map((m) =>
      createFetchHandler<unknown>({
        ...m.options,
        prefix: `${m.path}${m.options.prefix ?? '/dashscope'}`,
      }),
    );
    const appErrors: unknown[] = [];
    const root = mounts[0]!;
    async function routes(request: WebRequest): Promise<Response> {
      const path = new URL(request.url).pathname;
      if (request.method === 'GET' && path === APP_ROUTES.token) {
        return Response.json(tokenSummary(await root.getToken(request)));
      }
      if (request.method === 'GET' && path === APP_ROUTES.hello) {
        return new Response('hello', { headers: { 'content-type': 'text/plain' } });
      }
      if (request.method === 'GET' && path === APP_ROUTES.boom) throw new Error('boom');
      return new Response('not found', { status: 404 });
    }
    async function app(request: WebRequest): Promise<Response> {
      try {
        return await routes(request);
      } catch (error) {
        appErrors.push(error);
        return new Response('boom', { status: 500, headers: { 'content-type': 'text/plain' } });
      }
    }
    async function handle(request: WebRequest): Promise<Response | undefined> {
      for (const handler of mounts) {
        const response = await handler.handle(request);
        if (response !== undefined) return response;
      }
      return undefined;
    }
    const server = createServer(nodeListener(handle, app));
    const port = await listen(server);
    return running(server, port, mounts, appErrors, () =>
      Promise.all(mounts.map((m) => m.close())),
    );
  },
};

/** Every server kind of the matrix. */
export const SERVER_KINDS: ServerKind[] = [
  expressKind('express 4', express4),
  expressKind('express 5', express5),
  koaKind('koa 2', Koa2),
  koaKind('koa 3', Koa3),
  fastifyKind('fastify 4', fastify4 as unknown as typeof fastify5),
  fastifyKind('fastify 5', fastify5),
  nodeHttpKind,
  fetchKind,
];
