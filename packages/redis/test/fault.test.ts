/**
 * Redis down is not an outage: with Redis stopped mid-run, then hanging (SIGSTOP), then back,
 * every getToken call resolves, nothing is left unhandled, each outage is reported once, and the
 * store is used again once it answers.
 */
import {
  createTokenProvider,
  type DashScopeError,
  type TokenProvider,
} from '@dashscope-token/core';
import {
  type Emulator,
  DEFAULT_EMULATOR_API_KEY as KEY,
  startEmulator,
} from '@dashscope-token/emulator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisStore } from '../src/index.js';
import { CLIENTS } from './clients.js';
import { RedisServer, redisAvailable } from './redis-server.js';

/** Calls `getToken` (forcing a refresh, so that each call goes through the store tier). */
async function calls(provider: TokenProvider, count: number): Promise<void> {
  const results = await Promise.allSettled(
    Array.from({ length: count }, (_, i) => provider.getToken({ forceRefresh: i === 0 })),
  );
  const failures = results.filter((r) => r.status === 'rejected');
  expect(failures).toEqual([]);
}

/** Calls until the store answers again (it is left alone for 1 s after a failure). */
async function untilHealthy(provider: TokenProvider): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (provider.stats().store?.healthy !== true) {
    if (Date.now() > deadline) throw new Error('the store was not used again within 15 s');
    await calls(provider, 1);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe.skipIf(!redisAvailable())('a Redis that goes away, hangs and comes back', () => {
  let emulator: Emulator;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  beforeAll(async () => {
    emulator = await startEmulator();
    process.on('unhandledRejection', onUnhandled);
  });
  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    await emulator?.close();
  });

  it.each(CLIENTS)(
    'over %s: every call resolves, the store is used again',
    async (_name, connect) => {
      const redis = await RedisServer.start();
      const test = await connect(redis.url);
      const store = createRedisStore({ client: test.client });
      const reported: DashScopeError[] = [];
      const make = () =>
        createTokenProvider({
          apiKey: KEY,
          baseUrl: emulator.url,
          store,
          // Long enough that a busy 2-core CI machine does not make a healthy Redis look down
          // (which would count as one more outage); a SIGSTOPped one never answers anyway.
          storeTimeoutMs: 1_000,
          onStoreError: (error) => reported.push(error),
        });
      const provider = make();
      try {
        await calls(provider, 20);
        expect(provider.stats().store).toMatchObject({ errors: 0, healthy: true });

        await redis.stop();
        await calls(provider, 20);
        await calls(provider, 20);
        expect(provider.stats().store?.healthy).toBe(false);
        expect(reported).toHaveLength(1);
        expect(reported[0]).toMatchObject({ code: 'StoreUnavailable', status: 503 });

        await redis.restart();
        await untilHealthy(provider);

        redis.pause();
        await calls(provider, 20);
        await new Promise((resolve) => setTimeout(resolve, 1_100));
        await calls(provider, 20);
        expect(provider.stats().store?.healthy).toBe(false);
        expect(reported).toHaveLength(2);

        redis.resume();
        // No lock left behind by the hang: one applied late, after its caller gave up, would make
        // every instance wait for it to expire. (The commands queued during the hang run first.)
        expect((await test.keys()).filter((key) => key.includes(':lock:'))).toEqual([]);
        await untilHealthy(provider);
        await calls(provider, 1);
        // A new instance now finds the token the first one stored.
        const other = make();
        await other.getToken();
        expect(other.stats()).toMatchObject({ mints: 0, store: { hits: 1 } });
        await other.close();
        expect(reported).toHaveLength(2);
        expect(unhandled).toEqual([]);
      } finally {
        await provider.close();
        await test.close();
        await redis.stop();
      }
    },
    60_000,
  );
});
