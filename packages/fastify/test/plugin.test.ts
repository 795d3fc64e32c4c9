import type { AddressInfo } from 'node:net';
import { DEFAULT_EMULATOR_API_KEY, type Emulator, startEmulator } from '@dashscope-token/emulator';
import fastify5, { type FastifyInstance } from 'fastify';
import fastify4 from 'fastify4';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { type DashScopeFastifyOptions, dashscopeToken } from '../src/index.js';

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

const CHAT = '/dashscope/compatible-mode/v1/chat/completions';

let emulator: Emulator;
beforeAll(async () => {
  emulator = await startEmulator({ chunkDelayMs: 1 });
});
afterAll(async () => {
  await emulator?.close();
});

/** `open`, or the error message of a WebSocket client that could not connect. */
function upgradeOutcome(url: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = new WebSocket(url);
    socket.once('open', () => {
      socket.close();
      resolve('open');
    });
    socket.once('error', (error) => resolve(error.message));
  });
}

function chat(prompt: string) {
  return JSON.stringify({ model: 'qwen-plus', messages: [{ role: 'user', content: prompt }] });
}

describe.each([
  ['fastify 4', fastify4],
  ['fastify 5', fastify5],
])('%s', (_name, Fastify) => {
  let app: FastifyInstance | undefined;

  afterEach(async () => {
    await app?.close();
    app = undefined;
    handleFailure.error = undefined;
  });

  async function start(
    options: DashScopeFastifyOptions = {},
    routes: (app: FastifyInstance) => void = () => {},
  ): Promise<string> {
    app = Fastify() as unknown as FastifyInstance;
    await app.register(dashscopeToken, {
      baseUrl: emulator.url,
      apiKey: DEFAULT_EMULATOR_API_KEY,
      ...options,
    });
    routes(app);
    await app.listen({ port: 0, host: '127.0.0.1' });
    return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  }

  it('answers the token route itself, without reaching the app or its not-found handler', async () => {
    const reached: string[] = [];
    const base = await start({}, (app) => {
      app.setNotFoundHandler((request, reply) => {
        reached.push(request.url);
        reply.code(418).send();
      });
    });
    const res = await fetch(`${base}/dashscope/token`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { token: string }).token).toMatch(/^st-/);
    expect(reached).toEqual([]);
  });

  it('passes requests outside the prefix to the routes and the not-found handler', async () => {
    const base = await start({}, (app) => {
      app.get('/hello', async () => 'hello');
    });
    expect(await (await fetch(`${base}/hello`)).text()).toBe('hello');
    const missing = await fetch(`${base}/nothing`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { message: string }).message).toContain('not found');
  });

  it('gives routes request.dashscope.getToken() and the app app.dashscope', async () => {
    const base = await start({}, (app) => {
      app.get('/expiry', async (request) => {
        const { token, expiresAt } = await request.dashscope.getToken();
        return { live: token.startsWith('st-') && expiresAt > Date.now() / 1000 };
      });
    });
    expect(await (await fetch(`${base}/expiry`)).json()).toEqual({ live: true });
    expect(app!.dashscope.prefix).toBe('/dashscope');
  });

  it('passes the Fastify request to authorize', async () => {
    const seen: unknown[] = [];
    const base = await start({
      authorize: (request) => {
        seen.push(request.headers['x-user'], typeof request.id);
        return request.headers['x-user'] === 'ann';
      },
    });
    const ok = await fetch(`${base}/dashscope/token`, {
      method: 'POST',
      headers: { 'x-user': 'ann' },
    });
    const refused = await fetch(`${base}/dashscope/token`, { method: 'POST' });
    expect([ok.status, refused.status]).toEqual([200, 403]);
    expect(seen).toEqual(['ann', 'string', undefined, 'string']);
  });

  it('serves its routes under the prefix option', async () => {
    const base = await start({ prefix: '/ai' });
    expect((await fetch(`${base}/ai/token`, { method: 'POST' })).status).toBe(200);
    expect((await fetch(`${base}/dashscope/token`, { method: 'POST' })).status).toBe(404);
  });

  it('serves several registrations, one prefix each', async () => {
    app = Fastify() as unknown as FastifyInstance;
    for (const prefix of ['/one', '/two']) {
      await app.register(dashscopeToken, {
        baseUrl: emulator.url,
        apiKey: DEFAULT_EMULATOR_API_KEY,
        prefix,
      });
    }
    await app.listen({ port: 0, host: '127.0.0.1' });
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const statuses = await Promise.all(
      ['/one/token', '/two/token', '/three/token'].map(
        async (path) => (await fetch(`${base}${path}`, { method: 'POST' })).status,
      ),
    );
    expect(statuses).toEqual([200, 200, 404]);
    expect(app.dashscope.prefix).toBe('/one');
    expect(await upgradeOutcome(`${base.replace('http:', 'ws:')}/elsewhere`)).toMatch(
      /socket hang up|ECONNRESET/,
    );
  });

  it('lets a proxied stream in flight finish when the app closes', async () => {
    const base = await start();
    emulator.setChunkDelay(20);
    try {
      const res = await fetch(`${base}${CHAT}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ...JSON.parse(chat('stream while closing')), stream: true }),
      });
      const reader = res.body!.getReader();
      const first = await reader.read();
      const closing = app!.close();
      app = undefined;
      let text = new TextDecoder().decode(first.value);
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
        text += new TextDecoder().decode(chunk.value);
      }
      await closing;
      expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);
    } finally {
      emulator.setChunkDelay(1);
    }
  });

  it('proxies a JSON body before Fastify parses it (its parsers only see app routes)', async () => {
    const parsed: string[] = [];
    const base = await start({}, (app) => {
      app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
        parsed.push(request.url);
        done(null, JSON.parse(body as string));
      });
      app.post('/echo', async (request) => request.body);
    });
    const res = await fetch(`${base}${CHAT}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: chat('raw stream!'),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { choices: { message: { content: string } }[] };
    expect(body.choices[0]!.message.content).toContain('raw stream!');
    const echo = await fetch(`${base}/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"a":1}',
    });
    expect(await echo.json()).toEqual({ a: 1 });
    expect(parsed).toEqual(['/echo']);
  });

  it('forwards a body of a content type Fastify has no parser for (no 415)', async () => {
    emulator.clearRequests();
    const base = await start();
    const res = await fetch(`${base}${CHAT}`, {
      method: 'POST',
      headers: { 'content-type': 'text/x-unknown' },
      body: 'not json at all',
    });
    expect(res.status).not.toBe(415);
    const upstream = emulator.requests.filter((r) => r.route === 'chat');
    expect(upstream.map((r) => [r.headers['content-type'], r.body])).toEqual([
      ['text/x-unknown', 'not json at all'],
    ]);
  });

  it("hands a failure of the core handler to Fastify's error handler", async () => {
    const failure = new Error('handler bug');
    const seen: unknown[] = [];
    const base = await start({}, (app) => {
      app.setErrorHandler((error, _request, reply) => {
        seen.push(error);
        reply.code(500).send('handled');
      });
    });
    handleFailure.error = failure;
    const res = await fetch(`${base}/dashscope/token`, { method: 'POST' });
    expect(await res.text()).toBe('handled');
    expect(seen).toEqual([failure]);
  });

  it('proxies WebSocket upgrades under the prefix on its own and leaves the others to the app', async () => {
    const appSockets = new WebSocketServer({ noServer: true });
    appSockets.on('connection', (ws) => ws.send('hello from the app'));
    // The test's sessions carry no credentials: the app accepts that explicitly.
    const base = await start({ websocket: { allowUnauthenticated: true } }, (app) => {
      app.server.on('upgrade', (req, socket, head) => {
        if (req.url === '/chat') {
          appSockets.handleUpgrade(req, socket, head, (ws) => appSockets.emit('connection', ws));
        }
      });
    });
    const ws = base.replace('http:', 'ws:');
    const first = (url: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = new WebSocket(url, { headers: { origin: base } });
        socket.once('message', (data) => {
          resolve(String(data));
          socket.close();
        });
        socket.once('error', reject);
      });
    const session = JSON.parse(
      await first(`${ws}/dashscope/api-ws/v1/realtime?model=qwen-omni-turbo-realtime`),
    );
    expect(session.type).toBe('session.created');
    expect(await first(`${ws}/chat`)).toBe('hello from the app');
    appSockets.close();
  });

  it('closes an upgrade outside the prefix when nothing else listens for upgrades', async () => {
    const base = await start();
    expect(await upgradeOutcome(`${base.replace('http:', 'ws:')}/elsewhere`)).toMatch(
      /socket hang up|ECONNRESET/,
    );
  });

  it('closes the handler with the app: its upstream connections and its WebSocket sessions', async () => {
    const base = await start({ websocket: { allowUnauthenticated: true } });
    await fetch(`${base}${CHAT}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: chat('warm the pool'),
    });
    const socket = new WebSocket(
      `${base.replace('http:', 'ws:')}/dashscope/api-ws/v1/realtime?model=qwen-omni-turbo-realtime`,
      { headers: { origin: base } },
    );
    const closed = new Promise<number>((resolve) => socket.once('close', resolve));
    await new Promise((resolve) => socket.once('message', resolve));
    const handler = app!.dashscope;
    expect(handler.stats().upstream?.connected).toBeGreaterThan(0);
    await app!.close();
    app = undefined;
    expect(await closed).toBe(1001);
    expect(handler.stats().upstream?.connected).toBe(0);
  });
});
