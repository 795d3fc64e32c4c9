import { describe, expect, it } from 'vitest';
import {
  bearer,
  chatBody,
  generationBody,
  mint,
  PATHS,
  parseCompatibleSse,
  parseNativeSse,
  postJson,
  start,
} from './helpers.js';

describe('fault injection', () => {
  it('throttle answers 429 Throttling.RateQuota, with Retry-After only when given', async () => {
    const emulator = await start();
    emulator.fault('tokens', { type: 'throttle' });
    emulator.fault('tokens', { type: 'throttle', retryAfterSeconds: 3 });
    const first = await fetch(emulator.url + PATHS.tokens, { method: 'POST', headers: bearer() });
    expect(first.status).toBe(429);
    expect(first.headers.get('retry-after')).toBeNull();
    const body = (await first.json()) as Record<string, string>;
    expect(body.code).toBe('Throttling.RateQuota');
    expect(body.request_id).toBe(first.headers.get('x-request-id'));
    const second = await fetch(emulator.url + PATHS.tokens, { method: 'POST', headers: bearer() });
    expect(second.status).toBe(429);
    expect(second.headers.get('retry-after')).toBe('3');
    const third = await fetch(emulator.url + PATHS.tokens, { method: 'POST', headers: bearer() });
    expect(third.status).toBe(200);
  });

  it('throttle on compatible-mode uses the OpenAI error shape', async () => {
    const emulator = await start();
    emulator.fault('chat', { type: 'throttle' });
    const res = await postJson(emulator, PATHS.chat, chatBody());
    expect(res.status).toBe(429);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('limit_requests');
  });

  it('system-error answers 500 SystemError', async () => {
    const emulator = await start();
    emulator.fault('generation', { type: 'system-error' });
    const res = await postJson(emulator, PATHS.generation, generationBody());
    expect(res.status).toBe(500);
    expect(((await res.json()) as { code: string }).code).toBe('SystemError');
  });

  it('html-502 answers a text/html gateway page', async () => {
    const emulator = await start();
    emulator.fault('tokens', { type: 'html-502' });
    const res = await fetch(emulator.url + PATHS.tokens, { method: 'POST', headers: bearer() });
    expect(res.status).toBe(502);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await res.text()).toContain('502 Bad Gateway');
  });

  it('malformed-json answers 200 application/json that does not parse', async () => {
    const emulator = await start();
    emulator.fault('tokens', { type: 'malformed-json' });
    const res = await fetch(emulator.url + PATHS.tokens, { method: 'POST', headers: bearer() });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    await expect(res.json()).rejects.toThrow(SyntaxError);
  });

  it('reset destroys the connection: fetch rejects', async () => {
    const emulator = await start();
    emulator.fault('tokens', { type: 'reset' });
    await expect(
      fetch(emulator.url + PATHS.tokens, { method: 'POST', headers: bearer() }),
    ).rejects.toThrow();
    expect(
      (await fetch(emulator.url + PATHS.tokens, { method: 'POST', headers: bearer() })).status,
    ).toBe(200);
    const [reset] = emulator.requests;
    expect(reset?.closedAt).toBeGreaterThan(0);
    expect(reset?.clientClosedEarly).toBe(false);
    expect(emulator.stats().tokensIssued).toBe(1);
  });

  it('hang never answers; the client aborts and close() still returns', async () => {
    const emulator = await start();
    emulator.fault('chat', { type: 'hang' });
    const client = new AbortController();
    const pending = postJson(emulator, PATHS.chat, chatBody(), bearer(), {
      signal: client.signal,
    });
    // Leave only once the request has arrived (a fixed timer can fire before it does).
    await emulator.waitForRequest((r) => r.route === 'chat');
    client.abort();
    await expect(pending).rejects.toThrow();
    const closed = await emulator.waitForRequest((r) => r.clientClosedEarly);
    expect(closed.route).toBe('chat');
    expect(closed.status).toBeUndefined();
    await emulator.close();
  });

  it('close() ends a hanging request whose client is still waiting', async () => {
    const emulator = await start();
    emulator.fault('*', { type: 'hang' });
    const pending = fetch(emulator.url + PATHS.tokens, { method: 'POST', headers: bearer() });
    await emulator.waitForRequest((r) => r.route === 'tokens');
    await emulator.close();
    await expect(pending).rejects.toThrow();
  });

  it('invalid-api-key answers 401 even with a valid key', async () => {
    const emulator = await start();
    emulator.fault('generation', { type: 'invalid-api-key' });
    emulator.fault('chat', { type: 'invalid-api-key' });
    const native = await postJson(emulator, PATHS.generation, generationBody());
    expect(native.status).toBe(401);
    expect(((await native.json()) as { code: string }).code).toBe('InvalidApiKey');
    const compat = await postJson(emulator, PATHS.chat, chatBody());
    expect(compat.status).toBe(401);
    expect(((await compat.json()) as { error: { code: string } }).error.code).toBe(
      'invalid_api_key',
    );
  });

  it('status answers anything, JSON or text, with extra headers', async () => {
    const emulator = await start();
    emulator.fault('tokens', {
      type: 'status',
      status: 403,
      body: { code: 'AccessDenied', message: 'no' },
    });
    emulator.fault('tokens', {
      type: 'status',
      status: 503,
      body: 'maintenance',
      headers: { 'retry-after': '7' },
    });
    const a = await fetch(emulator.url + PATHS.tokens, { method: 'POST', headers: bearer() });
    expect(a.status).toBe(403);
    expect(await a.json()).toEqual({ code: 'AccessDenied', message: 'no' });
    const b = await fetch(emulator.url + PATHS.tokens, { method: 'POST', headers: bearer() });
    expect(b.status).toBe(503);
    expect(b.headers.get('retry-after')).toBe('7');
    expect(b.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await b.text()).toBe('maintenance');
  });

  it('fires before authentication, like a gateway', async () => {
    const emulator = await start();
    emulator.fault('tokens', { type: 'throttle' });
    const res = await fetch(emulator.url + PATHS.tokens, { method: 'POST' });
    expect(res.status).toBe(429);
  });

  it('applies to the next `times` calls, FIFO, and only to its route', async () => {
    const emulator = await start();
    emulator.fault('tokens', { type: 'system-error' }, 2);
    emulator.fault('tokens', { type: 'throttle' });
    expect((await postJson(emulator, PATHS.chat, chatBody())).status).toBe(200);
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      statuses.push(
        (await fetch(emulator.url + PATHS.tokens, { method: 'POST', headers: bearer() })).status,
      );
    }
    expect(statuses).toEqual([500, 500, 429, 200]);
  });

  it("'*' matches any route, in queue order with a route's own faults", async () => {
    const emulator = await start();
    emulator.fault('*', { type: 'throttle' });
    emulator.fault('chat', { type: 'system-error' });
    expect((await postJson(emulator, PATHS.chat, chatBody())).status).toBe(429);
    expect((await postJson(emulator, PATHS.chat, chatBody())).status).toBe(500);
    emulator.fault('*', { type: 'html-502' }, 2);
    expect(
      (await fetch(emulator.url + PATHS.tokens, { method: 'POST', headers: bearer() })).status,
    ).toBe(502);
    expect((await postJson(emulator, PATHS.generation, generationBody())).status).toBe(502);
    expect((await postJson(emulator, PATHS.generation, generationBody())).status).toBe(200);
  });

  it('clearFaults() drops every queued fault', async () => {
    const emulator = await start();
    emulator.fault('*', { type: 'system-error' }, Number.POSITIVE_INFINITY);
    expect((await postJson(emulator, PATHS.chat, chatBody())).status).toBe(500);
    expect((await postJson(emulator, PATHS.chat, chatBody())).status).toBe(500);
    emulator.clearFaults();
    expect((await postJson(emulator, PATHS.chat, chatBody())).status).toBe(200);
  });

  it('rejects malformed faults', async () => {
    const emulator = await start();
    // @ts-expect-error: unknown type on purpose
    expect(() => emulator.fault('chat', { type: 'explode' })).toThrow(TypeError);
    // @ts-expect-error: unknown route on purpose
    expect(() => emulator.fault('nowhere', { type: 'hang' })).toThrow(TypeError);
    expect(() => emulator.fault('chat', { type: 'hang' }, 0)).toThrow(RangeError);
    expect(() => emulator.fault('chat', { type: 'status', status: 42, body: null })).toThrow(
      TypeError,
    );
  });

  it('stream-error sends some frames then a native event:error', async () => {
    const emulator = await start();
    emulator.fault('generation', {
      type: 'stream-error',
      afterChunks: 2,
      code: 'DataInspectionFailed',
      status: 400,
    });
    const res = await postJson(emulator, PATHS.generation, generationBody(), {
      ...bearer(),
      'x-dashscope-sse': 'enable',
    });
    expect(res.status).toBe(200);
    const frames = parseNativeSse(await res.text());
    expect(frames.map((f) => f.event)).toEqual(['result', 'result', 'error']);
    expect(frames[2]).toMatchObject({
      id: '3',
      status: 400,
      data: { code: 'DataInspectionFailed' },
    });
  });

  it('stream-error on compatible-mode ends with an error chunk and no [DONE]', async () => {
    const emulator = await start();
    emulator.fault('chat', { type: 'stream-error' });
    const res = await postJson(emulator, PATHS.chat, chatBody('x', { stream: true }));
    const events = parseCompatibleSse(await res.text());
    expect(events).not.toContain('[DONE]');
    expect(events.at(-1)).toMatchObject({ error: { type: 'internal_error' } });
  });

  it('stream-cut breaks the connection mid-stream', async () => {
    const emulator = await start();
    emulator.fault('chat', { type: 'stream-cut', afterChunks: 1 });
    const res = await postJson(emulator, PATHS.chat, chatBody('x', { stream: true }));
    expect(res.status).toBe(200);
    await expect(res.text()).rejects.toThrow();
  });

  it('stream faults on a non-streaming call answer plainly', async () => {
    const emulator = await start();
    emulator.fault('chat', { type: 'stream-error', status: 503, code: 'ServiceUnavailable' });
    const res = await postJson(emulator, PATHS.chat, chatBody());
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
      'ServiceUnavailable',
    );
  });

  it('faults also hit temporary-key traffic', async () => {
    const emulator = await start();
    const { token } = await mint(emulator);
    emulator.fault('chat', { type: 'system-error' });
    expect((await postJson(emulator, PATHS.chat, chatBody(), bearer(token))).status).toBe(500);
  });
});
