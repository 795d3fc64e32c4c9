/**
 * `app.use(dashscopeToken(options))` in a Hono 4 app in front of the real emulator: through
 * `app.request()` (no sockets) and served by `@hono/node-server` (streaming, aborts, upgrades).
 */
import { request as httpRequest } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { type Emulator, startEmulator } from '@dashscope-token/emulator';
import { serve } from '@hono/node-server';
import { type Context, Hono } from 'hono';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type DashScopeHonoOptions,
  type DashScopeMiddleware,
  dashscopeToken,
} from '../src/index.js';

const KEY_A = 'sk-hono-test-tenant-a-Qz7Vb2Nm5Kx8';
const KEY_B = 'sk-hono-test-tenant-b-Hw4Jt9Rc3Ld6';
const CHAT = '/compatible-mode/v1/chat/completions';
const chat = (content: string, extra: Record<string, unknown> = {}) => ({
  model: 'qwen-plus',
  messages: [{ role: 'user', content }],
  ...extra,
});

/** Every answer body seen, to check at the end that no permanent key reached a client. */
const seen: string[] = [];
let emulator: Emulator;
const middlewares: DashScopeMiddleware[] = [];

beforeAll(async () => {
  emulator = await startEmulator({ apiKeys: [KEY_A, KEY_B], chunkDelayMs: 5 });
});

afterEach(async () => {
  await Promise.all(middlewares.splice(0).map((mw) => mw.close()));
});

afterAll(async () => {
  await emulator?.close();
  const all = seen.join('\n');
  expect(all.includes(KEY_A) || all.includes(KEY_B), 'a permanent key reached a client').toBe(
    false,
  );
});

function mw(options: DashScopeHonoOptions = {}): DashScopeMiddleware {
  const m = dashscopeToken({ baseUrl: emulator.url, apiKey: KEY_A, retry: false, ...options });
  middlewares.push(m);
  return m;
}

async function text(res: Response): Promise<string> {
  const body = await res.text();
  seen.push(`${res.status} ${JSON.stringify([...res.headers])} ${body}`);
  return body;
}

const post = (body: unknown, headers: Record<string, string> = {}): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify(body),
});

describe('app.request()', () => {
  it('vends a temporary key on POST /dashscope/token', async () => {
    const app = new Hono().use(mw());
    const res = await app.request('/dashscope/token', { method: 'POST' });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toContain('no-store');
    expect(JSON.parse(await text(res))).toMatchObject({ token: expect.stringMatching(/^st-/) });
  });

  it('proxies a chat completion with an injected st- key and not the client credentials', async () => {
    const app = new Hono().use(mw());
    const res = await app.request(
      `/dashscope${CHAT}`,
      post(chat('hono proxied'), { authorization: 'Bearer client-credential-0123456789' }),
    );
    expect(res.status).toBe(200);
    expect(await text(res)).toContain('hono proxied');
    const upstream = emulator.requests.findLast((r) => r.body.includes('hono proxied'))!;
    expect(upstream.headers.authorization).toMatch(/^Bearer st-/);
  });

  it("lets requests outside the prefix through to the app's routes, with c.get('dashscope')", async () => {
    const app = new Hono()
      .use(mw())
      .get('/hello', (c) => c.text('hello'))
      .get('/mine', async (c) => {
        const token = await c.get('dashscope').getToken();
        return c.json({ prefix: token.token.slice(0, 3) });
      });
    expect(await text(await app.request('/hello'))).toBe('hello');
    expect(JSON.parse(await text(await app.request('/mine')))).toEqual({ prefix: 'st-' });
  });

  it('gives apiKey and authorize the Hono Context', async () => {
    const app = new Hono().use(
      mw({
        apiKey: (c: Context) => (c.req.header('x-tenant') === 'b' ? KEY_B : KEY_A),
        authorize: (c: Context) => c.req.header('x-deny') === undefined,
      }),
    );
    const before = emulator.requests.length;
    const res = await app.request('/dashscope/token', {
      method: 'POST',
      headers: { 'x-tenant': 'b' },
    });
    expect(res.status).toBe(200);
    await text(res);
    const mints = emulator.requests.slice(before).filter((r) => r.route === 'tokens');
    expect(mints.map((r) => r.headers.authorization)).toEqual([`Bearer ${KEY_B}`]);
    const denied = await app.request('/dashscope/token', {
      method: 'POST',
      headers: { 'x-deny': '1' },
    });
    expect(denied.status).toBe(403);
    await text(denied);
  });

  it('needs the full path as prefix: Hono does not strip app.route() mount paths', async () => {
    const full = new Hono().route('/ai', new Hono().use(mw({ prefix: '/ai/dashscope' })));
    const res = await full.request('/ai/dashscope/token', { method: 'POST' });
    expect(res.status).toBe(200);
    await text(res);
    const relative = new Hono()
      .route('/ai', new Hono().use(mw()))
      .notFound((c) => c.text('app 404', 404));
    const missed = await relative.request('/ai/dashscope/token', { method: 'POST' });
    expect(await text(missed)).toBe('app 404');
  });

  it('proxies a body a middleware before it already read with c.req.json()', async () => {
    const app = new Hono()
      .use(async (c, next) => {
        if (c.req.method === 'POST') await c.req.json();
        await next();
      })
      .use(mw());
    const sent = chat('read before us', { temperature: 0.5 });
    const res = await app.request(`/dashscope${CHAT}`, post(sent));
    expect(res.status).toBe(200);
    expect(await text(res)).toContain('read before us');
    const upstream = emulator.requests.findLast((r) => r.body.includes('read before us'))!;
    expect(JSON.parse(upstream.body)).toEqual(sent);
  });

  it('answers a WebSocket upgrade on the WebSocket routes with 501, connecting nothing', async () => {
    const app = new Hono().use(mw());
    const before = emulator.requests.length;
    const res = await app.request('/dashscope/api-ws/v1/inference', {
      headers: { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-version': '13' },
    });
    expect(res.status).toBe(501);
    expect(JSON.parse(await text(res))).toMatchObject({ code: 'NotImplemented' });
    expect(emulator.requests.length).toBe(before);
  });

  it('exposes the fetch handler and closes it', async () => {
    const m = mw();
    expect(m.handler.prefix).toBe('/dashscope');
    expect((await m.handler.getToken()).token).toMatch(/^st-/);
    await m.close();
    expect(m.handler.stats().activeRequests).toBe(0);
  });
});

describe('@hono/node-server', () => {
  let base: string;
  let port: number;
  let server: ReturnType<typeof serve>;
  beforeAll(async () => {
    const app = new Hono().use(mw()).get('/hello', (c) => c.text('hello'));
    port = await new Promise<number>((resolve) => {
      server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info: AddressInfo) =>
        resolve(info.port),
      );
    });
    base = `http://127.0.0.1:${port}`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('relays SSE as it is produced and aborts upstream when the client goes away', async () => {
    emulator.setChunkDelay(60_000);
    const controller = new AbortController();
    try {
      const res = await fetch(`${base}/dashscope${CHAT}`, {
        ...post(chat('hono sse', { stream: true })),
        signal: controller.signal,
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
      const reader = res.body!.getReader();
      const first = new TextDecoder().decode((await reader.read()).value);
      expect(first).toMatch(/^data: \{/);
      const upstream = emulator.requests.findLast((r) => r.body.includes('hono sse'))!;
      expect(upstream.clientClosedEarly).toBe(false);
      controller.abort();
      await reader.cancel().catch(() => {});
      const closed = await emulator.waitForRequest(
        (r) => r.id === upstream.id && r.clientClosedEarly,
        10_000,
      );
      expect(closed.clientClosedEarly).toBe(true);
    } finally {
      emulator.setChunkDelay(5);
    }
  });

  it('refuses an absolute-form target with credentials (no Request can carry it) with 400', async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () =>
        socket.end(
          'GET http://user:pass@evil.example/dashscope/compatible-mode/v1/models HTTP/1.1\r\n' +
            'Host: 127.0.0.1\r\nConnection: close\r\n\r\n',
        ),
      );
      let text = '';
      socket.on('data', (chunk) => {
        text += chunk;
      });
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    seen.push(answer);
  });

  it('answers a WebSocket upgrade request on a WebSocket route with 501', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${base}/dashscope/api-ws/v1/inference`, {
        headers: { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-version': '13' },
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('upgrade', () => resolve(101));
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(501);
  });
});

describe('per-client limits on @hono/node-server', () => {
  it('keys per-client limits by the socket address @hono/node-server passes in c.env', async () => {
    const limited = mw({ limits: { tokenRoute: { points: 1, durationSeconds: 60 } } });
    const app = new Hono().use(limited);
    let limitedServer!: ReturnType<typeof serve>;
    const limitedPort = await new Promise<number>((resolve) => {
      limitedServer = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) =>
        resolve(info.port),
      );
    });
    // Two clients on two loopback addresses: each has a budget of its own.
    const post = (localAddress: string) =>
      new Promise<number>((resolve, reject) => {
        const req = httpRequest(
          {
            host: '127.0.0.1',
            port: limitedPort,
            method: 'POST',
            path: '/dashscope/token',
            localAddress,
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('error', reject);
        req.end();
      });
    try {
      expect(await post('127.0.0.1')).toBe(200);
      expect(await post('127.0.0.1')).toBe(429);
      expect(await post('127.0.0.2')).toBe(200);
    } finally {
      await new Promise<void>((resolve) => limitedServer.close(() => resolve()));
    }
  });
});
