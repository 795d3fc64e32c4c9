import { afterEach, describe, expect, it } from 'vitest';
import {
  createTokenProvider,
  type DashScopeError,
  type TokenProvider,
  type TokenProviderOptions,
} from '../src/index.js';
import {
  DEFAULT_EMULATOR_API_KEY as KEY,
  rejection,
  tokenRequests,
  until,
  useEmulator,
} from './emulator-fixture.js';

const emulator = useEmulator();

function manualClock(): { now: () => number; advance: (ms: number) => void } {
  let shift = 0;
  return {
    now: () => Date.now() + shift,
    advance: (ms) => {
      shift += ms;
    },
  };
}

const providers: TokenProvider[] = [];
function provider(opts: TokenProviderOptions = {}): TokenProvider {
  const created = createTokenProvider({ apiKey: KEY, baseUrl: emulator().url, ...opts });
  providers.push(created);
  return created;
}

afterEach(async () => {
  await Promise.all(providers.splice(0).map((p) => p.close()));
});

describe('retries', () => {
  it('waits for Retry-After before retrying a throttled mint', async () => {
    emulator().fault('tokens', { type: 'throttle', retryAfterSeconds: 1 });
    const tokens = provider();
    const started = Date.now();
    const token = await tokens.getToken();
    expect(token.token).toMatch(/^st-/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(tokenRequests(emulator())).toBe(2);
    expect(tokens.stats()).toMatchObject({ errors: 1, mints: 1 });
  });

  it('gives up after maxAttempts', async () => {
    emulator().fault('tokens', { type: 'system-error' }, Number.POSITIVE_INFINITY);
    const tokens = provider({ retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 20 } });
    const error = await rejection(tokens.getToken());
    expect(error).toMatchObject({ code: 'SystemError', status: 502, retryable: true });
    expect(tokenRequests(emulator())).toBe(3);
    expect(tokens.stats()).toMatchObject({ errors: 3, mints: 0 });
  });

  it('does not wait for a Retry-After that would end past maxElapsedMs', async () => {
    emulator().fault('tokens', { type: 'throttle', retryAfterSeconds: 30 });
    const tokens = provider({ retry: { maxElapsedMs: 2000 } });
    const started = Date.now();
    const error = await rejection(tokens.getToken());
    expect(error).toMatchObject({
      code: 'Throttling.RateQuota',
      status: 429,
      retryAfterSeconds: 30,
    });
    expect(Date.now() - started).toBeLessThan(1500);
    expect(tokenRequests(emulator())).toBe(1);
  });

  it('does not retry an error that is not retryable, nor with retry: false', async () => {
    const wrongKey = provider({ apiKey: 'sk-not-known-to-the-emulator-1' });
    expect(await rejection(wrongKey.getToken())).toMatchObject({ code: 'InvalidApiKey' });
    expect(tokenRequests(emulator())).toBe(1);

    emulator().fault('tokens', { type: 'system-error' }, 5);
    const once = provider({ retry: false });
    expect(await rejection(once.getToken())).toMatchObject({ code: 'SystemError' });
    expect(tokenRequests(emulator())).toBe(2);
  });
});

describe('stale-on-error', () => {
  it('serves the old token when a background refresh fails, reports it, and surfaces the error once the token no longer satisfies', async () => {
    const clock = manualClock();
    const reported: DashScopeError[] = [];
    const tokens = provider({
      expireInSeconds: 10,
      refreshAheadSeconds: 4,
      minValiditySeconds: 1,
      retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 1 },
      now: clock.now,
      onRefreshError: (error) => reported.push(error),
    });
    const first = await tokens.getToken();
    emulator().fault('tokens', { type: 'system-error' }, Number.POSITIVE_INFINITY);

    clock.advance(6000); // ~3 s left: in the refresh window
    expect(await tokens.getToken()).toBe(first);
    await until(() => reported.length === 1);
    expect(reported[0]).toMatchObject({ code: 'SystemError' });
    expect(tokens.stats().errors).toBe(2);

    // The failure did not poison the entry: the next caller in the window tries again.
    expect(await tokens.getToken()).toBe(first);
    await until(() => reported.length === 2);
    expect(tokenRequests(emulator())).toBe(5);

    clock.advance(2500); // ~0.5 s left: below minValiditySeconds
    const error = await rejection(tokens.getToken());
    expect(error).toMatchObject({ code: 'SystemError', status: 502 });
    expect(reported).toHaveLength(2);

    emulator().clearFaults();
    expect((await tokens.getToken()).token).not.toBe(first.token);
  });

  it('serves the old token when a forced refresh hits a connection reset', async () => {
    const reported: DashScopeError[] = [];
    const tokens = provider({ retry: false, onRefreshError: (error) => reported.push(error) });
    const first = await tokens.getToken();
    emulator().fault('tokens', { type: 'reset' });
    expect(await tokens.getToken({ forceRefresh: true })).toBe(first);
    expect(reported.map((e) => e.code)).toEqual(['NetworkError']);
    expect(tokens.stats()).toMatchObject({ errors: 1, mints: 1 });
  });

  it('surfaces the error when the old token does not satisfy the caller', async () => {
    const tokens = provider({ retry: false });
    await tokens.getToken();
    emulator().fault('tokens', { type: 'html-502' });
    const error = await rejection(
      tokens.getToken({ forceRefresh: true, minValiditySeconds: 59.5 }),
    );
    expect(error).toMatchObject({ code: 'BadGateway' });
  });

  it('ignores an onRefreshError that throws', async () => {
    const tokens = provider({
      retry: false,
      onRefreshError: () => {
        throw new Error('reporter broke');
      },
    });
    const first = await tokens.getToken();
    emulator().fault('tokens', { type: 'system-error' });
    expect(await tokens.getToken({ forceRefresh: true })).toBe(first);
  });
});

describe('negative caching', () => {
  it('remembers InvalidApiKey for negativeCacheSeconds, then asks again', async () => {
    const clock = manualClock();
    const tokens = provider({
      apiKey: 'sk-unknown-key-for-negative-cache',
      negativeCacheSeconds: 10,
      now: clock.now,
    });
    const first = await rejection(tokens.getToken());
    expect(first).toMatchObject({ code: 'InvalidApiKey', status: 401 });
    const second = await rejection(tokens.getToken());
    expect(second).toMatchObject({ code: 'InvalidApiKey', requestId: first.requestId });
    expect(await rejection(tokens.getToken({ forceRefresh: true }))).toMatchObject({
      code: 'InvalidApiKey',
    });
    expect(tokenRequests(emulator())).toBe(1);

    clock.advance(11_000);
    await rejection(tokens.getToken());
    expect(tokenRequests(emulator())).toBe(2);

    tokens.invalidate();
    await rejection(tokens.getToken());
    expect(tokenRequests(emulator())).toBe(3);
  });

  it('drops the cached token of a key that was revoked', async () => {
    const revoked = 'sk-soon-to-be-revoked-000000001';
    emulator().addApiKey(revoked);
    const reported: DashScopeError[] = [];
    const tokens = provider({ apiKey: revoked, onRefreshError: (e) => reported.push(e) });
    await tokens.getToken();
    emulator().revokeApiKey(revoked);
    const error = await rejection(tokens.getToken({ forceRefresh: true }));
    expect(error).toMatchObject({ code: 'InvalidApiKey' });
    expect(tokens.stats().size).toBe(0);
    expect(await rejection(tokens.getToken())).toMatchObject({ code: 'InvalidApiKey' });
    expect(tokenRequests(emulator())).toBe(2);
    expect(reported).toHaveLength(0);
  });

  it('does not remember InvalidApiKey when negativeCacheSeconds is 0', async () => {
    const tokens = provider({
      apiKey: 'sk-unknown-key-no-negative-cache',
      negativeCacheSeconds: 0,
    });
    await rejection(tokens.getToken());
    await rejection(tokens.getToken());
    expect(tokenRequests(emulator())).toBe(2);
  });
});
