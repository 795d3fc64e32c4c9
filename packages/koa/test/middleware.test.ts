import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DEFAULT_EMULATOR_API_KEY, type Emulator, startEmulator } from '@dashscope-token/emulator';
import Koa3 from 'koa';
import mount from 'koa-mount';
import Koa2 from 'koa2';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { type DashScopeMiddleware, dashscopeToken } from '../src/index.js';

/** Lets a test make the core handler's `handle()` reject (it only does so on a bug). */
const handleFailure = vi.hoisted(() => ({ error: undefined as Error | undefined }));
vi.mock('@dashscope-token/core', async (importOriginal) => {
  const core = await importOriginal<typeof import('@dashscope-token/core')>();
  return {
    ...core,
    createDashScopeHandler: (options: Parameters<typeof core.createDashScopeHandler>[0]) => {
      const real = core.createDashScopeHandler(options);
      const handle: typeof real.handle = (...args) =>
        handleFailure.error ? Promise.reject(handleFailure.error) : real.handle(...args);
      return Object.assign(real.bind(null), { ...real, handle });
    },
  };
});

let emulator: Emulator;
beforeAll(async () => {
  emulator = await startEmulator({ chunkDelayMs: 1 });
});
afterAll(async () => {
  await emulator?.close();
});

describe.each([
  ['koa 2', Koa2],
  ['koa 3', Koa3],
])('%s', (_name, Koa) => {
  let server: Server | undefined;
  let mw: DashScopeMiddleware | undefined;

  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
    await mw?.close();
    server = undefined;
    mw = undefined;
    handleFailure.error = undefined;
  });

  function middleware(options: Parameters<typeof dashscopeToken>[0] = {}): DashScopeMiddleware {
    mw = dashscopeToken({ baseUrl: emulator.url, apiKey: DEFAULT_EMULATOR_API_KEY, ...options });
    return mw;
  }

  async function serve(app: Koa3): Promise<string> {
    server = createServer(app.callback());
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  it('answers the token route itself, without calling the next middleware', async () => {
    const app = new Koa();
    const reached: string[] = [];
    app.use(middleware());
    app.use((ctx) => {
      reached.push(ctx.url);
      ctx.status = 418;
    });
    const base = await serve(app);
    const res = await fetch(`${base}/dashscope/token`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { token: string }).token).toMatch(/^st-/);
    expect(reached).toEqual([]);
  });

  it('passes requests outside the prefix to the next middleware', async () => {
    const app = new Koa();
    app.use(middleware());
    app.use((ctx) => {
      ctx.body = `hello ${ctx.path}`;
    });
    const base = await serve(app);
    const res = await fetch(`${base}/hello`);
    expect(await res.text()).toBe('hello /hello');
  });

  it('gives later middleware ctx.state.dashscope.getToken()', async () => {
    const app = new Koa();
    app.use(middleware());
    app.use(async (ctx) => {
      const { token, expiresAt } = await ctx.state.dashscope.getToken();
      ctx.body = { live: token.startsWith('st-') && expiresAt > Date.now() / 1000 };
    });
    const base = await serve(app);
    const res = await fetch(`${base}/expiry`);
    expect(await res.json()).toEqual({ live: true });
  });

  it('passes the Koa context to authorize and apiKey', async () => {
    const seen: unknown[] = [];
    const app = new Koa();
    app.use(async (ctx, next) => {
      ctx.state.user = ctx.get('x-user') || undefined;
      await next();
    });
    app.use(
      middleware({
        authorize: (ctx) => {
          seen.push(ctx.state.user);
          return Boolean(ctx.state.user);
        },
        apiKey: (ctx) => (ctx.state.user === 'ann' ? DEFAULT_EMULATOR_API_KEY : undefined),
      }),
    );
    const base = await serve(app);
    const ok = await fetch(`${base}/dashscope/token`, {
      method: 'POST',
      headers: { 'x-user': 'ann' },
    });
    const refused = await fetch(`${base}/dashscope/token`, { method: 'POST' });
    expect([ok.status, refused.status]).toEqual([200, 403]);
    expect(seen).toEqual(['ann', undefined]);
  });

  it('lets downstream errors travel up through it', async () => {
    const app = new Koa();
    const seen: unknown[] = [];
    app.use(async (ctx, next) => {
      try {
        await next();
      } catch (error) {
        seen.push(error);
        ctx.status = 500;
        ctx.body = 'handled';
      }
    });
    app.use(middleware());
    app.use(() => {
      throw new Error('downstream');
    });
    const base = await serve(app);
    const res = await fetch(`${base}/anything`);
    expect(await res.text()).toBe('handled');
    expect(seen).toMatchObject([{ message: 'downstream' }]);
  });

  it("throws a failure of the core handler into Koa's chain", async () => {
    const app = new Koa();
    const failure = new Error('handler bug');
    handleFailure.error = failure;
    const seen: unknown[] = [];
    app.use(async (ctx, next) => {
      try {
        await next();
      } catch (error) {
        seen.push(error);
        ctx.status = 500;
        ctx.body = 'handled';
      }
    });
    app.use(middleware());
    const base = await serve(app);
    const res = await fetch(`${base}/dashscope/token`, { method: 'POST' });
    expect(await res.text()).toBe('handled');
    expect(seen).toEqual([failure]);
  });

  describe('under a mount path, where WebSocket routes stay at {prefix} from the root', () => {
    function warnings(logger: { warn: ReturnType<typeof vi.fn> }): string[] {
      return logger.warn.mock.calls.map((call) => String(call[0]));
    }

    it('warns once, naming the prefix to set or websocket: false', async () => {
      const logger = { warn: vi.fn() };
      const app = new Koa();
      app.use(mount('/ai', middleware({ logger })));
      const base = await serve(app);
      expect((await fetch(`${base}/ai/dashscope/token`, { method: 'POST' })).status).toBe(200);
      expect((await fetch(`${base}/ai/dashscope/token`, { method: 'POST' })).status).toBe(200);
      const lines = warnings(logger);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain("prefix: '/ai/dashscope'");
      expect(lines[0]).toContain('websocket: false');
    });

    it('warns through console.warn when there is no logger', async () => {
      const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
      try {
        const app = new Koa();
        app.use(mount('/ai', middleware()));
        const base = await serve(app);
        await fetch(`${base}/ai/dashscope/token`, { method: 'POST' });
        expect(warn.mock.calls.map((call) => String(call[0]))).toEqual([
          expect.stringContaining("prefix: '/ai/dashscope'"),
        ]);
      } finally {
        warn.mockRestore();
      }
    });

    it('does not warn at the root, with websocket: false, or with a prefix that includes it', async () => {
      const logger = { warn: vi.fn() };
      const app = new Koa();
      app.use(dashscopeToken({ baseUrl: emulator.url, apiKey: DEFAULT_EMULATOR_API_KEY, logger }));
      const off = dashscopeToken({ baseUrl: emulator.url, websocket: false, logger });
      const full = dashscopeToken({ baseUrl: emulator.url, prefix: '/ai/dashscope', logger });
      app.use(mount('/off', off));
      app.use(mount('/ai', full));
      try {
        const base = await serve(app);
        expect((await fetch(`${base}/dashscope/token`, { method: 'POST' })).status).toBe(200);
        await fetch(`${base}/off/anything`);
        await fetch(`${base}/ai/anything`);
        expect(warnings(logger)).toEqual([]);
      } finally {
        await Promise.all([off.close(), full.close()]);
      }
    });
  });
});
