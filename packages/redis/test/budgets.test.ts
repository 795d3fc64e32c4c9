/**
 * Budgets on Redis: one count per identity hash and period (`INCRBY` + `PEXPIREAT` in one
 * script) over each client kind, shared by every handler on the server; a Redis that is down
 * fails no request (each instance counts by itself).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  Budgets,
  budgetWindow,
  createDashScopeHandler,
  type DashScopeHandler,
  Metering,
} from '@dashscope-token/core';
import { DEFAULT_EMULATOR_API_KEY as KEY } from '@dashscope-token/emulator';
import { describe, expect, it } from 'vitest';
import { createRedisStore } from '../src/index.js';
import { CLIENTS } from './clients.js';
import { RedisServer, redisAvailable, useRedisAndEmulator } from './redis-server.js';

const CHAT = '/dashscope/compatible-mode/v1/chat/completions';
const CHAT_BODY = JSON.stringify({
  model: 'qwen-plus',
  messages: [{ role: 'user', content: 'Hello' }],
});

async function serve(handler: DashScopeHandler) {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    chat: (user: string) =>
      fetch(`${url}${CHAT}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-user': user },
        body: CHAT_BODY,
      }),
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await handler.close();
    },
  };
}

const prefixed = () => `budgets-${Math.random().toString(36).slice(2)}:`;

describe.skipIf(!redisAvailable())('budgets on Redis', () => {
  const { redis, emulator } = useRedisAndEmulator();

  it.each(CLIENTS)(
    'over %s, two stores add to one count per period, expired when the period ends',
    async (_name, connect) => {
      const a = await connect(redis().url);
      const b = await connect(redis().url);
      try {
        const prefix = prefixed();
        const options = { name: 'tokens', periodSeconds: 3600 } as const;
        const first = createRedisStore({ client: a.client, prefix }).createBudgetCounter(options);
        const second = createRedisStore({ client: b.client, prefix }).createBudgetCounter(options);
        const now = budgetWindow(3_600_000, Date.now());
        const next = budgetWindow(3_600_000, now.endsAt);
        const key = 'a'.repeat(32);
        expect(await first.get(key, now)).toBe(0);
        expect(await first.add(key, 40, now)).toBe(40);
        expect(await second.add(key, 25, now)).toBe(65);
        expect(await second.get(key, now)).toBe(65);
        // The next period starts at 0 without anyone resetting it.
        expect(await first.get(key, next)).toBe(0);
        const stored = `${prefix}budget:tokens:${now.index}:${key}`;
        expect(await a.keys()).toContain(stored);
        expect(await a.raw(stored)).toBe('65');
      } finally {
        await a.close();
        await b.close();
      }
    },
  );

  it('two handlers on one Redis share one requests budget, and keep no identity in it', async () => {
    const a = await connect0();
    const prefix = prefixed();
    const make = () =>
      createDashScopeHandler({
        apiKey: KEY,
        baseUrl: emulator().url,
        store: createRedisStore({ client: a.client, prefix }),
        limits: false,
        budgets: {
          requests: 3,
          periodSeconds: 3600,
          key: (req) => req.headers['x-user'] as string | undefined,
        },
      });
    const one = await serve(make());
    const two = await serve(make());
    try {
      const chats = () => emulator().requests.filter((r) => r.route === 'chat').length;
      const before = chats();
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) {
        const res = await (i % 2 ? two : one).chat('alice@example.com');
        statuses.push(res.status);
        await res.text();
      }
      expect(statuses).toEqual([200, 200, 200, 429, 429]);
      expect(chats() - before).toBe(3);
      const bob = await two.chat('bob@example.com');
      expect(bob.status).toBe(200);
      await bob.text();
      const keys = (await a.keys()).filter((k) => k.startsWith(`${prefix}budget:`));
      expect(keys).toHaveLength(2);
      for (const k of keys) {
        expect(k).toMatch(/^budgets-[a-z0-9]+:budget:requests:\d+:[0-9a-f]{32}$/);
      }
    } finally {
      await one.close();
      await two.close();
      await a.close();
    }
  });

  it('tokens reported to one instance refuse the identity on another', async () => {
    const a = await connect0();
    const prefix = prefixed();
    const make = () => {
      const metering = new Metering<{ user: string }>({});
      const budgets = Budgets.resolve<{ user: string }>(
        {
          budgets: { tokens: 100, periodSeconds: 60, key: (ctx) => ctx.user },
          store: createRedisStore({ client: a.client, prefix }),
        },
        metering,
      )!;
      return { metering, budgets };
    };
    const one = make();
    const two = make();
    try {
      const admitted = { apiKey: KEY, identity: undefined };
      const client = { address: '127.0.0.1', headers: {} };
      const check = (b: Budgets<{ user: string }>) =>
        b.check(b.identityOf({ user: 'carol' }, admitted, client, undefined));
      expect(await check(two.budgets)).toBeUndefined();
      one.metering.report(
        {
          identity: 'carol',
          keyHash: '0000000000000000',
          route: 'native',
          dialect: 'dashscope',
          path: '/api/v1/services/aigc/text-generation/generation',
          model: 'qwen-plus',
          inputTokens: 70,
          outputTokens: 50,
          totalTokens: 120,
          requestId: 'r',
          status: 200,
          durationMs: 1,
          complete: true,
        },
        { user: 'carol' },
      );
      // The count goes to Redis in the background; the other instance sees it once it landed.
      for (let i = 0; i < 50 && !(await a.keys()).some((k) => k.startsWith(prefix)); i++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      expect(await check(two.budgets)).toMatchObject({ status: 429, code: 'BudgetExceeded' });
    } finally {
      await a.close();
    }
  });

  it('a Redis that is down fails no request: budgets fall back to local counts', async () => {
    const own = await RedisServer.start();
    const [, connect] = CLIENTS[0]!;
    const test = await connect(own.url);
    const reported: string[] = [];
    const server = await serve(
      createDashScopeHandler({
        apiKey: KEY,
        baseUrl: emulator().url,
        store: createRedisStore({ client: test.client }),
        storeTimeoutMs: 200,
        onStoreError: (error) => reported.push(error.message),
        limits: false,
        budgets: { requests: 2, periodSeconds: 60 },
      }),
    );
    try {
      await own.stop();
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) {
        const res = await server.chat('dave');
        statuses.push(res.status);
        await res.text();
      }
      expect(statuses).toEqual([200, 200, 429, 429]);
      expect(reported.filter((m) => m.includes('counting budgets locally'))).toHaveLength(1);
    } finally {
      await server.close();
      await test.close();
      await own.stop();
    }
  });

  async function connect0() {
    const [, connect] = CLIENTS[0]!;
    return connect(redis().url);
  }
});
