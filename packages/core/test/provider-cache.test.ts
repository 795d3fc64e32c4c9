import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  createTokenProvider,
  DashScopeError,
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

const TENANT_A = 'sk-tenant-a-0000000000000001';
const TENANT_B = 'sk-tenant-b-0000000000000002';
const TENANT_C = 'sk-tenant-c-0000000000000003';

const emulator = useEmulator({ apiKeys: [KEY, TENANT_A, TENANT_B, TENANT_C] });

/** A clock that starts at the real time and is moved by hand. */
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
  vi.unstubAllEnvs();
});

describe('createTokenProvider', () => {
  it('answers a cold stampede of 10,000 callers with exactly one token request', async () => {
    emulator().setLatency(50);
    const tokens = provider();
    const results = await Promise.all(Array.from({ length: 10_000 }, () => tokens.getToken()));
    expect(tokenRequests(emulator())).toBe(1);
    expect(new Set(results.map((r) => r.token)).size).toBe(1);
    expect(tokens.stats()).toMatchObject({ misses: 10_000, hits: 0, mints: 1, errors: 0, size: 1 });
  });

  it('serves cache hits without asking upstream', async () => {
    const tokens = provider();
    const first = await tokens.getToken();
    for (let i = 0; i < 100; i++) expect(await tokens.getToken()).toBe(first);
    expect(tokenRequests(emulator())).toBe(1);
    expect(tokens.stats()).toMatchObject({ hits: 100, misses: 1, mints: 1 });
  });

  it('refreshes ahead in the background: the caller gets the old token at once, one mint replaces it', async () => {
    const clock = manualClock();
    const tokens = provider({
      expireInSeconds: 5,
      refreshAheadSeconds: 2,
      minValiditySeconds: 0.5,
      now: clock.now,
    });
    const first = await tokens.getToken();
    expect(await tokens.getToken()).toBe(first); // fresh: no refresh yet
    expect(tokenRequests(emulator())).toBe(1);

    clock.advance(2000); // ~2 s left (of ~4 s local life): inside the window, past half-life
    emulator().setLatency(100);
    const during = await Promise.all(Array.from({ length: 50 }, () => tokens.getToken()));
    for (const token of during) expect(token).toBe(first);
    await until(() => tokens.stats().mints === 2);
    expect(tokenRequests(emulator())).toBe(2);

    const next = await tokens.getToken();
    expect(next.token).not.toBe(first.token);
    expect(tokenRequests(emulator())).toBe(2);
  });

  it('refreshes ahead on the real clock with a 4 s TTL', async () => {
    // Local life is ~3 s (the Date header's 1 s resolution is taken off); the window opens at
    // half-life (~1.5 s), while the token still has more than minValiditySeconds left.
    const tokens = provider({
      expireInSeconds: 4,
      refreshAheadSeconds: 2.5,
      minValiditySeconds: 0.2,
    });
    const first = await tokens.getToken();
    await new Promise((resolve) => setTimeout(resolve, 1600));
    const started = Date.now();
    expect(await tokens.getToken()).toBe(first);
    expect(Date.now() - started).toBeLessThan(1000);
    await until(() => tokens.stats().mints === 2);
    expect(tokenRequests(emulator())).toBe(2);
    expect((await tokens.getToken()).token).not.toBe(first.token);
  });

  it('never hands out a token with less life than minValiditySeconds, nor one past expiry', async () => {
    const clock = manualClock();
    const tokens = provider({ expireInSeconds: 60, refreshAheadSeconds: 0, now: clock.now });
    const first = await tokens.getToken();
    clock.advance(45_000); // ~14 s left
    expect(await tokens.getToken({ minValiditySeconds: 10 })).toBe(first);
    const second = await tokens.getToken({ minValiditySeconds: 20 });
    expect(second.token).not.toBe(first.token);
    expect(second.expiresAt - emulator().now()).toBeGreaterThan(50);

    clock.advance(56_000); // ~2-3 s left of the second one
    expect(await tokens.getToken({ minValiditySeconds: 0 })).toBe(second);
    clock.advance(4_000); // 60 s after its request started: past its local expiry
    const third = await tokens.getToken({ minValiditySeconds: 0 });
    expect(third.token).not.toBe(second.token);
    expect(tokenRequests(emulator())).toBe(3);
  });

  it('refuses a minValiditySeconds the TTL cannot satisfy, without asking upstream', async () => {
    const tokens = provider({ expireInSeconds: 30 });
    const error = await rejection(tokens.getToken({ minValiditySeconds: 30 }));
    expect(error).toMatchObject({ code: 'InvalidParameter', status: 400 });
    expect(error.message).toMatch(/expireInSeconds 30/);
    expect(tokenRequests(emulator())).toBe(0);
    expect(() =>
      createTokenProvider({ apiKey: KEY, expireInSeconds: 10, minValiditySeconds: 12 }),
    ).toThrow(DashScopeError);
  });

  it('rejects invalid options at construction', () => {
    const bad: TokenProviderOptions[] = [
      { expireInSeconds: 0 },
      { expireInSeconds: 1801 },
      { maxKeys: 0 },
      { refreshAheadSeconds: -1 },
      { negativeCacheSeconds: Number.NaN },
      { retry: { maxAttempts: 0 } },
      { region: 'moon-1' as 'cn-beijing' },
      { baseUrl: 'nope' },
    ];
    for (const opts of bad) {
      expect(() => createTokenProvider({ apiKey: KEY, ...opts })).toThrow(
        expect.objectContaining({ code: 'InvalidParameter' }),
      );
    }
  });

  it('mints a new token on forceRefresh and serves it afterwards', async () => {
    const tokens = provider();
    const first = await tokens.getToken();
    const forced = await tokens.getToken({ forceRefresh: true });
    expect(forced.token).not.toBe(first.token);
    expect(await tokens.getToken()).toBe(forced);
    expect(tokenRequests(emulator())).toBe(2);
  });

  it('drops the entry on invalidate so the next call mints', async () => {
    const tokens = provider();
    const first = await tokens.getToken();
    tokens.invalidate();
    expect(tokens.stats().size).toBe(0);
    const second = await tokens.getToken();
    expect(second.token).not.toBe(first.token);
    tokens.invalidate(KEY);
    await tokens.getToken();
    expect(tokenRequests(emulator())).toBe(3);
  });

  it('counts hits, misses, mints, errors and size', async () => {
    const tokens = provider({ apiKey: TENANT_A, retry: false });
    await tokens.getToken();
    await tokens.getToken();
    await tokens.getToken({ apiKey: TENANT_B });
    emulator().fault('tokens', { type: 'system-error' });
    await rejection(tokens.getToken({ apiKey: TENANT_C }));
    expect(tokens.stats()).toEqual({ hits: 1, misses: 3, mints: 2, errors: 1, size: 2 });
  });

  it('keeps at most maxKeys API keys (LRU)', async () => {
    const tokens = provider({ maxKeys: 2 });
    await tokens.getToken({ apiKey: TENANT_A });
    await tokens.getToken({ apiKey: TENANT_B });
    await tokens.getToken({ apiKey: TENANT_A }); // A is now the most recently used
    await tokens.getToken({ apiKey: TENANT_C }); // evicts B
    expect(tokens.stats().size).toBe(2);
    await tokens.getToken({ apiKey: TENANT_A });
    expect(tokenRequests(emulator())).toBe(3);
    await tokens.getToken({ apiKey: TENANT_B });
    expect(tokenRequests(emulator())).toBe(4);
  });

  it('never shares entries between tenants', async () => {
    const tokens = provider();
    const [a, b] = await Promise.all([
      tokens.getToken({ apiKey: TENANT_A }),
      tokens.getToken({ apiKey: TENANT_B }),
    ]);
    expect(a.token).not.toBe(b.token);
    const auth = emulator()
      .requests.map((r) => r.headers.authorization)
      .sort();
    expect(auth).toEqual([`Bearer ${TENANT_A}`, `Bearer ${TENANT_B}`]);
    tokens.invalidate(TENANT_A);
    expect(await tokens.getToken({ apiKey: TENANT_B })).toBe(b);
    expect((await tokens.getToken({ apiKey: TENANT_A })).token).not.toBe(a.token);
    expect(tokens.stats().size).toBe(2);
  });

  it("stops only the aborted caller's wait; the shared mint goes on", async () => {
    emulator().setLatency(300);
    const tokens = provider();
    const controller = new AbortController();
    const aborted = tokens.getToken({ signal: controller.signal });
    const patient = tokens.getToken();
    setTimeout(() => controller.abort(), 50);
    const error = await rejection(aborted);
    expect(error).toMatchObject({ code: 'Aborted', status: 499, retryable: false });
    await expect(patient).resolves.toMatchObject({ token: expect.stringMatching(/^st-/) });
    expect(tokenRequests(emulator())).toBe(1);
    const already = await rejection(
      tokens.getToken({ apiKey: TENANT_A, signal: AbortSignal.abort() }),
    );
    expect(already).toMatchObject({ code: 'Aborted' });
  });

  it('reads the default key from DASHSCOPE_API_KEY', async () => {
    vi.stubEnv('DASHSCOPE_API_KEY', TENANT_A);
    const tokens = createTokenProvider({ baseUrl: emulator().url });
    providers.push(tokens);
    await tokens.getToken();
    expect(emulator().requests[0]?.headers.authorization).toBe(`Bearer ${TENANT_A}`);
  });

  it('rejects with MissingApiKey when no key is configured or passed', async () => {
    vi.stubEnv('DASHSCOPE_API_KEY', '');
    const tokens = createTokenProvider({ baseUrl: emulator().url });
    providers.push(tokens);
    const error = await rejection(tokens.getToken());
    expect(error).toMatchObject({ code: 'MissingApiKey', status: 500 });
    expect(await rejection(tokens.getToken({ apiKey: '' }))).toMatchObject({
      code: 'MissingApiKey',
    });
    await expect(tokens.getToken({ apiKey: TENANT_A })).resolves.toBeTruthy();
    expect(tokenRequests(emulator())).toBe(1);
  });

  it('hands out frozen tokens with exactly token and expiresAt', async () => {
    const tokens = provider();
    const token = await tokens.getToken();
    expect(Object.isFrozen(token)).toBe(true);
    expect(Object.keys(token).sort()).toEqual(['expiresAt', 'token']);
  });

  it('uses an injected mint function', async () => {
    let calls = 0;
    const tokens = provider({
      mint: async (opts) => {
        calls++;
        expect(opts.baseUrl).toBe(emulator().url);
        expect(opts.expireInSeconds).toBe(60);
        return { token: `st-fake-${calls}`, expiresAt: Math.floor(Date.now() / 1000) + 60 };
      },
    });
    expect(await tokens.getToken()).toEqual({ token: 'st-fake-1', expiresAt: expect.any(Number) });
    await tokens.getToken();
    expect(calls).toBe(1);
    expect(tokenRequests(emulator())).toBe(0);
  });
});
