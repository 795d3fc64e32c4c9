import http, { type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createTokenProvider, type TokenProvider } from '../../src/index.js';
import {
  CHAT_BODY,
  CHAT_PATH,
  type Harness,
  json,
  leakedKeys,
  NATIVE_BODY,
  NATIVE_PATH,
  open,
  PERMANENT_KEY,
  SECOND_KEY,
  send,
  startHarness,
} from './harness.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});
afterAll(() => {
  expect(leakedKeys()).toEqual([]);
});

/** Upstream requests other than mints. */
function inference(harness: Harness) {
  return harness.emulator.requests.filter((r) => r.route !== 'tokens');
}

function firstChunk(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    res.once('data', (c: Buffer) => resolve(c.toString('utf8')));
    res.once('error', reject);
  });
}

function readAll(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
  });
}

async function deadOrigin(): Promise<string> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

describe('proxy: non-streaming', () => {
  it('proxies a native generation call with a temporary key injected', async () => {
    h = await startHarness();
    const answer = await send(h.url, 'POST', NATIVE_PATH, json(NATIVE_BODY));
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.text).output.text).toContain('Hello there');
    const [upstream] = inference(h);
    expect(upstream?.path).toBe('/api/v1/services/aigc/text-generation/generation');
    expect(upstream?.headers.authorization).toMatch(/^Bearer st-/);
    expect(JSON.parse(upstream!.body)).toEqual(NATIVE_BODY);
    const mint = h.emulator.requests.find((r) => r.route === 'tokens');
    expect(mint?.path).toBe('/api/v1/tokens?expire_in_seconds=1800');
  });

  it('proxies an OpenAI-compatible chat completion and keeps the query string', async () => {
    h = await startHarness();
    const answer = await send(h.url, 'POST', `${CHAT_PATH}?trace=1&x=a%20b`, json(CHAT_BODY));
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.text).choices[0].message.content).toContain('Hello there');
    expect(inference(h)[0]?.path).toBe('/compatible-mode/v1/chat/completions?trace=1&x=a%20b');
  });

  it('reuses one cached key for many requests', async () => {
    h = await startHarness();
    for (let i = 0; i < 5; i++) {
      expect((await send(h.url, 'POST', CHAT_PATH, json(CHAT_BODY))).status).toBe(200);
    }
    expect(h.emulator.stats().tokensIssued).toBe(1);
    expect(new Set(inference(h).map((r) => r.headers.authorization)).size).toBe(1);
  });

  it('streams a chunked request body through', async () => {
    h = await startHarness();
    const padding = 'x'.repeat(100_000);
    const body = { ...CHAT_BODY, user: padding };
    const answer = await send(h.url, 'POST', CHAT_PATH, { ...json(body), chunked: true });
    expect(answer.status).toBe(200);
    const [upstream] = inference(h);
    expect(upstream?.headers['transfer-encoding']).toBe('chunked');
    expect(upstream?.body.length).toBeGreaterThan(60_000);
  });
});

describe('proxy: header hygiene', () => {
  it('sends upstream only the injected key and no client credentials or hop-by-hop headers', async () => {
    h = await startHarness();
    const answer = await send(h.url, 'POST', CHAT_PATH, {
      headers: {
        'content-type': 'application/json',
        accept: 'application/json',
        'user-agent': 'my-app/1.0',
        authorization: 'Bearer client-session-token',
        cookie: 'session=abc',
        'proxy-authorization': 'Basic Zm9vOmJhcg==',
        connection: 'keep-alive, x-hop-secret',
        'x-hop-secret': 'listed-in-connection',
        'keep-alive': 'timeout=5',
        te: 'trailers',
        'proxy-connection': 'keep-alive',
        'x-forwarded-for': '203.0.113.7',
        'x-forwarded-host': 'evil.example',
        forwarded: 'for=203.0.113.7',
        host: 'evil.example',
        'x-dashscope-datainspection': '{"input":"disable"}',
      },
      body: JSON.stringify(CHAT_BODY),
    });
    expect(answer.status).toBe(200);
    const [upstream] = inference(h);
    const headers = upstream!.headers;
    expect(headers.authorization).toMatch(/^Bearer st-/);
    expect(headers.authorization).not.toContain('client-session-token');
    for (const name of [
      'cookie',
      'proxy-authorization',
      'x-hop-secret',
      'keep-alive',
      'te',
      'proxy-connection',
      'x-forwarded-for',
      'x-forwarded-host',
      'forwarded',
    ]) {
      expect(headers, name).not.toHaveProperty(name);
    }
    expect(headers.host).toBe(new URL(h.emulator.url).host);
    expect(headers['x-dashscope-datainspection']).toBe('{"input":"disable"}');
    expect(headers['user-agent']).toBe('my-app/1.0');
    expect(headers['content-type']).toBe('application/json');
    expect(headers.accept).toBe('application/json');
  });

  it('strips Set-Cookie and hop-by-hop headers from upstream answers', async () => {
    h = await startHarness();
    h.emulator.fault('chat', {
      type: 'status',
      status: 200,
      body: { ok: true },
      headers: {
        'Set-Cookie': 'upstream-session=1; Path=/',
        'X-Upstream-Note': 'kept',
        'Access-Control-Allow-Origin': '*',
      },
    });
    const answer = await send(h.url, 'POST', CHAT_PATH, json(CHAT_BODY));
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.text)).toEqual({ ok: true });
    expect(answer.headers['set-cookie']).toBeUndefined();
    expect(answer.headers['access-control-allow-origin']).toBeUndefined();
    expect(answer.headers['x-upstream-note']).toBe('kept');
  });
});

describe('proxy: streaming', () => {
  it('relays native SSE frames as they arrive, with headers flushed and no buffering', async () => {
    h = await startHarness();
    h.emulator.setChunkDelay(300);
    const { req, res } = await open(h.url, 'POST', NATIVE_PATH, {
      ...json({ ...NATIVE_BODY, parameters: { incremental_output: true } }),
      headers: { 'content-type': 'application/json', 'x-dashscope-sse': 'enable' },
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(res.headers['x-accel-buffering']).toBe('no');
    const first = await firstChunk(res);
    expect(first).toContain('data:');
    expect(first).not.toContain('"finish_reason":"stop"');
    // The first frame arrived while upstream was still streaming: going away now is "early".
    req.destroy();
    const upstream = await h.emulator.waitForRequest(
      (r) => r.route === 'generation' && r.clientClosedEarly,
      5000,
    );
    expect(upstream.headers['accept-encoding']).toBe('identity');
  });

  it('relays an OpenAI-compatible stream to the end, [DONE] included', async () => {
    h = await startHarness();
    const { res } = await open(h.url, 'POST', CHAT_PATH, json({ ...CHAT_BODY, stream: true }));
    const text = await readAll(res);
    expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(text.trim().endsWith('data: [DONE]')).toBe(true);
    expect(text.match(/^data: /gm)!.length).toBeGreaterThan(2);
  });

  it('aborts the upstream request when the client goes away mid-stream', async () => {
    h = await startHarness();
    h.emulator.setChunkDelay(200);
    const { req, res } = await open(h.url, 'POST', CHAT_PATH, json({ ...CHAT_BODY, stream: true }));
    await firstChunk(res);
    req.destroy();
    const upstream = await h.emulator.waitForRequest(
      (r) => r.route === 'chat' && r.clientClosedEarly,
      5000,
    );
    expect(upstream.clientClosedEarly).toBe(true);
  });

  it('injects a key with at least streamingMinValiditySeconds left into streaming requests', async () => {
    let clock = Date.now();
    let provider: TokenProvider | undefined;
    h = await startHarness({
      handler: (emulator) => {
        provider = createTokenProvider({
          apiKey: PERMANENT_KEY,
          baseUrl: emulator.url,
          expireInSeconds: 1800,
          retry: false,
          now: () => clock,
        });
        return { provider: { proxy: provider } };
      },
    });
    expect((await send(h.url, 'POST', CHAT_PATH, json(CHAT_BODY))).status).toBe(200);
    // 1300 s later the cached key has ~500 s left: enough for a plain request, not for a stream.
    clock += 1_300_000;
    expect((await send(h.url, 'POST', CHAT_PATH, json(CHAT_BODY))).status).toBe(200);
    expect(h.emulator.stats().tokensIssued).toBe(1);
    const { res } = await open(h.url, 'POST', CHAT_PATH, json({ ...CHAT_BODY, stream: true }));
    await readAll(res);
    expect(h.emulator.stats().tokensIssued).toBe(2);
    const auth = inference(h).map((r) => r.headers.authorization);
    expect(auth[0]).toBe(auth[1]);
    expect(auth[2]).not.toBe(auth[1]);
    await provider?.close();
  });
});

describe('proxy: tenants, replay and bodies', () => {
  it('keeps tenants apart: each API key gets its own temporary key', async () => {
    h = await startHarness({
      handler: {
        apiKey: (req) => (req.headers['x-tenant'] === 'b' ? SECOND_KEY : PERMANENT_KEY),
      },
    });
    const a = await send(h.url, 'POST', CHAT_PATH, json(CHAT_BODY, { 'x-tenant': 'a' }));
    const b = await send(h.url, 'POST', CHAT_PATH, json(CHAT_BODY, { 'x-tenant': 'b' }));
    expect([a.status, b.status]).toEqual([200, 200]);
    const [ua, ub] = inference(h);
    expect(ua?.headers.authorization).toMatch(/^Bearer st-/);
    expect(ua?.headers.authorization).not.toBe(ub?.headers.authorization);
    const mints = h.emulator.requests.filter((r) => r.route === 'tokens');
    expect(mints.map((m) => m.headers.authorization).sort()).toEqual(
      [`Bearer ${PERMANENT_KEY}`, `Bearer ${SECOND_KEY}`].sort(),
    );
    const ta = JSON.parse(
      (await send(h.url, 'POST', '/dashscope/token', { headers: { 'x-tenant': 'a' } })).text,
    );
    const tb = JSON.parse(
      (await send(h.url, 'POST', '/dashscope/token', { headers: { 'x-tenant': 'b' } })).text,
    );
    expect(ta.token).not.toBe(tb.token);
  });

  it('replays once with a fresh key after an upstream 401', async () => {
    h = await startHarness();
    expect((await send(h.url, 'POST', CHAT_PATH, json(CHAT_BODY))).status).toBe(200);
    h.emulator.clearRequests();
    h.emulator.fault('chat', { type: 'invalid-api-key' });
    const answer = await send(h.url, 'POST', CHAT_PATH, json(CHAT_BODY));
    expect(answer.status).toBe(200);
    const chats = inference(h);
    expect(chats).toHaveLength(2);
    expect(chats[0]?.headers.authorization).not.toBe(chats[1]?.headers.authorization);
    expect(chats[1]?.body).toBe(JSON.stringify(CHAT_BODY));
  });

  it('answers 502 InvalidApiKey, not retryable, when the streamed body cannot be replayed; the next request gets a fresh key', async () => {
    h = await startHarness({ handler: { proxy: { replayBufferBytes: 0 } } });
    expect((await send(h.url, 'POST', CHAT_PATH, json(CHAT_BODY))).status).toBe(200);
    h.emulator.clearRequests();
    h.emulator.fault('chat', { type: 'invalid-api-key' });
    const answer = await send(h.url, 'POST', CHAT_PATH, { ...json(CHAT_BODY), chunked: true });
    expect(answer.status).toBe(502);
    expect(JSON.parse(answer.text).error.code).toBe('invalid_api_key');
    expect(answer.headers['x-should-retry']).toBe('false');
    const [refused] = inference(h);
    expect(answer.headers['x-request-id']).toBe(refused?.id);
    expect(inference(h)).toHaveLength(1);
    const next = await send(h.url, 'POST', CHAT_PATH, json(CHAT_BODY));
    expect(next.status).toBe(200);
    const [, retried] = inference(h);
    expect(retried?.headers.authorization).not.toBe(refused?.headers.authorization);
  });

  it("answers 502 InvalidApiKey in the route's dialect, with Model Studio's request id and x-should-retry: false, when the replay is refused too", async () => {
    // The server's key failed (revoked): a client holding no key must not read it as its own
    // 401, and the OpenAI SDK must not retry it.
    h = await startHarness();
    h.emulator.fault('chat', { type: 'invalid-api-key' }, 2);
    const compatible = await send(h.url, 'POST', CHAT_PATH, json(CHAT_BODY));
    expect(compatible.status).toBe(502);
    expect(JSON.parse(compatible.text).error).toMatchObject({
      code: 'invalid_api_key',
      type: 'server_error',
    });
    expect(compatible.headers['x-should-retry']).toBe('false');
    const chats = inference(h);
    expect(chats).toHaveLength(2);
    expect(compatible.headers['x-request-id']).toBe(chats[1]?.id);
    h.emulator.fault('generation', { type: 'invalid-api-key' }, 2);
    const native = await send(h.url, 'POST', NATIVE_PATH, json(NATIVE_BODY));
    expect(native.status).toBe(502);
    expect(JSON.parse(native.text)).toMatchObject({ code: 'InvalidApiKey' });
    expect(JSON.parse(native.text).request_id).toBe(native.headers['x-request-id']);
    expect(native.headers['x-should-retry']).toBe('false');
  });

  it('re-serialises a body a body parser already consumed', async () => {
    h = await startHarness({
      listener: (handler) => async (req, res) => {
        const chunks: Buffer[] = [];
        for await (const c of req) chunks.push(c as Buffer);
        const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        await handler.handle(req, res, { parsedBody: { ...parsed, temperature: 0.5 } });
      },
    });
    const answer = await send(h.url, 'POST', CHAT_PATH, json(CHAT_BODY));
    expect(answer.status).toBe(200);
    const [upstream] = inference(h);
    expect(JSON.parse(upstream!.body)).toEqual({ ...CHAT_BODY, temperature: 0.5 });
    expect(upstream?.headers['content-length']).toBe(String(Buffer.byteLength(upstream!.body)));
  });

  it('refuses a body over maxBodyBytes with 413 before anything goes upstream', async () => {
    h = await startHarness({ handler: { proxy: { maxBodyBytes: 1000 } } });
    const big = { ...CHAT_BODY, user: 'x'.repeat(5000) };
    const declared = await send(h.url, 'POST', CHAT_PATH, json(big));
    expect(declared.status).toBe(413);
    expect(JSON.parse(declared.text).error.code).toBe('payload_too_large');
    expect(h.emulator.requests).toEqual([]);
  });

  it('refuses a chunked body with 413 once it grows over maxBodyBytes', async () => {
    h = await startHarness({ handler: { proxy: { maxBodyBytes: 1000 } } });
    const big = { ...CHAT_BODY, user: 'x'.repeat(5000) };
    const answer = await send(h.url, 'POST', CHAT_PATH, { ...json(big), chunked: true });
    expect(answer.status).toBe(413);
    expect(inference(h).every((r) => r.status === undefined || r.clientClosedEarly)).toBe(true);
  });

  it('refuses models outside allowModels with 403 in the route dialect', async () => {
    h = await startHarness({ handler: { allowModels: ['qwen-plus'] } });
    const chat = await send(h.url, 'POST', CHAT_PATH, json({ ...CHAT_BODY, model: 'qwen-max' }));
    expect(chat.status).toBe(403);
    expect(JSON.parse(chat.text)).toEqual({
      error: {
        message: expect.stringContaining('qwen-max'),
        type: 'permission_error',
        code: 'access_denied',
      },
    });
    const native = await send(
      h.url,
      'POST',
      NATIVE_PATH,
      json({ ...NATIVE_BODY, model: 'qwen-max' }),
    );
    expect(native.status).toBe(403);
    expect(JSON.parse(native.text)).toMatchObject({ code: 'AccessDenied' });
    expect(h.emulator.requests).toEqual([]);
    const allowed = await send(h.url, 'POST', CHAT_PATH, json(CHAT_BODY));
    expect(allowed.status).toBe(200);
  });

  it('refuses proxied requests that authorize refuses, before anything goes upstream', async () => {
    h = await startHarness({
      handler: { authorize: (req) => (req.headers['x-user'] ? true : { status: 401 }) },
    });
    const refused = await send(h.url, 'POST', CHAT_PATH, json(CHAT_BODY));
    expect(refused.status).toBe(401);
    expect(JSON.parse(refused.text).error.type).toBe('authentication_error');
    expect(h.emulator.requests).toEqual([]);
    const allowed = await send(h.url, 'POST', CHAT_PATH, json(CHAT_BODY, { 'x-user': 'u1' }));
    expect(allowed.status).toBe(200);
  });
});

describe('proxy: CORS and handler API', () => {
  const cors = { origins: ['https://app.example.com'] };

  it('answers preflights for proxy routes and adds CORS headers to proxied answers', async () => {
    h = await startHarness({ handler: { cors } });
    const preflight = await send(h.url, 'OPTIONS', CHAT_PATH, {
      headers: {
        origin: 'https://app.example.com',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type, authorization, x-stainless-os',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers['access-control-allow-headers']).toBe(
      'content-type, authorization, x-stainless-os',
    );
    expect(h.emulator.requests).toEqual([]);
    const answer = await send(
      h.url,
      'POST',
      CHAT_PATH,
      json(CHAT_BODY, { origin: 'https://app.example.com' }),
    );
    expect(answer.status).toBe(200);
    expect(answer.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(answer.headers.vary).toContain('Origin');
    expect(inference(h)[0]?.headers).not.toHaveProperty('origin');
  });

  it('gives the app its own temporary keys through getToken()', async () => {
    h = await startHarness();
    expect(h.handler.prefix).toBe('/dashscope');
    const token = await h.handler.getToken();
    expect(token.token).toMatch(/^st-/);
    expect(token.expiresAt - h.emulator.now()).toBeGreaterThan(1700);
    expect(h.handler.provider.stats().mints).toBe(1);
  });

  it('sends nothing upstream when the client leaves while the key is being minted', async () => {
    h = await startHarness({ emulator: { latencyMs: 300 } });
    const url = h.url;
    const { req } = await new Promise<{ req: http.ClientRequest }>((resolve) => {
      const target = new URL(url);
      const r = http.request({
        host: target.hostname,
        port: target.port,
        method: 'POST',
        path: CHAT_PATH,
        headers: { 'content-type': 'application/json' },
        agent: false,
      });
      r.on('error', () => {});
      r.end(JSON.stringify(CHAT_BODY));
      resolve({ req: r });
    });
    await h.emulator.waitForRequest((r) => r.route === 'tokens', 5000);
    req.destroy();
    // The mint completes (other callers may share it); the abandoned request is never sent.
    // A later request's full round trip orders after it would have been.
    h.emulator.setLatency(0);
    const later = await send(h.url, 'POST', CHAT_PATH, json({ ...CHAT_BODY, user: 'later' }));
    expect(later.status).toBe(200);
    expect(inference(h).map((r) => JSON.parse(r.body).user)).toEqual(['later']);
  });
});

describe('proxy: errors', () => {
  it('passes upstream error answers through unchanged', async () => {
    h = await startHarness();
    h.emulator.fault('chat', { type: 'throttle', retryAfterSeconds: 5 });
    const answer = await send(h.url, 'POST', CHAT_PATH, json(CHAT_BODY));
    expect(answer.status).toBe(429);
    expect(answer.headers['retry-after']).toBe('5');
    const [upstream] = inference(h);
    expect(answer.headers['x-request-id']).toBe(upstream?.id);
    expect(JSON.parse(answer.text).error.code).toBe('limit_requests');
  });

  it('answers 502 when Model Studio cannot be reached', async () => {
    const dead = await deadOrigin();
    let provider: TokenProvider | undefined;
    h = await startHarness({
      handler: (emulator) => {
        provider = createTokenProvider({
          apiKey: PERMANENT_KEY,
          baseUrl: emulator.url,
          expireInSeconds: 1800,
          retry: false,
        });
        return { provider: { proxy: provider }, baseUrl: dead };
      },
    });
    const answer = await send(h.url, 'POST', CHAT_PATH, json(CHAT_BODY));
    expect(answer.status).toBe(502);
    expect(JSON.parse(answer.text).error).toMatchObject({
      type: 'server_error',
      code: 'network_error',
    });
    const native = await send(h.url, 'POST', NATIVE_PATH, json(NATIVE_BODY));
    expect(native.status).toBe(502);
    expect(JSON.parse(native.text)).toMatchObject({ code: 'NetworkError' });
    await provider?.close();
  });

  it('answers 504 when upstream sends no headers within headersTimeoutMs', async () => {
    h = await startHarness({ handler: { proxy: { headersTimeoutMs: 300 } } });
    h.emulator.fault('chat', { type: 'hang' });
    const answer = await send(h.url, 'POST', CHAT_PATH, json(CHAT_BODY));
    expect(answer.status).toBe(504);
    expect(JSON.parse(answer.text).error.code).toBe('timeout');
  });

  it('answers 429 with Retry-After in the route dialect when minting is throttled', async () => {
    h = await startHarness();
    h.emulator.fault('tokens', { type: 'throttle', retryAfterSeconds: 4 });
    const answer = await send(h.url, 'POST', CHAT_PATH, json(CHAT_BODY));
    expect(answer.status).toBe(429);
    expect(answer.headers['retry-after']).toBe('4');
    expect(JSON.parse(answer.text).error.type).toBe('rate_limit_error');
    expect(inference(h)).toEqual([]);
  });

  it('answers 404 for unknown routes under the prefix, and leaves other paths alone', async () => {
    h = await startHarness();
    const unknown = await send(h.url, 'GET', '/dashscope/nothing-here');
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.text)).toMatchObject({ code: 'NotFound' });
    const compat = await send(h.url, 'GET', '/dashscope/compatible-mode/v2/models');
    expect(compat.status).toBe(404);
    expect(JSON.parse(compat.text).error.code).toBe('not_found');
    const outside = await send(h.url, 'GET', '/elsewhere');
    expect(outside.status).toBe(404);
    const ws = await send(h.url, 'GET', '/dashscope/api-ws/v1/inference');
    expect(ws.status).toBe(426);
    expect(h.emulator.requests).toEqual([]);
  });

  it('calls next() for paths outside the prefix', async () => {
    h = await startHarness({
      listener: (handler) => (req, res) => {
        handler(req, res, () => {
          res.statusCode = 418;
          res.end('next');
        });
      },
    });
    const answer = await send(h.url, 'GET', '/elsewhere');
    expect([answer.status, answer.text]).toEqual([418, 'next']);
  });
});
