import { describe, expect, it } from 'vitest';
import { createServiceCache, describeService } from '../src/index.js';
import { on, openApiCalls, SERVICE, start } from './fixture.js';

describe('describeService', () => {
  it('returns the endpoint and token, and nothing of the service configuration', async () => {
    const emulator = await start({
      paiEas: { services: [{ name: SERVICE, token: 'svc-token-1' }] },
    });
    const description = await describeService({ ...on(emulator), service: SERVICE });
    expect(description).toEqual({
      serviceName: SERVICE,
      status: 'Running',
      internetEndpoint: `${emulator.url}/api/predict/${SERVICE}`,
      intranetEndpoint: `${emulator.url}/api/predict/${SERVICE}`,
      accessToken: 'svc-token-1',
      requestId: expect.stringMatching(/^[0-9A-F-]{36}$/),
    });
    expect(openApiCalls(emulator)[0]!.path).toBe(`/api/v2/services/cn-shanghai/${SERVICE}`);
  });
});

describe('createServiceCache', () => {
  it('describes each service once for concurrent lookups and serves the cache afterwards', async () => {
    const emulator = await start();
    const cache = createServiceCache(on(emulator));
    const results = await Promise.all([cache.get(SERVICE), cache.get(SERVICE), cache.get(SERVICE)]);
    await cache.get(SERVICE);
    expect(new Set(results.map((r) => r.token)).size).toBe(1);
    expect(results[0]!.endpoint).toBe(`${emulator.url}/api/predict/${SERVICE}`);
    expect(openApiCalls(emulator)).toHaveLength(1);
    expect(cache.stats()).toMatchObject({ lookups: 1, hits: 1, size: 1 });
  });

  it('describes the service again after refreshSeconds', async () => {
    const emulator = await start();
    let now = 1_000_000;
    const cache = createServiceCache({ ...on(emulator), refreshSeconds: 60, clock: () => now });
    await cache.get(SERVICE);
    now += 59_000;
    await cache.get(SERVICE);
    expect(openApiCalls(emulator)).toHaveLength(1);
    now += 2_000;
    await cache.get(SERVICE);
    expect(openApiCalls(emulator)).toHaveLength(2);
  });

  it('serves the last description while EAS fails retryably, within maxStaleSeconds', async () => {
    const emulator = await start();
    let now = 1_000_000;
    const cache = createServiceCache({
      ...on(emulator),
      retry: false,
      refreshSeconds: 60,
      maxStaleSeconds: 600,
      clock: () => now,
    });
    const first = await cache.get(SERVICE);
    emulator.fault('pai-eas', { type: 'system-error' }, Number.POSITIVE_INFINITY);
    now += 120_000;
    await expect(cache.get(SERVICE)).resolves.toEqual(first);
    now += 600_000;
    await expect(cache.get(SERVICE)).rejects.toMatchObject({ code: 'InternalError' });
  });

  it('re-describes once after a 401 from the service, for every concurrent caller', async () => {
    const emulator = await start();
    const cache = createServiceCache(on(emulator));
    const { endpoint, token } = await cache.get(SERVICE);
    const ok = await fetch(`${endpoint}/v1/models`, { headers: { authorization: token! } });
    expect(ok.status).toBe(200);
    // Two callers saw a 401 with the same token: one lookup, and a stale token does not evict a new one.
    cache.invalidate(SERVICE, token);
    cache.invalidate(SERVICE, token);
    const again = await cache.get(SERVICE);
    cache.invalidate(SERVICE, 'an-older-token');
    await cache.get(SERVICE);
    expect(again.token).toBe(token);
    expect(openApiCalls(emulator)).toHaveLength(2);
  });

  it('uses explicit endpoints and tokens without any AccessKey or request', async () => {
    const emulator = await start();
    const cache = createServiceCache({
      region: 'cn-shanghai',
      endpoint: emulator.url,
      credentials: { accessKeyId: 'unused', accessKeySecret: 'unused' },
      explicit: { my_llm: { endpoint: 'https://example.invalid/api/predict/my_llm/', token: 't' } },
    });
    await expect(cache.get('my_llm')).resolves.toEqual({
      endpoint: 'https://example.invalid/api/predict/my_llm',
      token: 't',
    });
    expect(openApiCalls(emulator)).toHaveLength(0);
  });

  it('refuses a service name EAS does not allow before any request', async () => {
    const emulator = await start();
    const cache = createServiceCache(on(emulator));
    await expect(cache.get('../x')).rejects.toMatchObject({
      code: 'InvalidParameter',
      status: 400,
    });
    expect(openApiCalls(emulator)).toHaveLength(0);
  });

  it("stops only an aborted caller's wait; the shared lookup serves the others", async () => {
    const emulator = await start({ latencyMs: 100 });
    const cache = createServiceCache(on(emulator));
    const controller = new AbortController();
    const aborted = cache.get(SERVICE, { signal: controller.signal });
    const patient = cache.get(SERVICE);
    await emulator.waitForRequest((r) => r.route === 'pai-eas');
    controller.abort();
    await expect(aborted).rejects.toMatchObject({ code: 'Aborted', status: 499 });
    await expect(patient).resolves.toMatchObject({
      endpoint: `${emulator.url}/api/predict/${SERVICE}`,
    });
    expect(openApiCalls(emulator)).toHaveLength(1);
  });
});
