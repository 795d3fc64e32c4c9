import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DEFAULT_EMULATOR_API_KEY, type Emulator, startEmulator } from '@dashscope-token/emulator';
import express5, { type Express } from 'express';
import express4 from 'express4';
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
  ['express 4', express4],
  ['express 5', express5],
])('%s', (_name, express) => {
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

  async function serve(app: Express): Promise<string> {
    server = createServer(app);
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  it('answers the token route itself, without calling the next middleware', async () => {
    const app = express();
    const reached: string[] = [];
    app.use(middleware());
    app.use((req, res) => {
      reached.push(req.url);
      res.status(418).end();
    });
    const base = await serve(app);
    const res = await fetch(`${base}/dashscope/token`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { token: string }).token).toMatch(/^st-/);
    expect(reached).toEqual([]);
  });

  it('passes requests outside the prefix to the next middleware', async () => {
    const app = express();
    app.use(middleware());
    app.get('/hello', (_req, res) => {
      res.send('hello');
    });
    const base = await serve(app);
    const res = await fetch(`${base}/hello`);
    expect(await res.text()).toBe('hello');
  });

  it('gives app routes req.dashscope.getToken()', async () => {
    const app = express();
    app.use(middleware());
    app.get('/expiry', async (req, res) => {
      const { token, expiresAt } = await req.dashscope.getToken();
      res.json({ live: token.startsWith('st-') && expiresAt > Date.now() / 1000 });
    });
    const base = await serve(app);
    const res = await fetch(`${base}/expiry`);
    expect(await res.json()).toEqual({ live: true });
  });

  it('passes the Express request to authorize', async () => {
    const seen: unknown[] = [];
    const app = express();
    app.use(
      middleware({
        authorize: (req) => {
          seen.push(req.get('x-user'), typeof req.get);
          return req.get('x-user') === 'ann';
        },
      }),
    );
    const base = await serve(app);
    const ok = await fetch(`${base}/dashscope/token`, {
      method: 'POST',
      headers: { 'x-user': 'ann' },
    });
    const refused = await fetch(`${base}/dashscope/token`, { method: 'POST' });
    expect([ok.status, refused.status]).toEqual([200, 403]);
    expect(seen).toEqual(['ann', 'function', undefined, 'function']);
  });

  it('serves its routes under a mount path', async () => {
    const app = express();
    app.use('/ai', middleware());
    const base = await serve(app);
    const mounted = await fetch(`${base}/ai/dashscope/token`, { method: 'POST' });
    expect(mounted.status).toBe(200);
    const unmounted = await fetch(`${base}/dashscope/token`, { method: 'POST' });
    expect(unmounted.status).toBe(404);
  });

  it('proxies a body express.json() already parsed', async () => {
    const app = express();
    app.use(express.json());
    app.use(middleware());
    const base = await serve(app);
    const res = await fetch(`${base}/dashscope/compatible-mode/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'qwen-plus',
        messages: [{ role: 'user', content: 'parsed!' }],
      }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { choices: { message: { content: string } }[] };
    expect(body.choices[0]!.message.content).toContain('parsed!');
  });

  it('hands a failure of the core handler to next(err)', async () => {
    const app = express();
    const failure = new Error('handler bug');
    handleFailure.error = failure;
    const seen: unknown[] = [];
    app.use(middleware());
    app.use((error: unknown, _req: express5.Request, res: express5.Response, _next: unknown) => {
      seen.push(error);
      res.status(500).send('handled');
    });
    const base = await serve(app);
    const res = await fetch(`${base}/dashscope/token`, { method: 'POST' });
    expect(await res.text()).toBe('handled');
    expect(seen).toEqual([failure]);
  });

  describe('per-client limits', () => {
    async function limited(trustProxy: boolean): Promise<string> {
      const app = express();
      if (trustProxy) app.set('trust proxy', 'loopback');
      app.use(middleware({ limits: { tokenRoute: { points: 1, durationSeconds: 60 } } }));
      return serve(app);
    }
    const from = (base: string, ip: string) =>
      fetch(`${base}/dashscope/token`, { method: 'POST', headers: { 'x-forwarded-for': ip } });

    it("counts each client by req.ip under the app's trust proxy", async () => {
      const base = await limited(true);
      expect((await from(base, '203.0.113.1')).status).toBe(200);
      expect((await from(base, '203.0.113.2')).status).toBe(200);
      const refused = await from(base, '203.0.113.1');
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(await refused.json()).toMatchObject({ code: 'Throttling.ClientLimit' });
      expect(mw!.handler.stats().limits?.limited.tokenRoute).toBe(1);
    });

    it('ignores X-Forwarded-For without trust proxy: one socket address, one budget', async () => {
      const base = await limited(false);
      expect((await from(base, '203.0.113.1')).status).toBe(200);
      expect((await from(base, '203.0.113.2')).status).toBe(429);
    });
  });

  describe('under a mount path, where WebSocket routes stay at {prefix} from the root', () => {
    function warnings(logger: { warn: ReturnType<typeof vi.fn> }): string[] {
      return logger.warn.mock.calls.map((call) => String(call[0]));
    }

    it('warns once, naming the prefix to set or websocket: false', async () => {
      const logger = { warn: vi.fn() };
      const app = express();
      app.use('/ai', middleware({ logger }));
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
        const app = express();
        app.use('/ai', middleware());
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
      const app = express();
      app.use(dashscopeToken({ baseUrl: emulator.url, apiKey: DEFAULT_EMULATOR_API_KEY, logger }));
      const off = dashscopeToken({ baseUrl: emulator.url, websocket: false, logger });
      const full = dashscopeToken({ baseUrl: emulator.url, prefix: '/ai/dashscope', logger });
      app.use('/off', off);
      app.use('/ai', full);
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
