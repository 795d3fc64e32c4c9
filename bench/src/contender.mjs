/**
 * One contender in its own process: `node contender.mjs <name> <upstreamUrl>`. Listens on
 * 127.0.0.1 (a free port) and reports `{ready, url, path}` to the orchestrator; answers `mem`
 * (RSS after a GC, when started with `--expose-gc`) and `tokenStats` (mints seen by the
 * dashscope-token contenders' cache).
 *
 * Every proxy forwards `POST {PREFIX}/compatible-mode/v1/chat/completions` to the upstream's
 * `/compatible-mode/v1/chat/completions` with an `Authorization` header injected:
 * HPM, Fastify and Hono inject a fixed `Bearer st-…` (what people write today), ours gets its key from
 * the upstream's token endpoint (minted once, then cached).
 */
import http from 'node:http';
import { serveParent } from './ipc.mjs';
import {
  BENCH_API_KEY,
  FIXED_AUTHORIZATION,
  PREFIX,
  PROXY_PATH,
  STREAM_USAGE,
  UPSTREAM_PATH,
} from './workload.mjs';

const [fullName, upstream] = process.argv.slice(2);
// `node-ours:<file>` (likewise `express-ours:<file>`, `koa-ours:<file>`, `fastify-ours:<file>`,
// `hono-ours:<file>`) runs the contender
// against another build of the package it uses (core, or the adapter), e.g. a saved copy of
// packages/core/dist/index.js: A/B comparisons of an optimisation.
const [name, otherBuild] = fullName.split(/:(.*)/s);
const ours = (pkg) =>
  import(otherBuild ? new URL(otherBuild, `file://${process.cwd()}/`).href : pkg);

/** Fastify 5 without a logger on a plain `node:http` server of ours (not listening yet). */
async function fastifyApp() {
  const { default: Fastify } = await import('fastify');
  let server;
  const app = Fastify({
    logger: false,
    serverFactory(handler) {
      server = http.createServer(handler);
      return server;
    },
  });
  return { app, server };
}

/** Counts the streams metering reported: complete, with their usage (not the warm-up's JSON answers). */
function streamCounter() {
  const counter = {
    events: 0,
    onUsage: (event) => {
      if (event.complete && event.totalTokens === STREAM_USAGE.total_tokens) counter.events++;
    },
  };
  return counter;
}

/** The options of a metered contender: `onUsage` (counting) and `meterStreams`. */
function meteredOptions(counter) {
  return { apiKey: BENCH_API_KEY, baseUrl: upstream, meterStreams: true, onUsage: counter.onUsage };
}

/**
 * Contender builders: each returns `{server, tokenStats?, usageEvents?}` (a `node:http` server,
 * not listening).
 */
const builders = {
  /** Express + http-proxy-middleware, key injected in `on.proxyReq`. */
  async 'express-hpm'() {
    const { default: express } = await import('express');
    const { createProxyMiddleware } = await import('http-proxy-middleware');
    const app = express();
    app.disable('x-powered-by');
    app.use(
      PREFIX,
      createProxyMiddleware({
        target: upstream,
        changeOrigin: true,
        on: {
          proxyReq(proxyReq) {
            proxyReq.setHeader('authorization', FIXED_AUTHORIZATION);
          },
        },
      }),
    );
    return { server: http.createServer(app) };
  },

  /** Fastify + @fastify/http-proxy, key injected with `rewriteRequestHeaders`. */
  async 'fastify-proxy'() {
    const { app, server } = await fastifyApp();
    const { default: proxy } = await import('@fastify/http-proxy');
    await app.register(proxy, {
      upstream,
      prefix: PREFIX,
      replyOptions: {
        rewriteRequestHeaders: (_req, headers) => ({
          ...headers,
          authorization: FIXED_AUTHORIZATION,
        }),
      },
    });
    await app.ready();
    return { server };
  },

  /** Hono 4 + its own `proxy()` helper (`hono/proxy`) on @hono/node-server, key in the headers. */
  async 'hono-proxy'() {
    const { Hono } = await import('hono');
    const { proxy } = await import('hono/proxy');
    const { createAdaptorServer } = await import('@hono/node-server');
    const app = new Hono();
    // As in Hono's documentation: the request forwarded with its body (`...c.req`), the host
    // dropped, the key set. (The bench request has no query string.)
    app.all(`${PREFIX}/*`, (c) =>
      proxy(`${upstream}${c.req.path.slice(PREFIX.length)}`, {
        ...c.req,
        headers: { ...c.req.header(), host: undefined, authorization: FIXED_AUTHORIZATION },
      }),
    );
    return { server: createAdaptorServer({ fetch: app.fetch }) };
  },

  /** Hono 4 + @dashscope-token/hono (`app.use(dashscopeToken())`, the fetch handler) on @hono/node-server. */
  async 'hono-ours'() {
    const { Hono } = await import('hono');
    const { createAdaptorServer } = await import('@hono/node-server');
    const { dashscopeToken } = await ours('@dashscope-token/hono');
    const middleware = dashscopeToken({ apiKey: BENCH_API_KEY, baseUrl: upstream, limits: false });
    const app = new Hono();
    app.use(middleware);
    return {
      server: createAdaptorServer({ fetch: app.fetch }),
      tokenStats: () => middleware.handler.provider.stats(),
    };
  },

  /**
   * `hono-ours` with metering on (`onUsage` counting events, `meterStreams`): the Fetch
   * executor's metering path. A reference (`--only`).
   */
  async 'hono-ours-metered'() {
    const { Hono } = await import('hono');
    const { createAdaptorServer } = await import('@hono/node-server');
    const { dashscopeToken } = await ours('@dashscope-token/hono');
    const counter = streamCounter();
    const middleware = dashscopeToken({ ...meteredOptions(counter), limits: false });
    const app = new Hono();
    app.use(middleware);
    return {
      server: createAdaptorServer({ fetch: app.fetch }),
      tokenStats: () => middleware.handler.provider.stats(),
      usageEvents: () => counter.events,
    };
  },

  /** Fastify + @dashscope-token/fastify (`app.register(dashscopeToken)`). */
  async 'fastify-ours'() {
    const { app, server } = await fastifyApp();
    const { dashscopeToken } = await ours('@dashscope-token/fastify');
    await app.register(dashscopeToken, { apiKey: BENCH_API_KEY, baseUrl: upstream, limits: false });
    await app.ready();
    return { server, tokenStats: () => app.dashscope.provider.stats() };
  },

  /** Express + @dashscope-token/express. */
  async 'express-ours'() {
    const { default: express } = await import('express');
    const { dashscopeToken } = await ours('@dashscope-token/express');
    const app = express();
    app.disable('x-powered-by');
    const middleware = dashscopeToken({ apiKey: BENCH_API_KEY, baseUrl: upstream, limits: false });
    app.use(middleware);
    return {
      server: http.createServer(app),
      tokenStats: () => middleware.handler.provider.stats(),
    };
  },

  /** Koa + @dashscope-token/koa. */
  async 'koa-ours'() {
    const { default: Koa } = await import('koa');
    const { dashscopeToken } = await ours('@dashscope-token/koa');
    const app = new Koa();
    const middleware = dashscopeToken({ apiKey: BENCH_API_KEY, baseUrl: upstream, limits: false });
    app.use(middleware);
    return {
      server: http.createServer(app.callback()),
      tokenStats: () => middleware.handler.provider.stats(),
    };
  },

  /** node:http + createDashScopeHandler. */
  async 'node-ours'() {
    const { createDashScopeHandler } = await ours('@dashscope-token/core');
    // The load comes from one client (127.0.0.1): the per-client limits are off here, and
    // measured on in 'node-ours-limits'.
    const handler = createDashScopeHandler({
      apiKey: BENCH_API_KEY,
      baseUrl: upstream,
      limits: false,
    });
    return { server: http.createServer(handler), tokenStats: () => handler.provider.stats() };
  },

  /**
   * node:http + createDashScopeHandler with usage metering on: `onUsage` (counting events) and
   * `meterStreams` (streams ask upstream for usage, the usage chunk is taken out for the
   * client), the heaviest metering path: every answer is read, every SSE event scanned.
   */
  async 'node-ours-metered'() {
    const { createDashScopeHandler } = await ours('@dashscope-token/core');
    const counter = streamCounter();
    const handler = createDashScopeHandler({ ...meteredOptions(counter), limits: false });
    return {
      server: http.createServer(handler),
      tokenStats: () => handler.provider.stats(),
      usageEvents: () => counter.events,
    };
  },

  /**
   * node:http + createDashScopeHandler with the per-client limits on (in memory), the proxy's
   * budget and the requests in progress per client too large to trip (the load's 50
   * connections are one client): what counting every request costs.
   */
  async 'node-ours-limits'() {
    const { createDashScopeHandler } = await ours('@dashscope-token/core');
    const handler = createDashScopeHandler({
      apiKey: BENCH_API_KEY,
      baseUrl: upstream,
      limits: { proxy: { points: 1_000_000_000, durationSeconds: 60 }, concurrentRequests: 1_000 },
    });
    return { server: http.createServer(handler), tokenStats: () => handler.provider.stats() };
  },

  // ---- References (not in the default set; `--only` selects them) ----

  /** Express 5 answering a fixed body: the ceiling for anything inside Express. */
  async 'express-hello'() {
    const { default: express } = await import('express');
    const app = express();
    app.disable('x-powered-by');
    const body = Buffer.from('{"ok":true}');
    app.post(PROXY_PATH, (req, res) => {
      req.resume();
      req.on('end', () => {
        res.set('content-type', 'application/json');
        res.end(body);
      });
    });
    return { server: http.createServer(app) };
  },

  /**
   * A bare undici `Pool` proxy on node:http (`dispatch` straight into `res`, fixed key, no
   * checks at all): what the transport alone costs.
   */
  async 'node-undici'() {
    const { Pool } = await import('undici');
    const pool = new Pool(upstream, { connections: 128 });
    const server = http.createServer((req, res) => {
      if (!req.url.startsWith(PREFIX)) {
        res.statusCode = 404;
        res.end();
        return;
      }
      const headers = [];
      const raw = req.rawHeaders;
      for (let i = 0; i < raw.length; i += 2) {
        const lower = raw[i].toLowerCase();
        if (lower !== 'host' && lower !== 'connection' && lower !== 'authorization') {
          headers.push(raw[i], raw[i + 1]);
        }
      }
      headers.push('authorization', FIXED_AUTHORIZATION);
      pool.dispatch(
        { path: req.url.slice(PREFIX.length), method: req.method, headers, body: req },
        {
          onRequestStart() {},
          onResponseStart(_c, status, resHeaders) {
            const flat = [];
            for (const key in resHeaders) {
              if (key !== 'connection' && key !== 'keep-alive' && key !== 'transfer-encoding') {
                flat.push(key, resHeaders[key]);
              }
            }
            res.writeHead(status, flat);
          },
          onResponseData(_c, chunk) {
            res.write(chunk);
          },
          onResponseEnd() {
            res.end();
          },
          onResponseError() {
            res.destroy();
          },
        },
      );
    });
    return { server };
  },
};

const build = builders[name];
if (build === undefined) {
  console.error(`unknown contender ${name}; known: ${Object.keys(builders).join(', ')}`);
  process.exit(2);
}
const { server, tokenStats, usageEvents } = await build();
server.keepAliveTimeout = 60_000;
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address();

serveParent(
  {
    mem() {
      if (typeof globalThis.gc === 'function') {
        globalThis.gc();
        globalThis.gc();
      }
      const { rss, heapUsed } = process.memoryUsage();
      return { rss, heapUsed };
    },
    tokenStats: () => (tokenStats === undefined ? null : tokenStats()),
    /** Usage events `onUsage` got so far (`null`: the contender does not meter). */
    usageEvents: () => (usageEvents === undefined ? null : usageEvents()),
  },
  { url: `http://127.0.0.1:${port}`, path: PROXY_PATH, upstreamPath: UPSTREAM_PATH },
);
