/**
 * createRedisStore over node-redis 4/5 and ioredis 5/6 against a real redis-server: the four
 * store calls, and the token provider on it (one mint for two instances, nothing usable at rest).
 */
import { randomUUID } from 'node:crypto';
import { createTokenProvider } from '@dashscope-token/core';
import { DEFAULT_EMULATOR_API_KEY as KEY } from '@dashscope-token/emulator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisStore } from '../src/index.js';
import { CLIENTS, type TestClient } from './clients.js';
import { redisAvailable, tokenMints, useRedisAndEmulator } from './redis-server.js';

describe.skipIf(!redisAvailable())('createRedisStore', () => {
  const { redis, emulator } = useRedisAndEmulator();

  describe.each(CLIENTS)('over %s', (_name, connect) => {
    let test: TestClient;
    beforeAll(async () => {
      test = await connect(redis().url);
    });
    afterAll(async () => {
      await test?.close();
    });

    it('gets what it set, under the prefix, until it expires', async () => {
      const prefix = `t-${randomUUID()}:`;
      const store = createRedisStore({ client: test.client, prefix });
      expect(await store.get('a')).toBeUndefined();
      await store.set('a', 'one', 60_000);
      expect(await store.get('a')).toBe('one');
      expect(await test.raw(`${prefix}a`)).toBe('one');
      await store.set('b', 'short', 30);
      await new Promise((resolve) => setTimeout(resolve, 80));
      expect(await store.get('b')).toBeUndefined();
    });

    it('sets if absent once, and deletes only for the value it holds', async () => {
      const store = createRedisStore({ client: test.client, prefix: `t-${randomUUID()}:` });
      expect(await store.setIfAbsent('lock', 'me', 60_000)).toBe(true);
      expect(await store.setIfAbsent('lock', 'you', 60_000)).toBe(false);
      await store.deleteIfEquals('lock', 'you');
      expect(await store.get('lock')).toBe('me');
      await store.deleteIfEquals('lock', 'me');
      expect(await store.get('lock')).toBeUndefined();
      expect(await store.setIfAbsent('lock', 'you', 60_000)).toBe(true);
    });

    it('two providers on one Redis mint a key once, and Redis holds nothing usable', async () => {
      const prefix = `t-${randomUUID()}:`;
      const store = createRedisStore({ client: test.client, prefix });
      const make = () => createTokenProvider({ apiKey: KEY, baseUrl: emulator().url, store });
      const [a, b] = [make(), make()];
      const tokens = await Promise.all(
        Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? a : b).getToken()),
      );
      expect(new Set(tokens.map((t) => t.token)).size).toBe(1);
      expect(tokenMints(emulator())).toBe(1);

      const keys = (await test.keys()).filter((k) => k.startsWith(prefix));
      expect(keys.length).toBeGreaterThan(0);
      const values = await Promise.all(keys.map((k) => test.raw(k)));
      const everything = JSON.stringify([keys, values]);
      expect(everything).not.toContain(KEY);
      expect(everything).not.toContain(tokens[0]?.token);
      expect(everything).not.toContain('st-');
      await Promise.all([a.close(), b.close()]);
    });
  });

  it('refuses something that is not a Redis client', () => {
    expect(() => createRedisStore({ client: {} as never })).toThrow(TypeError);
  });
});
