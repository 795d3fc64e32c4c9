import { describe, expect, it } from 'vitest';
import { bearer, chatBody, KEY, mint, PATHS, postJson, start } from './helpers.js';

describe('control routes', () => {
  it('POST /__emulator/faults queues a fault; DELETE clears them', async () => {
    const emulator = await start();
    const queued = await postJson(
      emulator,
      '/__emulator/faults',
      {
        route: 'chat',
        fault: { type: 'throttle', retryAfterSeconds: 1 },
        times: 2,
      },
      {},
    );
    expect(queued.status).toBe(200);
    const first = await postJson(emulator, PATHS.chat, chatBody());
    expect(first.status).toBe(429);
    expect(first.headers.get('retry-after')).toBe('1');
    expect((await fetch(`${emulator.url}/__emulator/faults`, { method: 'DELETE' })).status).toBe(
      200,
    );
    expect((await postJson(emulator, PATHS.chat, chatBody())).status).toBe(200);
  });

  it('rejects a malformed fault with 400', async () => {
    const emulator = await start();
    const res = await postJson(
      emulator,
      '/__emulator/faults',
      { route: 'chat', fault: { type: 'nope' } },
      {},
    );
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toMatch(/unknown fault type/);
    const badRoute = await postJson(
      emulator,
      '/__emulator/faults',
      { route: 'x', fault: { type: 'hang' } },
      {},
    );
    expect(badRoute.status).toBe(400);
  });

  it('GET /__emulator/requests lists requests with permanent keys masked; DELETE clears', async () => {
    const emulator = await start();
    const { token } = await mint(emulator);
    await postJson(emulator, PATHS.chat, chatBody(), { ...bearer(token), cookie: 'a=b' });
    const res = await fetch(`${emulator.url}/__emulator/requests`);
    const text = await res.text();
    expect(text).not.toContain(KEY);
    const { requests } = JSON.parse(text) as {
      requests: Array<{ route: string; headers: Record<string, string> }>;
    };
    expect(requests.map((r) => r.route)).toEqual(['tokens', 'chat']);
    expect(requests[0]?.headers.authorization).toMatch(/^Bearer sk-em\*+$/);
    expect(requests[1]?.headers.authorization).toBe(`Bearer ${token}`);
    expect(requests[1]?.headers.cookie).toBe('a=b');
    await fetch(`${emulator.url}/__emulator/requests`, { method: 'DELETE' });
    expect(emulator.requests).toHaveLength(0);
  });

  it('POST /__emulator/clock moves the clock', async () => {
    const emulator = await start();
    const res = await postJson(emulator, '/__emulator/clock', { offsetSeconds: 1000 }, {});
    expect(res.status).toBe(200);
    expect(((await res.json()) as { offsetSeconds: number }).offsetSeconds).toBe(1000);
    expect(emulator.now() - Date.now() / 1000).toBeGreaterThan(990);
    const bad = await postJson(emulator, '/__emulator/clock', { offsetSeconds: 'soon' }, {});
    expect(bad.status).toBe(400);
  });

  it('POST /__emulator/latency and /__emulator/chunk-delay change the timings', async () => {
    const emulator = await start();
    expect((await postJson(emulator, '/__emulator/latency', { ms: 0 }, {})).status).toBe(200);
    expect((await postJson(emulator, '/__emulator/chunk-delay', { ms: 1 }, {})).status).toBe(200);
    expect((await postJson(emulator, '/__emulator/latency', { ms: -1 }, {})).status).toBe(400);
  });

  it('POST /__emulator/keys adds and revokes permanent keys without echoing them', async () => {
    const emulator = await start();
    const key = 'sk-control-added-key-3333333333';
    const added = await postJson(emulator, '/__emulator/keys', { add: key }, {});
    expect(added.status).toBe(200);
    expect(await added.text()).not.toContain(key);
    expect((await postJson(emulator, PATHS.chat, chatBody(), bearer(key))).status).toBe(200);
    await postJson(emulator, '/__emulator/keys', { revoke: key }, {});
    expect((await postJson(emulator, PATHS.chat, chatBody(), bearer(key))).status).toBe(401);
  });

  it('GET /__emulator/stats reports counters', async () => {
    const emulator = await start();
    await mint(emulator);
    await postJson(emulator, PATHS.chat, chatBody());
    const stats = (await (await fetch(`${emulator.url}/__emulator/stats`)).json()) as {
      tokensIssued: number;
      requests: Record<string, number>;
      openConnections: number;
    };
    expect(stats.tokensIssued).toBe(1);
    expect(stats.requests.tokens).toBe(1);
    expect(stats.requests.chat).toBe(1);
    expect(stats.openConnections).toBeGreaterThanOrEqual(1);
  });

  it('answers 405 with Allow for a wrong method', async () => {
    const emulator = await start();
    const res = await fetch(`${emulator.url}/__emulator/stats`, { method: 'DELETE' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, OPTIONS');
  });

  it('is not served when controlRoutes is false', async () => {
    const emulator = await start({ controlRoutes: false });
    const res = await fetch(`${emulator.url}/__emulator/stats`);
    expect(res.status).toBe(404);
    expect(emulator.requests.map((r) => r.route)).toEqual(['unknown']);
  });

  it('is not delayed by latency', async () => {
    const emulator = await start({ latencyMs: 60_000 });
    expect((await fetch(`${emulator.url}/__emulator/stats`)).status).toBe(200);
  });
});
