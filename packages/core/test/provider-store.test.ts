/**
 * The shared store tier of the token provider: providers sharing a store mint a key once; the
 * store holds nothing usable; a failing, hanging or garbled store never fails a call.
 */
import { describe, expect, it } from 'vitest';
import { createTokenProvider, type DashScopeError, type TokenProvider } from '../src/index.js';
import { DEFAULT_EMULATOR_API_KEY as KEY, tokenRequests, useEmulator } from './emulator-fixture.js';
import { type MemoryStore, memoryStore } from './memory-store.js';

const emulator = useEmulator();

function providers(store: MemoryStore, count: number, extra = {}): TokenProvider[] {
  return Array.from({ length: count }, () =>
    createTokenProvider({ apiKey: KEY, baseUrl: emulator().url, store, ...extra }),
  );
}

async function closeAll(list: TokenProvider[]): Promise<void> {
  await Promise.all(list.map((p) => p.close()));
}

describe('a store shared by several providers', () => {
  it('mints a key once for concurrent cold calls on every provider', async () => {
    const store = memoryStore();
    const fleet = providers(store, 4);
    const tokens = await Promise.all(
      Array.from({ length: 200 }, (_, i) => fleet[i % 4]?.getToken()),
    );
    expect(new Set(tokens.map((t) => t?.token)).size).toBe(1);
    expect(tokenRequests(emulator())).toBe(1);
    const stats = fleet.map((p) => p.stats());
    expect(stats.reduce((sum, s) => sum + s.mints, 0)).toBe(1);
    expect(stats.reduce((sum, s) => sum + (s.store?.hits ?? 0), 0)).toBe(3);
    await closeAll(fleet);
  });

  it('keeps neither the permanent key nor a temporary key readable in the store', async () => {
    const store = memoryStore();
    const [a] = providers(store, 1);
    const { token } = (await a?.getToken()) ?? { token: '' };
    const dump = JSON.stringify([...store.data.entries()]);
    expect(dump).not.toContain(KEY);
    expect(dump).not.toContain(token);
    expect(dump).not.toContain('st-');
    expect([...store.data.keys()].every((k) => /^token:[0-9a-f]{40}$/.test(k))).toBe(true);
    await a?.close();
  });

  it('a provider with another API key cannot read the stored token', async () => {
    const store = memoryStore();
    const [a] = providers(store, 1);
    await a?.getToken();
    const [b] = providers(store, 1, { apiKey: 'another-key-for-tests' });
    const error = await b?.getToken().catch((e: DashScopeError) => e);
    expect((error as DashScopeError).code).toBe('InvalidApiKey');
    expect(b?.stats().store?.hits).toBe(0);
    await closeAll([a, b] as TokenProvider[]);
  });

  it('a failed mint releases the lock, and the next call mints', async () => {
    const store = memoryStore();
    const [a] = providers(store, 1, { retry: false });
    emulator().fault('tokens', { type: 'system-error' });
    await expect(a?.getToken()).rejects.toMatchObject({ code: 'SystemError' });
    expect([...store.data.keys()].some((k) => k.startsWith('lock:'))).toBe(false);
    await expect(a?.getToken()).resolves.toMatchObject({ token: expect.stringMatching(/^st-/) });
    await a?.close();
  });

  it('forceRefresh mints a new token instead of reading the one in the store', async () => {
    const store = memoryStore();
    const [a, b] = providers(store, 2);
    const first = await a?.getToken();
    const forced = await b?.getToken({ forceRefresh: true });
    expect(forced?.token).not.toBe(first?.token);
    expect(tokenRequests(emulator())).toBe(2);
    await closeAll([a, b] as TokenProvider[]);
  });

  it('ignores garbage in the store and replaces it', async () => {
    const store = memoryStore();
    const [a] = providers(store, 1);
    await a?.getToken();
    for (const [key, item] of store.data) store.data.set(key, { ...item, value: 'v1.garbage' });
    const [b] = providers(store, 1);
    await expect(b?.getToken()).resolves.toMatchObject({ token: expect.stringMatching(/^st-/) });
    expect(tokenRequests(emulator())).toBe(2);
    const [c] = providers(store, 1);
    await c?.getToken();
    expect(c?.stats().store?.hits).toBe(1);
    await closeAll([a, b, c] as TokenProvider[]);
  });
});

describe('a store that fails is not an outage', () => {
  it('mints locally when the store rejects, reports the outage once, and uses the store again', async () => {
    const store = memoryStore();
    store.mode = 'down';
    const reported: DashScopeError[] = [];
    let clock = Date.now();
    const make = () =>
      createTokenProvider({
        apiKey: KEY,
        baseUrl: emulator().url,
        store,
        now: () => clock,
        onStoreError: (error) => reported.push(error),
      });
    const a = make();
    await expect(a.getToken()).resolves.toMatchObject({ token: expect.stringMatching(/^st-/) });
    await a.getToken({ forceRefresh: true });
    expect(reported).toHaveLength(1);
    expect(reported[0]?.code).toBe('StoreUnavailable');
    expect(a.stats().store).toMatchObject({ healthy: false, fallbacks: 2 });
    expect(a.stats().store?.errors).toBeGreaterThanOrEqual(1);

    store.mode = 'up';
    clock += 1_500;
    await a.getToken({ forceRefresh: true });
    expect(a.stats().store?.healthy).toBe(true);
    expect([...store.data.keys()].some((k) => k.startsWith('token:'))).toBe(true);
    await a.close();
  });

  it('gives up on a hanging store after storeTimeoutMs and mints locally', async () => {
    const store = memoryStore();
    store.mode = 'hang';
    const a = createTokenProvider({
      apiKey: KEY,
      baseUrl: emulator().url,
      store,
      storeTimeoutMs: 50,
    });
    await expect(a.getToken()).resolves.toMatchObject({ token: expect.stringMatching(/^st-/) });
    expect(a.stats().store).toMatchObject({ healthy: false, fallbacks: 1, errors: 1 });
    await a.close();
  });

  it('refuses a store without the four calls, and a bad storeTimeoutMs', () => {
    expect(() =>
      createTokenProvider({ apiKey: KEY, store: { get: async () => null } as never }),
    ).toThrow(/setIfAbsent/);
    expect(() =>
      createTokenProvider({ apiKey: KEY, store: memoryStore(), storeTimeoutMs: 0 }),
    ).toThrow(/storeTimeoutMs/);
  });
});
