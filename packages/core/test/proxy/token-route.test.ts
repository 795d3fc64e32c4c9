import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type Harness, leakedKeys, send, startHarness } from './harness.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});
afterAll(() => {
  expect(leakedKeys()).toEqual([]);
});

const TOKEN = '/dashscope/token';

describe('token route', () => {
  it('answers POST with a temporary key, its expiry and Cache-Control: no-store', async () => {
    h = await startHarness();
    const answer = await send(h.url, 'POST', TOKEN);
    expect(answer.status).toBe(200);
    expect(answer.headers['cache-control']).toBe('no-store');
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    const body = JSON.parse(answer.text) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(['expires_at', 'token']);
    expect(body.token).toMatch(/^st-/);
    expect(typeof body.expires_at).toBe('number');
    const ttl = (body.expires_at as number) - h.emulator.now();
    expect(ttl).toBeGreaterThan(30);
    expect(ttl).toBeLessThanOrEqual(61);
    const mint = h.emulator.requests.find((r) => r.route === 'tokens');
    expect(mint?.path).toBe('/api/v1/tokens?expire_in_seconds=60');
  });

  it('refuses other methods with 405 and Allow: POST, OPTIONS', async () => {
    h = await startHarness();
    const answer = await send(h.url, 'GET', TOKEN);
    expect(answer.status).toBe(405);
    expect(answer.headers.allow).toBe('POST, OPTIONS');
    expect(JSON.parse(answer.text)).toMatchObject({ code: 'MethodNotAllowed' });
    expect(h.emulator.requests).toEqual([]);
  });

  it('answers 403 when authorize returns false, and asks nobody upstream', async () => {
    h = await startHarness({ handler: { authorize: () => false } });
    const answer = await send(h.url, 'POST', TOKEN);
    expect(answer.status).toBe(403);
    const body = JSON.parse(answer.text);
    expect(body).toMatchObject({ code: 'AccessDenied' });
    expect(typeof body.request_id).toBe('string');
    expect(answer.headers['x-request-id']).toBe(body.request_id);
    expect(h.emulator.requests).toEqual([]);
    expect(h.emulator.stats().tokensIssued).toBe(0);
  });

  it('answers 401 when authorize returns {status: 401}, and asks nobody upstream', async () => {
    h = await startHarness({
      handler: { authorize: async () => ({ status: 401, message: 'Sign in first.' }) },
    });
    const answer = await send(h.url, 'POST', TOKEN);
    expect(answer.status).toBe(401);
    expect(JSON.parse(answer.text)).toMatchObject({
      code: 'Unauthorized',
      message: 'Sign in first.',
    });
    expect(h.emulator.requests).toEqual([]);
  });

  it('answers 500 without the thrown message when authorize throws', async () => {
    h = await startHarness({
      handler: {
        authorize: () => {
          throw new Error('database password is hunter2');
        },
      },
    });
    const answer = await send(h.url, 'POST', TOKEN);
    expect(answer.status).toBe(500);
    expect(answer.text).not.toContain('hunter2');
    expect(h.emulator.requests).toEqual([]);
  });

  it('mints once for 50 concurrent POSTs', async () => {
    h = await startHarness({ emulator: { latencyMs: 50 } });
    const url = h.url;
    const answers = await Promise.all(Array.from({ length: 50 }, () => send(url, 'POST', TOKEN)));
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(new Set(answers.map((a) => JSON.parse(a.text).token)).size).toBe(1);
    expect(h.emulator.stats().tokensIssued).toBe(1);
    expect(h.emulator.requests.filter((r) => r.route === 'tokens')).toHaveLength(1);
  });

  it('answers 429 with Retry-After when minting is throttled', async () => {
    h = await startHarness();
    h.emulator.fault('tokens', { type: 'throttle', retryAfterSeconds: 7 });
    const answer = await send(h.url, 'POST', TOKEN);
    expect(answer.status).toBe(429);
    expect(answer.headers['retry-after']).toBe('7');
    expect(JSON.parse(answer.text).code).toMatch(/^Throttling/);
  });

  it("answers 502 (not 401) when Model Studio rejects the server's permanent key", async () => {
    h = await startHarness({ handler: { apiKey: 'sk-proxy-test-not-accepted-0000' } });
    const answer = await send(h.url, 'POST', TOKEN);
    expect(answer.status).toBe(502);
    expect(JSON.parse(answer.text)).toMatchObject({ code: 'InvalidApiKey' });
    expect(answer.text).not.toContain('sk-proxytest0not0accepted');
  });

  it('answers 500 MissingApiKey when the apiKey function returns nothing', async () => {
    h = await startHarness({ handler: { apiKey: () => undefined } });
    const answer = await send(h.url, 'POST', TOKEN);
    expect(answer.status).toBe(500);
    expect(JSON.parse(answer.text)).toMatchObject({ code: 'MissingApiKey' });
    expect(h.emulator.requests).toEqual([]);
  });

  it('is 404 when disabled with tokenRoute: false', async () => {
    h = await startHarness({ handler: { tokenRoute: false } });
    const answer = await send(h.url, 'POST', TOKEN);
    expect(answer.status).toBe(404);
    expect(h.emulator.requests).toEqual([]);
  });
});

describe('CORS', () => {
  const cors = {
    origins: ['https://app.example.com'],
    credentials: true,
    maxAgeSeconds: 120,
  };

  it('answers an allowed preflight with 204, the echoed origin and only safe headers', async () => {
    h = await startHarness({ handler: { cors } });
    const answer = await send(h.url, 'OPTIONS', TOKEN, {
      headers: {
        origin: 'https://app.example.com',
        'access-control-request-method': 'POST',
        'access-control-request-headers':
          'Content-Type, X-App-Version, Proxy-Authorization, Sec-Evil, X-Forwarded-For, bad header',
      },
    });
    expect(answer.status).toBe(204);
    expect(answer.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(answer.headers['access-control-allow-credentials']).toBe('true');
    expect(answer.headers['access-control-allow-methods']).toBe('POST');
    expect(answer.headers['access-control-allow-headers']).toBe('content-type, x-app-version');
    expect(answer.headers['access-control-max-age']).toBe('120');
    expect(answer.headers.vary).toContain('Origin');
    expect(h.emulator.requests).toEqual([]);
  });

  it('refuses a preflight from another origin with 403 and no CORS headers', async () => {
    h = await startHarness({ handler: { cors } });
    const answer = await send(h.url, 'OPTIONS', TOKEN, {
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });
    expect(answer.status).toBe(403);
    expect(Object.keys(answer.headers).filter((k) => k.startsWith('access-control-'))).toEqual([]);
  });

  it('refuses preflights with 403 when CORS is not configured', async () => {
    h = await startHarness();
    const answer = await send(h.url, 'OPTIONS', TOKEN, {
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' },
    });
    expect(answer.status).toBe(403);
    expect(answer.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('adds CORS headers to answers for allowed origins only', async () => {
    h = await startHarness({ handler: { cors } });
    const allowed = await send(h.url, 'POST', TOKEN, {
      headers: { origin: 'https://app.example.com' },
    });
    expect(allowed.status).toBe(200);
    expect(allowed.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(allowed.headers.vary).toContain('Origin');
    const other = await send(h.url, 'POST', TOKEN, { headers: { origin: 'https://evil.example' } });
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
    expect(other.headers.vary).toContain('Origin');
  });
});
