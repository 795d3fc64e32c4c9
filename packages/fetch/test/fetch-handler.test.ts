import { createTokenProvider } from '@dashscope-token/core/neutral';
import { DEFAULT_EMULATOR_WORKSPACE } from '@dashscope-token/emulator';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createFetchHandler } from '../src/index.js';
import {
  CHAT_BODY,
  CHAT_PATH,
  call,
  type Harness,
  leakedFragments,
  NATIVE_BODY,
  NATIVE_PATH,
  ORIGIN,
  PERMANENT_KEY,
  request,
  SECOND_KEY,
  seen,
  startHarness,
} from './harness.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

afterAll(() => {
  // Across every answer of this file: no fragment of a permanent key.
  expect(seen.length).toBeGreaterThan(20);
  expect(leakedFragments()).toEqual([]);
});

function inference(harness: Harness) {
  return harness.emulator.requests.filter((r) => r.route === 'chat' || r.route === 'generation');
}

describe('fetch handler: routes', () => {
  it('vends a temporary key on POST {prefix}/token, never the permanent one', async () => {
    h = await startHarness();
    const answer = await call(h, request('/dashscope/token', { method: 'POST' }));
    expect(answer.status).toBe(200);
    expect(answer.headers.get('cache-control')).toBe('no-store');
    const body = JSON.parse(answer.text) as { token: string; expires_at: number };
    expect(body.token).toMatch(/^st-/);
    expect(body.expires_at - h.emulator.now()).toBeLessThanOrEqual(60);
    expect(answer.text).not.toContain(PERMANENT_KEY);
  });

  it('answers 405 with Allow to other methods on the token route, and 404 when it is off', async () => {
    h = await startHarness();
    const get = await call(h, request('/dashscope/token'));
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST, OPTIONS');
    expect(JSON.parse(get.text)).toMatchObject({ code: 'MethodNotAllowed' });
    await h.close();
    h = await startHarness({ tokenRoute: false });
    expect((await call(h, request('/dashscope/token', { method: 'POST' }))).status).toBe(404);
  });

  it('handle() resolves undefined outside the prefix (to fall through), fetch() answers 404', async () => {
    h = await startHarness();
    expect(await h.handler.handle(request('/elsewhere'))).toBeUndefined();
    expect(
      await h.handler.handle(request('/dashscopex/token', { method: 'POST' })),
    ).toBeUndefined();
    const answer = await call(h, request('/elsewhere'));
    expect(answer.status).toBe(404);
    expect(JSON.parse(answer.text)).toMatchObject({ code: 'NotFound' });
    expect(h.emulator.requests).toHaveLength(0);
  });

  it('proxies both APIs with an injected temporary key and without the client credentials', async () => {
    h = await startHarness();
    const chat = await call(
      h,
      request(CHAT_PATH, {
        json: CHAT_BODY,
        headers: {
          authorization: 'Bearer user-session',
          cookie: 'sid=1',
          'x-dashscope-workspace': DEFAULT_EMULATOR_WORKSPACE,
        },
      }),
    );
    expect(chat.status).toBe(200);
    expect(JSON.parse(chat.text).choices[0].message.content).toBeTypeOf('string');
    const native = await call(h, request(NATIVE_PATH, { json: NATIVE_BODY }));
    expect(native.status).toBe(200);
    const [up] = inference(h);
    expect(up?.headers.authorization).toMatch(/^Bearer st-/);
    expect(up?.headers.cookie).toBeUndefined();
    expect(up?.headers['x-dashscope-workspace']).toBe(DEFAULT_EMULATOR_WORKSPACE);
    expect(up?.body).toBe(JSON.stringify(CHAT_BODY));
  });

  it('refuses unsafe targets and minting through the proxy, reaching nobody upstream', async () => {
    h = await startHarness();
    const encoded = await call(
      h,
      request('/dashscope/api/v1/services%2f..%2ftokens', { method: 'POST' }),
    );
    expect(encoded.status).toBe(400);
    expect(JSON.parse(encoded.text)).toMatchObject({ code: 'InvalidPath' });
    const mint = await call(
      h,
      request('/dashscope/api/v1/tokens?expire_in_seconds=1800', { method: 'POST' }),
    );
    expect(mint.status).toBe(403);
    expect(h.emulator.requests).toHaveLength(0);
  });

  it('answers a WebSocket upgrade with 501, and a plain request on a WebSocket route with 426', async () => {
    h = await startHarness();
    const upgrade = await call(
      h,
      request('/dashscope/api-ws/v1/inference', {
        headers: { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-version': '13' },
      }),
    );
    expect(upgrade.status).toBe(501);
    expect(JSON.parse(upgrade.text)).toMatchObject({ code: 'NotImplemented' });
    const plain = await call(h, request('/dashscope/api-ws/v1/inference'));
    expect(plain.status).toBe(426);
  });
});

describe('fetch handler: errors in both dialects', () => {
  it('speaks OpenAI on compatible-mode routes and Model Studio elsewhere', async () => {
    h = await startHarness({ authorize: (req) => req.headers.get('x-user') !== null });
    const chat = await call(h, request(CHAT_PATH, { json: CHAT_BODY }));
    expect(chat.status).toBe(403);
    expect(JSON.parse(chat.text).error).toMatchObject({
      type: 'permission_error',
      code: 'access_denied',
    });
    const native = await call(h, request(NATIVE_PATH, { json: NATIVE_BODY }));
    expect(native.status).toBe(403);
    const body = JSON.parse(native.text);
    expect(body).toMatchObject({ code: 'AccessDenied' });
    expect(body.request_id).toBe(native.headers.get('x-request-id'));
    expect(inference(h)).toHaveLength(0);
  });

  it('answers 502 without the key when Model Studio refuses the permanent key', async () => {
    h = await startHarness({ apiKey: 'sk-fetch-test-Unknown-Zp3Wq8' });
    const chat = await call(h, request(CHAT_PATH, { json: CHAT_BODY }));
    expect(chat.status).toBe(502);
    expect(JSON.parse(chat.text).error.code).toBe('invalid_api_key');
    expect(chat.text).not.toContain('Unknown-Zp3Wq8');
    const token = await call(h, request('/dashscope/token', { method: 'POST' }));
    expect(token.status).toBe(502);
    expect(JSON.parse(token.text).code).toBe('InvalidApiKey');
  });

  it('answers 502 NetworkError when Model Studio cannot be reached', async () => {
    h = await startHarness();
    const token = await h.handler.getToken();
    expect(token.token).toMatch(/^st-/);
    await h.emulator.close();
    const chat = await call(h, request(CHAT_PATH, { json: CHAT_BODY }));
    expect(chat.status).toBe(502);
    expect(JSON.parse(chat.text).error.code).toBe('network_error');
  });

  it('answers 504 when upstream sends no headers within headersTimeoutMs', async () => {
    h = await startHarness({ proxy: { headersTimeoutMs: 200 } });
    h.emulator.fault('chat', { type: 'hang' });
    const chat = await call(h, request(CHAT_PATH, { json: CHAT_BODY }));
    expect(chat.status).toBe(504);
    expect(JSON.parse(chat.text).error.code).toBe('timeout');
  });
});

describe('fetch handler: streaming', () => {
  it('relays SSE unbuffered: the first event arrives while the stream is still going', async () => {
    h = await startHarness();
    h.emulator.setChunkDelay(300);
    const response = await h.handler.fetch(
      request(CHAT_PATH, { json: { ...CHAT_BODY, stream: true } }),
    );
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(response.headers.get('x-accel-buffering')).toBe('no');
    const reader = response.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toMatch(/^data: /);
    expect(first).not.toContain('[DONE]');
    let rest = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      rest += new TextDecoder().decode(value);
    }
    seen.push(first + rest);
    expect(rest.trimEnd().endsWith('data: [DONE]')).toBe(true);
    expect(h.handler.stats().activeRequests).toBe(0);
  });

  it('aborts the upstream call when request.signal aborts mid-stream', async () => {
    h = await startHarness();
    h.emulator.setChunkDelay(200);
    const abort = new AbortController();
    const response = await h.handler.fetch(
      request(CHAT_PATH, { json: { ...CHAT_BODY, stream: true }, signal: abort.signal }),
    );
    const reader = response.body!.getReader();
    await reader.read();
    abort.abort();
    const upstream = await h.emulator.waitForRequest(
      (r) => r.route === 'chat' && r.clientClosedEarly,
      5000,
    );
    expect(upstream.clientClosedEarly).toBe(true);
  });

  it('aborts the upstream call when the client cancels the answer body', async () => {
    h = await startHarness();
    h.emulator.setChunkDelay(200);
    const response = await h.handler.fetch(
      request(CHAT_PATH, { json: { ...CHAT_BODY, stream: true } }),
    );
    const reader = response.body!.getReader();
    await reader.read();
    await reader.cancel();
    const upstream = await h.emulator.waitForRequest(
      (r) => r.route === 'chat' && r.clientClosedEarly,
      5000,
    );
    expect(upstream.clientClosedEarly).toBe(true);
    expect(h.handler.stats().activeRequests).toBe(0);
  });

  it('streams a request body of unknown length upstream (duplex: half)', async () => {
    h = await startHarness({ proxy: { replayBufferBytes: 0 } });
    const bytes = new TextEncoder().encode(JSON.stringify(CHAT_BODY));
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes.slice(0, 10));
        controller.enqueue(bytes.slice(10));
        controller.close();
      },
    });
    const answer = await call(
      h,
      request(CHAT_PATH, {
        method: 'POST',
        body,
        duplex: 'half',
        headers: { 'content-type': 'application/json' },
      }),
    );
    expect(answer.status).toBe(200);
    expect(inference(h)[0]?.body).toBe(JSON.stringify(CHAT_BODY));
  });
});

describe('fetch handler: body limits', () => {
  it('answers 413 to a body over proxy.maxBodyBytes, sending nothing upstream', async () => {
    h = await startHarness({ proxy: { maxBodyBytes: 200 } });
    const big = { ...CHAT_BODY, messages: [{ role: 'user', content: 'x'.repeat(500) }] };
    const declared = await call(
      h,
      request(CHAT_PATH, {
        json: big,
        headers: { 'content-length': String(JSON.stringify(big).length) },
      }),
    );
    expect(declared.status).toBe(413);
    expect(JSON.parse(declared.text).error.code).toBe('payload_too_large');
    const undeclared = await call(
      h,
      request(NATIVE_PATH, { json: { ...NATIVE_BODY, pad: 'y'.repeat(500) } }),
    );
    expect(undeclared.status).toBe(413);
    expect(JSON.parse(undeclared.text)).toMatchObject({ code: 'PayloadTooLarge' });
    expect(inference(h)).toHaveLength(0);
  });

  it('refuses models outside proxy.allowModels with 403', async () => {
    h = await startHarness({ proxy: { allowModels: ['qwen-plus'] } });
    const refused = await call(
      h,
      request(CHAT_PATH, { json: { ...CHAT_BODY, model: 'qwen-max' } }),
    );
    expect(refused.status).toBe(403);
    expect((await call(h, request(CHAT_PATH, { json: CHAT_BODY }))).status).toBe(200);
    expect(inference(h)).toHaveLength(1);
  });
});

describe('fetch handler: keys', () => {
  it('replays once with a fresh key after an upstream 401', async () => {
    h = await startHarness();
    expect((await call(h, request(CHAT_PATH, { json: CHAT_BODY }))).status).toBe(200);
    h.emulator.clearRequests();
    h.emulator.fault('chat', { type: 'invalid-api-key' });
    const answer = await call(h, request(CHAT_PATH, { json: CHAT_BODY }));
    expect(answer.status).toBe(200);
    const chats = inference(h);
    expect(chats).toHaveLength(2);
    expect(chats[0]?.headers.authorization).not.toBe(chats[1]?.headers.authorization);
    expect(chats[1]?.body).toBe(JSON.stringify(CHAT_BODY));
  });

  it("answers 502 InvalidApiKey with x-should-retry: false and Model Studio's request id when the replay is refused too", async () => {
    h = await startHarness();
    h.emulator.fault('chat', { type: 'invalid-api-key' }, 2);
    const compatible = await call(h, request(CHAT_PATH, { json: CHAT_BODY }));
    expect(compatible.status).toBe(502);
    expect(JSON.parse(compatible.text).error.code).toBe('invalid_api_key');
    expect(compatible.headers.get('x-should-retry')).toBe('false');
    expect(compatible.headers.get('x-request-id')).toBe(inference(h)[1]?.id);
    h.emulator.fault('generation', { type: 'invalid-api-key' }, 2);
    const native = await call(h, request(NATIVE_PATH, { json: NATIVE_BODY }));
    expect(native.status).toBe(502);
    expect(JSON.parse(native.text)).toMatchObject({ code: 'InvalidApiKey' });
    expect(native.headers.get('x-should-retry')).toBe('false');
  });

  it('injects a key with the streaming floor into streams and shares one key per tenant', async () => {
    h = await startHarness({
      apiKey: (req) => (req.headers.get('x-tenant') === 'b' ? SECOND_KEY : PERMANENT_KEY),
    });
    await call(h, request(CHAT_PATH, { json: CHAT_BODY }));
    await call(h, request(CHAT_PATH, { json: CHAT_BODY }));
    await call(h, request(CHAT_PATH, { json: CHAT_BODY, headers: { 'x-tenant': 'b' } }));
    const auth = inference(h).map((r) => r.headers.authorization);
    expect(auth[0]).toBe(auth[1]);
    expect(auth[2]).not.toBe(auth[0]);
    const mints = h.emulator.requests.filter((r) => r.route === 'tokens');
    expect(mints.map((m) => m.path)).toEqual([
      '/api/v1/tokens?expire_in_seconds=1800',
      '/api/v1/tokens?expire_in_seconds=1800',
    ]);
  });

  it('never hands a browser the key injected into proxied calls', async () => {
    h = await startHarness();
    await call(h, request(CHAT_PATH, { json: CHAT_BODY }));
    const injected = inference(h)[0]?.headers.authorization;
    const vended = JSON.parse(
      (await call(h, request('/dashscope/token', { method: 'POST' }))).text,
    ).token;
    expect(injected).toBe(`Bearer ${(await h.handler.getToken()).token}`);
    expect(`Bearer ${vended}`).not.toBe(injected);
    expect(h.handler.stats().routeTokens?.mints).toBe(1);
    expect(h.handler.stats().proxyTokens.mints).toBe(1);
  });

  it('refuses one provider for both the token route and the proxy', async () => {
    const shared = createTokenProvider({ apiKey: PERMANENT_KEY, baseUrl: 'http://127.0.0.1:9' });
    expect(() => createFetchHandler({ provider: { proxy: shared, tokenRoute: shared } })).toThrow(
      expect.objectContaining({ code: 'InvalidParameter' }),
    );
    expect(() =>
      createFetchHandler({ provider: shared as unknown as { proxy: typeof shared } }),
    ).toThrow(expect.objectContaining({ code: 'InvalidParameter' }));
    await shared.close();
  });
});

describe('fetch handler: CORS', () => {
  it('answers preflights for allowed origins and refuses others', async () => {
    h = await startHarness({ cors: { origins: [ORIGIN] } });
    const ok = await call(
      h,
      request(CHAT_PATH, {
        method: 'OPTIONS',
        headers: {
          origin: ORIGIN,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'content-type, cookie',
        },
      }),
    );
    expect(ok.status).toBe(204);
    expect(ok.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(ok.headers.get('access-control-allow-headers')).toBe('content-type');
    const evil = await call(
      h,
      request(CHAT_PATH, {
        method: 'OPTIONS',
        headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
      }),
    );
    expect(evil.status).toBe(403);
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();
    const chat = await call(
      h,
      request(CHAT_PATH, { json: CHAT_BODY, headers: { origin: ORIGIN } }),
    );
    expect(chat.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(chat.headers.get('vary')).toMatch(/Origin/);
  });
});

describe('fetch handler: logging', () => {
  it('logs one line per answered request without keys or query strings', async () => {
    const lines: string[] = [];
    h = await startHarness({
      logger: { info: (message, fields) => lines.push(`${message} ${JSON.stringify(fields)}`) },
    });
    await call(h, request(`${CHAT_PATH}?api_key=${PERMANENT_KEY}`, { json: CHAT_BODY }));
    await call(h, request('/dashscope/token', { method: 'POST' }));
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^POST \/dashscope\/compatible-mode\/v1\/chat\/completions 200/);
    expect(lines.join('\n')).not.toContain('api_key');
    expect(lines.join('\n')).not.toContain(PERMANENT_KEY.slice(3, 11));
    seen.push(...lines);
  });
});
