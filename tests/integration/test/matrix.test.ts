/**
 * The cross-framework matrix: the same behaviours through Express 4, Express 5, Koa 2, Koa 3,
 * Fastify 4, Fastify 5, plain node:http, Hono on `@hono/node-server` and the fetch handler
 * (behind a minimal node:http → Request bridge, called directly as Next.js does, and served by
 * real Bun and real Deno), each app in front of one real emulator.
 */
import { randomUUID } from 'node:crypto';
import {
  DEFAULT_EMULATOR_ACCESS_KEY,
  DEFAULT_EMULATOR_API_KEY,
  DEFAULT_EMULATOR_EAS_REGION,
  DEFAULT_EMULATOR_EAS_SERVICE,
  type Emulator,
  startEmulator,
} from '@dashscope-token/emulator';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reachesFetchUnchanged } from '../../../packages/fetch/test/node-bridge.js';
import {
  ALLOWED_ORIGIN,
  APP_ROUTES,
  BUDGET_REQUESTS,
  KEY_B,
  KEY_UNKNOWN,
  STRICT_MAX_BODY,
  TOKEN_TTL,
} from '../fixtures/matrix-app.mjs';
import {
  chunkReader,
  nodeRequest,
  postJson,
  rawRequest,
  recordingFetchVia,
  transcript,
} from './client.js';
import { type RunningServer, SERVER_KINDS } from './servers.js';

/** Tenant `a`'s key (the emulator's default key). */
const KEY_A = DEFAULT_EMULATOR_API_KEY;
const PERMANENT_KEYS = [KEY_A, KEY_B, KEY_UNKNOWN];

const CHAT = '/compatible-mode/v1/chat/completions';
const GENERATION = '/api/v1/services/aigc/text-generation/generation';

let emulator: Emulator;

beforeAll(async () => {
  emulator = await startEmulator({ apiKeys: [KEY_A, KEY_B], chunkDelayMs: 5 });
});

afterAll(async () => {
  await emulator?.close();
});

const EAS_SERVICE = DEFAULT_EMULATOR_EAS_SERVICE;
const EAS_INSTANCE = 'emulator-llm-7b56869574-44nq9';

/** A unique prompt, to find the request it caused among the emulator's recorded ones. */
function marker(): string {
  return `marker-${randomUUID()}`;
}

function chatBody(prompt: string, extra: Record<string, unknown> = {}) {
  return { model: 'qwen-plus', messages: [{ role: 'user', content: prompt }], ...extra };
}

function generationBody(prompt: string) {
  return {
    model: 'qwen-plus',
    input: { messages: [{ role: 'user', content: prompt }] },
    parameters: { incremental_output: true },
  };
}

/** The one upstream request whose body contains `mark`. */
function upstreamWith(mark: string) {
  const found = emulator.requests.filter((r) => r.body.includes(mark));
  expect(found).toHaveLength(1);
  return found[0]!;
}

describe.each(SERVER_KINDS)('$name', (kind) => {
  let server: RunningServer;
  const url = (path: string) => `${server.base}${path}`;
  /** A request to this app: over a socket, or straight to the handler (the direct kind). */
  const send: typeof fetch = (input, init) => recordingFetchVia(server.fetch)(input, init);
  const post = (
    path: string,
    body: unknown,
    headers?: Record<string, string>,
    signal?: AbortSignal,
  ) => postJson(path, body, headers, signal, send);
  /** Raw request bytes to this app. */
  const raw = (bytes: string) => (server.raw ? server.raw(bytes) : rawRequest(server.port, bytes));
  /** A request with headers no fetch client would send (hop-by-hop ones included). */
  const withAnyHeaders: typeof nodeRequest = async (target, options) => {
    if (server.fetch === undefined) return nodeRequest(target, options);
    const res = await send(target, options as RequestInit);
    return { status: res.status, headers: Object.fromEntries(res.headers), body: await res.text() };
  };

  /** Runs `fn` and asserts that it caused no request at all to the emulator. */
  async function expectNoUpstream<T>(fn: () => Promise<T>): Promise<T> {
    const before = emulator.requests.length;
    const result = await fn();
    expect(emulator.requests.slice(before).map((r) => `${r.method} ${r.path}`)).toEqual([]);
    return result;
  }

  beforeAll(async () => {
    server = await kind.start({
      baseUrl: emulator.url,
      keyA: KEY_A,
      paiEas: {
        region: DEFAULT_EMULATOR_EAS_REGION,
        credentials: DEFAULT_EMULATOR_ACCESS_KEY,
        service: EAS_SERVICE,
      },
    });
  });

  afterAll(async () => {
    await server?.close();
  });

  describe('per-client limits', () => {
    it('answers the token route 429 with Retry-After once the client spent its budget', async () => {
      const statuses: number[] = [];
      for (let i = 0; i < 2; i++) {
        statuses.push((await send(url('/limited/dashscope/token'), { method: 'POST' })).status);
      }
      expect(statuses).toEqual([200, 200]);
      const refused = await expectNoUpstream(() =>
        send(url('/limited/dashscope/token'), { method: 'POST' }),
      );
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(await refused.json()).toMatchObject({ code: 'Throttling.ClientLimit' });
    });

    it('answers the proxy 429 in OpenAI shape over its budget, sending nothing upstream', async () => {
      const chat = () =>
        send(url('/limited/dashscope/compatible-mode/v1/chat/completions'), {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(chatBody(marker())),
        });
      const first = await chat();
      expect(first.status).toBe(200);
      await first.text();
      const refused = await expectNoUpstream(chat);
      expect(refused.status).toBe(429);
      expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(await refused.json()).toMatchObject({ error: { type: 'rate_limit_error' } });
    });
  });

  describe('budgets', () => {
    /** Spends `user`'s requests budget on `path`, then sends one more. */
    async function overBudget(path: string, body: unknown, user: string) {
      const call = () => post(url(`/budgeted/dashscope${path}`), body, { 'x-user': user });
      for (let i = 0; i < BUDGET_REQUESTS; i++) {
        const res = await call();
        expect(res.status).toBe(200);
        await res.text();
      }
      const refused = await expectNoUpstream(call);
      expect(refused.status).toBe(429);
      // An hour-long period aligned to the epoch: it resets within the hour.
      const retryAfter = Number(refused.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(3600);
      expect(refused.headers.get('x-should-retry')).toBe('false');
      return (await refused.json()) as {
        code?: string;
        message: string;
        error: { type: string; code: string; message: string };
      };
    }

    it('refuses the request past the budget in OpenAI shape, saying when it resets', async () => {
      const body = await overBudget(CHAT, chatBody(marker()), `openai-${marker()}`);
      expect(body).toMatchObject({ error: { type: 'rate_limit_error', code: 'budget_exceeded' } });
      expect(body.error.message).toMatch(/resets at \d{4}-\d\d-\d\dT\d\d:00:00\.000Z/);
    });

    it('refuses the next request once the usage of an answer spent the tokens budget', async () => {
      const user = `tokens-${marker()}`;
      const call = () =>
        post(url(`/budgeted-tokens/dashscope${CHAT}`), chatBody(marker()), { 'x-user': user });
      const first = await call();
      expect(first.status).toBe(200);
      const { usage } = (await first.json()) as { usage: { total_tokens: number } };
      // Usage is counted once the answer ended, just after the client read it: wait for it.
      for (let i = 0; i < 200; i++) {
        if ((await server.usage()).some((e) => e.identity === user)) break;
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      const refused = await expectNoUpstream(call);
      expect(refused.status).toBe(429);
      const body = (await refused.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('budget_exceeded');
      expect(body.error.message).toContain('tokens budget of this client (1 per 1 h)');
      expect(usage.total_tokens).toBeGreaterThan(1);
    });

    it('refuses the request past the budget in DashScope shape, other users unaffected', async () => {
      const user = `native-${marker()}`;
      const body = await overBudget(GENERATION, generationBody(marker()), user);
      expect(body).toMatchObject({ code: 'BudgetExceeded' });
      expect(body.message).toContain('requests budget');
      const other = await post(url(`/budgeted/dashscope${GENERATION}`), generationBody('hi'), {
        'x-user': `${user}-other`,
      });
      expect(other.status).toBe(200);
      await other.text();
    });
  });

  describe('token route', () => {
    it('POST answers a temporary key with Cache-Control: no-store', async () => {
      const res = await send(url('/dashscope/token'), { method: 'POST' });
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toContain('no-store');
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      const body = (await res.json()) as { token: string; expires_at: number };
      expect(body.token).toMatch(/^st-/);
      expect(Number.isInteger(body.expires_at)).toBe(true);
    });

    it('vends keys with the configured TTL', async () => {
      const res = await send(url('/dashscope/token'), { method: 'POST' });
      const body = (await res.json()) as { expires_at: number };
      const life = body.expires_at - emulator.now();
      // A cached key may have been minted earlier in this run (at most ~a minute ago).
      expect(life).toBeGreaterThan(TOKEN_TTL - 90);
      expect(life).toBeLessThanOrEqual(TOKEN_TTL + 2);
    });

    it('answers GET with 405 and Allow', async () => {
      const res = await expectNoUpstream(() => send(url('/dashscope/token')));
      expect(res.status).toBe(405);
      expect(res.headers.get('allow')).toContain('POST');
      await res.text();
    });

    it('refuses with 401 when authorize says so, reaching nobody upstream', async () => {
      const res = await expectNoUpstream(() =>
        send(url('/dashscope/token'), { method: 'POST', headers: { 'x-deny': '401' } }),
      );
      expect(res.status).toBe(401);
      const body = (await res.json()) as { code: string; token?: string };
      expect(body.token).toBeUndefined();
    });

    it('refuses with 403 when authorize returns false, reaching nobody upstream', async () => {
      const res = await expectNoUpstream(() =>
        send(url('/dashscope/token'), { method: 'POST', headers: { 'x-deny': '403' } }),
      );
      expect(res.status).toBe(403);
      await res.text();
    });

    it('answers a CORS preflight from an allowed origin', async () => {
      const res = await expectNoUpstream(() =>
        send(url('/dashscope/token'), {
          method: 'OPTIONS',
          headers: {
            origin: ALLOWED_ORIGIN,
            'access-control-request-method': 'POST',
            'access-control-request-headers': 'content-type',
          },
        }),
      );
      expect(res.status).toBeGreaterThanOrEqual(200);
      expect(res.status).toBeLessThan(300);
      expect(res.headers.get('access-control-allow-origin')).toBe(ALLOWED_ORIGIN);
      expect(res.headers.get('access-control-allow-methods') ?? '').toContain('POST');
      await res.text();
      const post = await send(url('/dashscope/token'), {
        method: 'POST',
        headers: { origin: ALLOWED_ORIGIN },
      });
      expect(post.status).toBe(200);
      expect(post.headers.get('access-control-allow-origin')).toBe(ALLOWED_ORIGIN);
      await post.text();
    });

    it('gives a foreign origin no CORS grant', async () => {
      const res = await expectNoUpstream(() =>
        send(url('/dashscope/token'), {
          method: 'OPTIONS',
          headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
        }),
      );
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
      await res.text();
    });
  });

  describe('proxy', () => {
    it('proxies a native generation call', async () => {
      const mark = marker();
      const res = await post(url(`/dashscope${GENERATION}`), generationBody(mark));
      expect(res.status).toBe(200);
      const body = (await res.json()) as { output: { text: string } };
      expect(body.output.text).toContain(mark);
    });

    it('streams a native generation call (X-DashScope-SSE)', async () => {
      const mark = marker();
      const res = await post(url(`/dashscope${GENERATION}`), generationBody(mark), {
        'x-dashscope-sse': 'enable',
        accept: 'text/event-stream',
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
      const text = await res.text();
      const frames = text.split('\n\n').filter((f) => f.includes('data:'));
      expect(frames.length).toBeGreaterThan(1);
      expect(text).toContain('event:result');
      expect(frames.at(-1)).toContain('"finish_reason":"stop"');
    });

    it('proxies a compatible-mode chat completion', async () => {
      const mark = marker();
      const res = await post(url(`/dashscope${CHAT}`), chatBody(mark));
      expect(res.status).toBe(200);
      const body = (await res.json()) as { choices: { message: { content: string } }[] };
      expect(body.choices[0]!.message.content).toContain(mark);
    });

    it('streams a compatible-mode chat completion to [DONE]', async () => {
      const res = await post(url(`/dashscope${CHAT}`), chatBody(marker(), { stream: true }));
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
      const text = await res.text();
      expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);
      expect(text.split('\n\n').filter((f) => f.startsWith('data: {')).length).toBeGreaterThan(1);
    });

    it('answers 404 for unknown routes under the prefix', async () => {
      const res = await expectNoUpstream(() => send(url('/dashscope/nope')));
      expect(res.status).toBe(404);
      await res.text();
    });

    it('lets requests outside the prefix reach the app', async () => {
      const res = await send(url(APP_ROUTES.hello));
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('hello');
    });

    it("leaves the app's own errors to the app's error handling", async () => {
      const before = (await server.appErrors()).length;
      const res = await send(url(APP_ROUTES.boom));
      expect(res.status).toBe(500);
      expect(await res.text()).toBe('boom');
      expect((await server.appErrors()).length).toBe(before + 1);
    });
  });

  describe('openai SDK', () => {
    const client = () =>
      new OpenAI({
        apiKey: 'unused',
        baseURL: `${server.base}/dashscope/compatible-mode/v1`,
        fetch: send,
        maxRetries: 0,
      });

    it('creates a chat completion', async () => {
      const mark = marker();
      const completion = await client().chat.completions.create({
        model: 'qwen-plus',
        messages: [{ role: 'user', content: mark }],
      });
      expect(completion.choices[0]?.message.content).toContain(mark);
    });

    it('streams a chat completion', async () => {
      const mark = marker();
      const stream = await client().chat.completions.create({
        model: 'qwen-plus',
        messages: [{ role: 'user', content: mark }],
        stream: true,
      });
      let content = '';
      let chunks = 0;
      for await (const chunk of stream) {
        chunks++;
        content += chunk.choices[0]?.delta.content ?? '';
      }
      expect(chunks).toBeGreaterThan(1);
      expect(content).toContain(mark);
    });

    it('creates embeddings', async () => {
      const result = await client().embeddings.create({
        model: 'text-embedding-v3',
        input: ['hello', 'world'],
      });
      expect(result.data).toHaveLength(2);
      expect(result.data[0]!.embedding.length).toBeGreaterThan(0);
    });

    it('gets the OpenAI error shape for a refused request', async () => {
      const refused = new OpenAI({
        apiKey: 'unused',
        baseURL: `${server.base}/dashscope/compatible-mode/v1`,
        fetch: send,
        maxRetries: 0,
        defaultHeaders: { 'x-deny': '403' },
      });
      const error = await refused.chat.completions
        .create({ model: 'qwen-plus', messages: [{ role: 'user', content: 'hi' }] })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(OpenAI.APIError);
      expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(403);
    });
  });

  describe('streaming', () => {
    it('delivers the first chunk while upstream is still streaming', async () => {
      const mark = marker();
      // Frames far apart: a buffering proxy would deliver nothing for minutes.
      emulator.setChunkDelay(60_000);
      const controller = new AbortController();
      try {
        const res = await post(
          url(`/dashscope${CHAT}`),
          chatBody(mark, { stream: true }),
          {},
          controller.signal,
        );
        expect(res.status).toBe(200);
        const reader = chunkReader(res);
        let first = '';
        while (!first.includes('\n\n')) first += (await reader.next()) ?? '';
        expect(first).toMatch(/^data: \{/);
        // Upstream has not finished: its client (the proxy) is still connected...
        const upstream = upstreamWith(mark);
        expect(upstream.clientClosedEarly).toBe(false);
        controller.abort();
        await reader.cancel();
        // ...and only our abort ends it, before its natural end.
        const closed = await emulator.waitForRequest(
          (r) => r.id === upstream.id && r.clientClosedEarly,
          10_000,
        );
        expect(closed.clientClosedEarly).toBe(true);
      } finally {
        emulator.setChunkDelay(5);
      }
    });

    it('closes the upstream request when the client aborts mid-stream', async () => {
      const mark = marker();
      emulator.setChunkDelay(200);
      const controller = new AbortController();
      try {
        const res = await post(
          url(`/dashscope${GENERATION}`),
          generationBody(`${mark} ${'long prompt '.repeat(20)}`),
          { 'x-dashscope-sse': 'enable' },
          controller.signal,
        );
        const reader = chunkReader(res);
        await reader.next();
        controller.abort();
        await reader.cancel();
        const closed = await emulator.waitForRequest(
          (r) => r.body.includes(mark) && r.clientClosedEarly,
          10_000,
        );
        expect(closed.route).toBe('generation');
      } finally {
        emulator.setChunkDelay(5);
      }
    });
  });

  describe('what upstream receives', () => {
    it("a live st- key and none of the client's credentials or hop-by-hop headers", async () => {
      const mark = marker();
      const res = await withAnyHeaders(url(`/dashscope${CHAT}`), {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          authorization: 'Bearer client-session-credential-123456',
          cookie: 'session=client-cookie-123456',
          'proxy-authorization': 'Basic cHJveHk6c2VjcmV0',
          connection: 'keep-alive, x-hop-by-hop',
          'x-hop-by-hop': 'named-in-connection',
          'keep-alive': 'timeout=5',
          'proxy-connection': 'keep-alive',
          te: 'trailers',
          'x-dashscope-datainspection': '{"input":"disable"}',
        },
        body: JSON.stringify(chatBody(mark)),
      });
      expect(res.status).toBe(200);
      const upstream = upstreamWith(mark);
      expect(upstream.status).toBe(200);
      expect(upstream.headers.authorization).toMatch(/^Bearer st-/);
      for (const name of [
        'cookie',
        'proxy-authorization',
        'x-hop-by-hop',
        'keep-alive',
        'proxy-connection',
        'te',
      ]) {
        expect(upstream.headers[name], name).toBeUndefined();
      }
      expect(String(upstream.headers.connection ?? '')).not.toContain('x-hop-by-hop');
      expect(JSON.stringify(upstream.headers)).not.toContain('client-session-credential');
      // An end-to-end header Model Studio understands goes through.
      expect(upstream.headers['x-dashscope-datainspection']).toBe('{"input":"disable"}');
    });
  });

  // The kinds with a WebSocket proxy (the node:http handler and its adapters) are run through
  // WebSocket sessions in ws.test.ts; a front door over a Fetch `Request` has none to offer.
  if (kind.viaRequest) {
    describe('WebSocket routes (not proxied over a Request)', () => {
      it('answers an upgrade with 501 NotImplemented, reaching nobody upstream', async () => {
        const res = await expectNoUpstream(() =>
          withAnyHeaders(url('/dashscope/api-ws/v1/inference'), {
            headers: {
              connection: 'Upgrade',
              upgrade: 'websocket',
              'sec-websocket-version': '13',
              'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
            },
          }),
        );
        expect(res.status).toBe(501);
        expect(JSON.parse(res.body)).toMatchObject({ code: 'NotImplemented' });
      });
    });
  }

  describe('attack corpus (raw requests)', () => {
    const target = '/dashscope/api/v1/tasks/abc';
    const attacks: [name: string, requestLine: string, extraHeaders?: string][] = [
      ['dot-dot segments', 'GET /dashscope/api/v1/../../../etc/passwd HTTP/1.1'],
      [
        'dot-dot out of compatible-mode',
        'GET /dashscope/compatible-mode/v1/../../api/v1/tasks/abc HTTP/1.1',
      ],
      ['encoded dot-dot (%2e%2e)', 'GET /dashscope/api/v1/%2e%2e/%2e%2e/x HTTP/1.1'],
      [
        'encoded dot-dot, upper case (%2E%2E)',
        'GET /dashscope/api/v1/services/%2E%2E/tasks/abc HTTP/1.1',
      ],
      ['encoded slash (%2f)', 'GET /dashscope/api/v1/tasks%2f..%2f..%2fx HTTP/1.1'],
      ['encoded slash inside a segment', 'GET /dashscope/api/v1/services%2Faigc/tasks HTTP/1.1'],
      ['backslash', 'GET /dashscope/api/v1\\..\\..\\x HTTP/1.1'],
      ['encoded backslash (%5c)', 'GET /dashscope/api/v1/%5c..%5cx HTTP/1.1'],
      ['double slash in the path', 'GET /dashscope/api/v1//tasks/abc HTTP/1.1'],
      ['double slash before the route', 'GET /dashscope//api/v1/tasks/abc HTTP/1.1'],
      ['absolute-form request target', `GET http://evil.example${target} HTTP/1.1`],
      ['encoded CR/LF (%0d%0a)', 'GET /dashscope/api/v1/tasks/abc%0d%0aX-Injected:%201 HTTP/1.1'],
      ['encoded NUL (%00)', 'GET /dashscope/api/v1/tasks/abc%00.json HTTP/1.1'],
      ['raw CR in the request line', 'GET /dashscope/api/v1/tasks/a\rbc HTTP/1.1'],
      ['raw NUL in the request line', 'GET /dashscope/api/v1/tasks/a\u0000bc HTTP/1.1'],
      ['raw NUL in a header value', `GET ${target} HTTP/1.1`, 'X-Evil: a\u0000b\r\n'],
      ['bare CR in a header value', `GET ${target} HTTP/1.1`, 'X-Evil: a\rInjected: b\r\n'],
      [
        'minting through the proxy',
        'POST /dashscope/api/v1/tokens?expire_in_seconds=1800 HTTP/1.1',
        'Content-Length: 0\r\n',
      ],
    ];

    it.each(attacks)('refuses %s, reaching nobody upstream', async (_name, line, extra = '') => {
      const bytes = `${line}\r\nHost: 127.0.0.1\r\n${extra}Connection: close\r\n\r\n`;
      if (kind.viaRequest && !reachesFetchUnchanged(bytes)) {
        // The Request's URL parser normalised the target (or refused it) before the handler
        // saw it: the handler answers that request (tests/security checks what it may become),
        // or the runtime refuses the request line itself (Bun: 505 to a raw CR or NUL in it).
        const res = await raw(bytes);
        expect(res.status, res.text).toBeGreaterThan(0);
        expect(res.status < 500 || res.status === 505, res.text).toBe(true);
        return;
      }
      const res = await expectNoUpstream(() => raw(bytes));
      expect([400, 403, 404]).toContain(res.status);
    });

    it('still proxies the same route when it is well-formed', async () => {
      // The control: the attack target itself is reachable (the emulator answers 404 for an unknown task).
      const before = emulator.requests.length;
      const res = await raw(
        `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`,
      );
      expect(res.status).toBeGreaterThan(0);
      expect(emulator.requests.slice(before).some((r) => r.path === '/api/v1/tasks/abc')).toBe(
        true,
      );
    });
  });

  describe('tenants', () => {
    it('mints with the API key the request maps to', async () => {
      const before = emulator.requests.length;
      const a = await send(url('/dashscope/token'), {
        method: 'POST',
        headers: { 'x-tenant': 'a' },
      });
      const b = await send(url('/dashscope/token'), {
        method: 'POST',
        headers: { 'x-tenant': 'b' },
      });
      expect(a.status).toBe(200);
      expect(b.status).toBe(200);
      const tokenA = ((await a.json()) as { token: string }).token;
      const tokenB = ((await b.json()) as { token: string }).token;
      expect(tokenA).not.toBe(tokenB);
      // Tenant b's mint (tenant a's key may already be cached) used tenant b's key.
      const mints = emulator.requests.slice(before).filter((r) => r.route === 'tokens');
      expect(mints.map((r) => r.headers.authorization)).toContain(`Bearer ${KEY_B}`);
    });

    it("keeps one tenant's failure away from the others", async () => {
      const c = await post(url(`/dashscope${CHAT}`), chatBody(marker()), { 'x-tenant': 'c' });
      // The server's key for tenant c is refused upstream: a gateway problem, not the client's.
      expect(c.status).toBe(502);
      expect(await c.json()).toMatchObject({ error: { code: 'invalid_api_key' } });
      const b = await post(url(`/dashscope${CHAT}`), chatBody(marker()), { 'x-tenant': 'b' });
      expect(b.status).toBe(200);
      await b.text();
    });
  });

  describe('resilience', () => {
    it('replays once with a fresh key after an upstream 401', async () => {
      const mark = marker();
      emulator.fault('chat', { type: 'invalid-api-key' }, 1);
      const res = await post(url(`/dashscope${CHAT}`), chatBody(mark));
      expect(res.status).toBe(200);
      const body = (await res.json()) as { choices: { message: { content: string } }[] };
      expect(body.choices[0]!.message.content).toContain(mark);
      const attempts = emulator.requests.filter((r) => r.body.includes(mark));
      expect(attempts.map((r) => r.status)).toEqual([401, 200]);
      expect(attempts[1]!.headers.authorization).toMatch(/^Bearer st-/);
      expect(attempts[1]!.headers.authorization).not.toBe(attempts[0]!.headers.authorization);
    });
  });

  describe('PAI-EAS routes', () => {
    const workbench = { service: EAS_SERVICE, instance: EAS_INSTANCE };
    for (const mount of ['/eas', '/eas-parsed']) {
      it(`hands an operator a one-time Workbench URL (${mount})`, async () => {
        const res = await post(url(`${mount}/dashscope/pai-eas/workbench`), workbench, {
          'x-operator': 'yes',
        });
        expect(res.status).toBe(200);
        expect(res.headers.get('cache-control')).toBe('no-store');
        const { workbench_url } = (await res.json()) as { workbench_url: string };
        expect((await fetch(workbench_url)).status).toBe(200);
        expect((await fetch(workbench_url)).status).toBe(403);
      });
    }

    it('refuses a Workbench URL to anyone else, signing nothing', async () => {
      const res = await expectNoUpstream(() =>
        post(url('/eas/dashscope/pai-eas/workbench'), workbench),
      );
      expect(res.status).toBe(403);
    });

    it('streams a chat completion from the EAS service', async () => {
      const mark = marker();
      const res = await post(
        url(`/eas/dashscope/pai-eas/services/${EAS_SERVICE}/v1/chat/completions`),
        { ...chatBody(mark, { stream: true }), model: EAS_SERVICE },
      );
      expect(res.status).toBe(200);
      expect((await res.text()).trimEnd().endsWith('data: [DONE]')).toBe(true);
      expect(upstreamWith(mark).path).toBe(`/api/predict/${EAS_SERVICE}/v1/chat/completions`);
    });

    it('proxies a JSON body the parser already consumed to the EAS service', async () => {
      const mark = marker();
      const res = await post(
        url(`/eas-parsed/dashscope/pai-eas/services/${EAS_SERVICE}/v1/chat/completions`),
        { ...chatBody(mark), model: EAS_SERVICE },
      );
      expect(res.status).toBe(200);
      expect(upstreamWith(mark).route).toBe('pai-eas-service');
    });
  });

  describe('body parsers mounted before the middleware', () => {
    it('proxies a JSON body the parser already consumed', async () => {
      const mark = marker();
      const sent = chatBody(mark, { temperature: 0.5 });
      const res = await post(url(`/parsed/dashscope${CHAT}`), sent);
      expect(res.status).toBe(200);
      const body = (await res.json()) as { choices: { message: { content: string } }[] };
      expect(body.choices[0]!.message.content).toContain(mark);
      expect(JSON.parse(upstreamWith(mark).body)).toEqual(sent);
    });

    it('streams with a parsed body', async () => {
      const res = await post(url(`/parsed/dashscope${CHAT}`), chatBody(marker(), { stream: true }));
      expect(res.status).toBe(200);
      expect((await res.text()).trimEnd().endsWith('data: [DONE]')).toBe(true);
    });

    it('proxies a bodiless GET behind the parser', async () => {
      const before = emulator.requests.length;
      const res = await send(url('/parsed/dashscope/compatible-mode/v1/models'));
      expect(res.status).toBe(200);
      await res.text();
      const models = emulator.requests.slice(before).filter((r) => r.route === 'models');
      expect(models).toHaveLength(1);
      expect(models[0]!.body).toBe('');
    });
  });

  describe('limits', () => {
    it('answers 413 to an oversize body, reaching nobody upstream', async () => {
      const res = await expectNoUpstream(() =>
        post(url(`/strict/dashscope${CHAT}`), chatBody('x'.repeat(STRICT_MAX_BODY * 2))),
      );
      expect(res.status).toBe(413);
      await res.text();
    });

    it('answers 403 to a model outside allowModels, reaching nobody upstream', async () => {
      const res = await expectNoUpstream(() =>
        post(url(`/strict/dashscope${CHAT}`), { ...chatBody('hi'), model: 'qwen-max' }),
      );
      expect(res.status).toBe(403);
      const body = (await res.json()) as { error?: { message: string } };
      expect(body.error?.message).toBeTruthy();
    });

    it('answers 400 to a body naming model twice (upstream might read the other), reaching nobody upstream', async () => {
      const messages = JSON.stringify(chatBody('hi').messages);
      for (const raw of [
        `{"model":"qwen-plus","model":"qwen-max","messages":${messages}}`,
        `{"model":"qwen-max","\\u006dodel":"qwen-plus","messages":${messages}}`,
      ]) {
        const res = await expectNoUpstream(() =>
          send(url(`/strict/dashscope${CHAT}`), {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: raw,
          }),
        );
        expect(res.status).toBe(400);
        expect(await res.text()).toMatch(/invalid_?parameter/i);
      }
    });

    it('proxies a model inside allowModels', async () => {
      const res = await post(url(`/strict/dashscope${CHAT}`), chatBody(marker()));
      expect(res.status).toBe(200);
      await res.text();
    });
  });

  describe('mounted under a path', () => {
    it('serves the token route under the mount path', async () => {
      const res = await send(url('/ai/dashscope/token'), { method: 'POST' });
      expect(res.status).toBe(200);
      expect(((await res.json()) as { token: string }).token).toMatch(/^st-/);
    });

    it('proxies under the mount path', async () => {
      const mark = marker();
      const res = await post(url(`/ai/dashscope${CHAT}`), chatBody(mark));
      expect(res.status).toBe(200);
      await res.text();
      expect(upstreamWith(mark).path).toBe(CHAT);
    });

    it('answers 404 for unknown routes under the mounted prefix', async () => {
      const res = await expectNoUpstream(() => send(url('/ai/dashscope/nope')));
      expect(res.status).toBe(404);
      await res.text();
    });
  });

  describe('getToken() in app routes', () => {
    it('hands the app a temporary key', async () => {
      const res = await send(url(APP_ROUTES.token));
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ token_prefix: 'st-' });
    });

    it("uses the request's tenant", async () => {
      const before = emulator.requests.length;
      const res = await send(url(APP_ROUTES.token), { headers: { 'x-tenant': 'c' } });
      // Tenant c's key is unknown upstream: the error reaches the app's error handling.
      expect(res.status).toBe(500);
      await res.text();
      const mints = emulator.requests.slice(before).filter((r) => r.route === 'tokens');
      expect(mints.every((r) => r.headers.authorization === `Bearer ${KEY_UNKNOWN}`)).toBe(true);
      expect((await server.appErrors()).at(-1)).toMatchObject({
        name: 'DashScopeError',
        code: 'InvalidApiKey',
      });
    });
  });
});

describe('secrets', () => {
  it('no permanent key appears in any response byte of this file', () => {
    expect(transcript.length).toBeGreaterThan(100);
    const all = transcript.join('\n');
    for (const key of PERMANENT_KEYS) {
      expect(all.includes(key), 'a permanent key reached a client').toBe(false);
      expect(all.includes(key.slice(3)), 'a permanent key reached a client').toBe(false);
    }
  });
});
