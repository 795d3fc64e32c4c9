/**
 * Per-client limits on Redis: `rate-limiter-flexible`'s RateLimiterRedis over each client kind
 * shares one budget between stores, and a Redis that is down never fails a request (the handler
 * counts locally).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createDashScopeHandler } from '@dashscope-token/core';
import { DEFAULT_EMULATOR_API_KEY as KEY } from '@dashscope-token/emulator';
import { describe, expect, it } from 'vitest';
import { createRedisStore } from '../src/index.js';
import { CLIENTS } from './clients.js';
import { RedisServer, redisAvailable, useRedisAndEmulator } from './redis-server.js';

describe.skipIf(!redisAvailable())('limits on Redis', () => {
  const { redis, emulator } = useRedisAndEmulator();

  it.each(CLIENTS)(
    'over %s, two stores count one budget in one atomic script',
    async (_name, connect) => {
      const a = await connect(redis().url);
      const b = await connect(redis().url);
      try {
        const prefix = `limits-${Math.random().toString(36).slice(2)}:`;
        const rule = { name: 'proxy', points: 3, durationSeconds: 60 };
        const first = createRedisStore({ client: a.client, prefix }).createRateLimiter(rule);
        const second = createRedisStore({ client: b.client, prefix }).createRateLimiter(rule);
        const decisions = [];
        for (let i = 0; i < 5; i++) decisions.push(await (i % 2 ? second : first).consume('ip:1'));
        expect(decisions.map((d) => d.allowed)).toEqual([true, true, true, false, false]);
        for (const d of decisions) {
          expect(d.msBeforeNext).toBeGreaterThan(0);
          expect(d.msBeforeNext).toBeLessThanOrEqual(60_000);
        }
        expect((await first.consume('ip:2')).allowed).toBe(true);
        expect(await a.raw(`${prefix}limit:proxy:ip:1`)).toBe('5');
      } finally {
        await a.close();
        await b.close();
      }
    },
  );

  it.each(CLIENTS)(
    'over %s, a Redis that is down fails no request: limits fall back to local',
    async (_name, connect) => {
      const own = await RedisServer.start();
      const test = await connect(own.url);
      const handler = createDashScopeHandler({
        apiKey: KEY,
        baseUrl: emulator().url,
        store: createRedisStore({ client: test.client }),
        storeTimeoutMs: 200,
        limits: { tokenRoute: { points: 3, durationSeconds: 60 } },
      });
      const server = http.createServer(handler);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/dashscope/token`;
      try {
        await own.stop();
        const statuses: number[] = [];
        for (let i = 0; i < 5; i++) statuses.push((await fetch(url, { method: 'POST' })).status);
        expect(statuses).toEqual([200, 200, 200, 429, 429]);
        const limits = handler.stats().limits!;
        expect(limits.shared).toBe(true);
        expect(limits.storeErrors).toBeGreaterThanOrEqual(1);
      } finally {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
        await handler.close();
        await test.close();
        await own.stop();
      }
    },
  );
});
