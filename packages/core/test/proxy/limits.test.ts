import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  type DashScopeError,
  type LimitRule,
  MemoryRateLimiter,
  type RateLimiter,
  type RateLimitStore,
  type SharedStore,
  type UsageEvent,
} from '../../src/index.js';
import { memoryStore } from '../memory-store.js';
import {
  CHAT_BODY,
  CHAT_PATH,
  type Harness,
  json,
  leakedKeys,
  NATIVE_BODY,
  NATIVE_PATH,
  send,
  startHarness,
} from './harness.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});
afterAll(() => {
  expect(leakedKeys()).toEqual([]);
});

const TOKEN = '/dashscope/token';

async function sendMany(count: number, send1: () => Promise<{ status: number }>) {
  const statuses: number[] = [];
  for (let i = 0; i < count; i++) statuses.push((await send1()).status);
  return statuses;
}

function upstreamCalls(harness: Harness, route: string): number {
  return harness.emulator.requests.filter((r) => r.route === route).length;
}

/** A store whose limits are counted by one shared set of counters, like Redis for a fleet. */
function limitStore(
  base: SharedStore = memoryStore(),
): SharedStore & RateLimitStore & { down: boolean } {
  const counters = new Map<string, MemoryRateLimiter>();
  const store = {
    ...base,
    down: false,
    createRateLimiter({ name, ...rule }: { name: string } & LimitRule): RateLimiter {
      let counter = counters.get(name);
      if (counter === undefined) {
        counter = new MemoryRateLimiter(rule);
        counters.set(name, counter);
      }
      const shared = counter;
      return {
        consume: async (key) => {
          if (store.down) throw new Error('connection refused');
          return shared.consume(key);
        },
      };
    },
  };
  return store;
}

describe('per-client limits', () => {
  it('answers the token route 429 with Retry-After over its budget, without minting', async () => {
    h = await startHarness({
      handler: { limits: { tokenRoute: { points: 3, durationSeconds: 60 } } },
    });
    const statuses = await sendMany(5, () => send(h!.url, 'POST', TOKEN));
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    const refused = await send(h.url, 'POST', TOKEN);
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    const body = JSON.parse(refused.text);
    expect(body).toMatchObject({ code: 'Throttling.ClientLimit' });
    expect(typeof body.request_id).toBe('string');
    expect(upstreamCalls(h, 'tokens')).toBe(1);
    expect(h.handler.stats().limits).toMatchObject({
      allowed: { tokenRoute: 3, proxy: 0, websocket: 0 },
      limited: { tokenRoute: 3, proxy: 0, websocket: 0 },
      shared: false,
    });
  });

  it('answers the compatible-mode proxy 429 in OpenAI shape, and sends nothing upstream', async () => {
    h = await startHarness({ handler: { limits: { proxy: { points: 2, durationSeconds: 60 } } } });
    const statuses = await sendMany(3, () => send(h!.url, 'POST', CHAT_PATH, json(CHAT_BODY)));
    expect(statuses).toEqual([200, 200, 429]);
    const refused = await send(h.url, 'POST', CHAT_PATH, json(CHAT_BODY));
    expect(refused.headers['retry-after']).toMatch(/^\d+$/);
    expect(JSON.parse(refused.text)).toMatchObject({
      error: { type: 'rate_limit_error', code: 'throttling_client_limit' },
    });
    expect(upstreamCalls(h, 'chat')).toBe(2);
    expect(h.handler.stats().limits?.limited.proxy).toBe(2);
  });

  it('keeps separate budgets for the token route and the proxy', async () => {
    h = await startHarness({
      handler: {
        limits: {
          tokenRoute: { points: 1, durationSeconds: 60 },
          proxy: { points: 1, durationSeconds: 60 },
        },
      },
    });
    expect((await send(h.url, 'POST', TOKEN)).status).toBe(200);
    expect((await send(h.url, 'POST', TOKEN)).status).toBe(429);
    expect((await send(h.url, 'POST', NATIVE_PATH, json(NATIVE_BODY))).status).toBe(200);
    expect((await send(h.url, 'POST', NATIVE_PATH, json(NATIVE_BODY))).status).toBe(429);
  });

  it('counts each identity authorize returns on its own, even from one address', async () => {
    h = await startHarness({
      handler: {
        authorize: (req) => ({ id: String(req.headers['x-user']) }),
        limits: { tokenRoute: { points: 2, durationSeconds: 60 } },
      },
    });
    const as = (user: string) => () => send(h!.url, 'POST', TOKEN, { headers: { 'x-user': user } });
    expect(await sendMany(3, as('alice'))).toEqual([200, 200, 429]);
    expect(await sendMany(3, as('bob'))).toEqual([200, 200, 429]);
  });

  it('counts by limits.key when given', async () => {
    h = await startHarness({
      handler: {
        limits: {
          tokenRoute: { points: 1, durationSeconds: 60 },
          key: (req) => req.headers['x-tenant'] as string | undefined,
        },
      },
    });
    const as = (tenant: string) => send(h!.url, 'POST', TOKEN, { headers: { 'x-tenant': tenant } });
    expect((await as('a')).status).toBe(200);
    expect((await as('b')).status).toBe(200);
    expect((await as('a')).status).toBe(429);
  });

  it('asks limits.key once per proxied request, and the rate, the cap, budgets and usage all count that client', async () => {
    const usage = usageSignal();
    const asked: string[] = [];
    h = await startHarness({
      handler: {
        limits: {
          proxy: { points: 2, durationSeconds: 60 },
          key: (req) => {
            const tenant = req.headers['x-tenant'] as string;
            asked.push(tenant);
            return tenant;
          },
        },
        budgets: { requests: 10, periodSeconds: 3600 },
        onUsage: usage.onUsage,
      },
    });
    const chat = (tenant: string) =>
      send(h!.url, 'POST', CHAT_PATH, json(CHAT_BODY, { 'x-tenant': tenant }));
    expect((await chat('a')).status).toBe(200);
    await usage.next(1);
    expect(asked).toEqual(['a']);
    expect(usage.events[0]!.identity).toBe('a');
    expect((await chat('a')).status).toBe(200);
    expect((await chat('a')).status).toBe(429);
    expect((await chat('b')).status).toBe(200);
    expect(asked).toEqual(['a', 'a', 'a', 'b']);
  });

  it('is on by default: the 61st token request of a client within a minute is refused', async () => {
    h = await startHarness();
    const statuses = await sendMany(61, () => send(h!.url, 'POST', TOKEN));
    expect(statuses.filter((s) => s === 200)).toHaveLength(60);
    expect(statuses[60]).toBe(429);
  });

  it('limits: false turns every limit off', async () => {
    h = await startHarness({ handler: { limits: false } });
    const statuses = await sendMany(70, () => send(h!.url, 'POST', TOKEN));
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(h.handler.stats().limits).toBeUndefined();
  });

  it('refuses an invalid budget at creation with InvalidParameter', async () => {
    await expect(
      startHarness({ handler: { limits: { proxy: { points: 0, durationSeconds: 60 } } } }),
    ).rejects.toMatchObject({ code: 'InvalidParameter' });
  });

  it('shares one budget between two handlers on a store that keeps limits', async () => {
    const store = limitStore();
    const limits = { tokenRoute: { points: 3, durationSeconds: 60 } };
    h = await startHarness({ handler: { store, limits } });
    const other = await startHarness({ handler: { store, limits } });
    try {
      const statuses = [
        ...(await sendMany(2, () => send(h!.url, 'POST', TOKEN))),
        ...(await sendMany(2, () => send(other.url, 'POST', TOKEN))),
      ];
      expect(statuses).toEqual([200, 200, 200, 429]);
      expect(h.handler.stats().limits?.shared).toBe(true);
    } finally {
      await other.close();
    }
  });

  it('counts locally when the store that keeps limits fails: no request fails, reported once', async () => {
    const store = limitStore();
    store.down = true;
    const storeErrors: DashScopeError[] = [];
    const warnings: string[] = [];
    h = await startHarness({
      handler: {
        store,
        onStoreError: (error) => storeErrors.push(error),
        logger: { warn: (message) => warnings.push(message) },
        limits: { proxy: { points: 3, durationSeconds: 60 } },
      },
    });
    const statuses = await sendMany(4, () => send(h!.url, 'POST', NATIVE_PATH, json(NATIVE_BODY)));
    expect(statuses).toEqual([200, 200, 200, 429]);
    const stats = h.handler.stats().limits!;
    expect(stats.storeErrors).toBeGreaterThanOrEqual(1);
    expect(stats.allowed.proxy).toBe(3);
    const limitErrors = storeErrors.filter((e) => e.message.includes('counting limits locally'));
    expect(limitErrors).toHaveLength(1);
    expect(limitErrors[0]?.code).toBe('StoreUnavailable');
    expect(warnings.filter((w) => w.includes('counting limits locally'))).toHaveLength(1);
  });

  it('the proxy and token-route providers use the store tier', async () => {
    const store = memoryStore();
    h = await startHarness({ handler: { store } });
    expect((await send(h.url, 'POST', TOKEN)).status).toBe(200);
    expect((await send(h.url, 'POST', NATIVE_PATH, json(NATIVE_BODY))).status).toBe(200);
    const stats = h.handler.stats();
    expect(stats.proxyTokens.store).toBeDefined();
    expect(stats.routeTokens?.store).toBeDefined();
    // One sealed token per provider (their TTLs differ), written by the providers' mints.
    expect([...store.data.keys()].filter((k) => k.startsWith('token:'))).toHaveLength(2);
  });
});

describe('MemoryRateLimiter', () => {
  it('admits `points` per window and starts a new window once the last one ended', () => {
    let now = 1_000_000;
    const limiter = new MemoryRateLimiter({ points: 2, durationSeconds: 10 }, () => now);
    expect(limiter.consume('a').allowed).toBe(true);
    now += 4_000;
    expect(limiter.consume('a')).toEqual({ allowed: true, msBeforeNext: 6_000 });
    expect(limiter.consume('a')).toEqual({ allowed: false, msBeforeNext: 6_000 });
    expect(limiter.consume('b').allowed).toBe(true);
    now += 6_000;
    expect(limiter.consume('a')).toEqual({ allowed: true, msBeforeNext: 10_000 });
  });
});

/** An `onUsage` hook and a way to wait for its next call (budgets count before it runs). */
function usageSignal() {
  const totals: (number | undefined)[] = [];
  const events: UsageEvent[] = [];
  let wake: (() => void) | undefined;
  return {
    totals,
    events,
    onUsage: (event: UsageEvent) => {
      events.push(event);
      totals.push(event.totalTokens);
      wake?.();
    },
    next: (count: number) =>
      new Promise<void>((resolve) => {
        if (totals.length >= count) return resolve();
        wake = () => {
          if (totals.length >= count) resolve();
        };
      }),
  };
}

/** A harness with `budgets` per `x-user` header (no limits), and the usage it reports. */
async function budgeted(budgets: { tokens?: number; models?: Record<string, object> }) {
  const usage = usageSignal();
  h = await startHarness({
    handler: {
      limits: false,
      onUsage: usage.onUsage,
      budgets: {
        ...budgets,
        periodSeconds: 3600,
        key: (req) => req.headers['x-user'] as string | undefined,
      },
    },
  });
  return { h, usage };
}

describe('budgets', () => {
  it('refuses the identity once the tokens of its answers reached the budget, in either dialect', async () => {
    const { h, usage } = await budgeted({ tokens: 1 });
    // The first answer is admitted (nothing spent yet) and overshoots the budget by its size.
    const first = await send(h.url, 'POST', CHAT_PATH, json(CHAT_BODY, { 'x-user': 'alice' }));
    expect(first.status).toBe(200);
    await usage.next(1);
    expect(usage.totals[0]).toBeGreaterThan(1);
    const chat = await send(h.url, 'POST', CHAT_PATH, json(CHAT_BODY, { 'x-user': 'alice' }));
    expect(chat.status).toBe(429);
    expect(JSON.parse(chat.text).error).toMatchObject({ code: 'budget_exceeded' });
    expect(JSON.parse(chat.text).error.message).toContain('tokens budget');
    const native = await send(h.url, 'POST', NATIVE_PATH, json(NATIVE_BODY, { 'x-user': 'alice' }));
    expect(JSON.parse(native.text)).toMatchObject({ code: 'BudgetExceeded' });
    expect(upstreamCalls(h, 'chat')).toBe(1);
    expect(upstreamCalls(h, 'generation')).toBe(0);
    expect(h.handler.stats().budgets).toMatchObject({
      tokens: usage.totals[0],
      refused: { tokens: 2, requests: 0 },
    });
    expect(
      (await send(h.url, 'POST', NATIVE_PATH, json(NATIVE_BODY, { 'x-user': 'bob' }))).status,
    ).toBe(200);
  });

  it('refuses the proxied request past the budget in either dialect, sending nothing upstream', async () => {
    h = await startHarness({
      handler: {
        limits: false,
        budgets: {
          requests: 2,
          periodSeconds: 60,
          key: (req) => req.headers['x-user'] as string | undefined,
        },
      },
    });
    const chat = (user: string) =>
      send(h!.url, 'POST', CHAT_PATH, json(CHAT_BODY, { 'x-user': user }));
    expect((await chat('alice')).status).toBe(200);
    expect((await chat('alice')).status).toBe(200);
    const openai = await chat('alice');
    expect(openai.status).toBe(429);
    expect(JSON.parse(openai.text)).toMatchObject({
      error: { type: 'rate_limit_error', code: 'budget_exceeded' },
    });
    const retryAfter = Number(openai.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(openai.headers['x-should-retry']).toBe('false');
    // The same identity is over budget on the native API too (one budget over every route).
    const native = await send(h.url, 'POST', NATIVE_PATH, json(NATIVE_BODY, { 'x-user': 'alice' }));
    expect(native.status).toBe(429);
    expect(JSON.parse(native.text)).toMatchObject({ code: 'BudgetExceeded' });
    expect(native.headers['retry-after']).toMatch(/^\d+$/);
    expect(upstreamCalls(h, 'chat')).toBe(2);
    expect(upstreamCalls(h, 'generation')).toBe(0);
    // Another identity has its own budget.
    expect((await chat('bob')).status).toBe(200);
    expect(h.handler.stats().budgets).toMatchObject({
      allowed: 3,
      refused: { requests: 2, tokens: 0 },
      shared: false,
    });
  });

  it('refuses the next qwen-max request of an identity once its qwen-max tokens are spent, while qwen-plus passes', async () => {
    const { h, usage } = await budgeted({
      models: { 'qwen-max': { tokens: 1 }, 'qwen-turbo': { requests: 1 } },
    });
    const chat = (user: string, model: string) =>
      send(h.url, 'POST', CHAT_PATH, json({ ...CHAT_BODY, model }, { 'x-user': user }));
    expect((await chat('alice', 'qwen-max')).status).toBe(200);
    await usage.next(1);
    expect(usage.events[0]).toMatchObject({ requestModel: 'qwen-max' });
    const refused = await chat('alice', 'qwen-max');
    expect(refused.status).toBe(429);
    expect(JSON.parse(refused.text).error).toMatchObject({ code: 'budget_exceeded' });
    expect(JSON.parse(refused.text).error.message).toContain('for model "qwen-max"');
    expect(upstreamCalls(h, 'chat')).toBe(1);
    expect((await chat('alice', 'qwen-plus')).status).toBe(200);
    expect((await chat('bob', 'qwen-max')).status).toBe(200);
    // A requests budget per model: the second qwen-turbo request is refused, nothing upstream.
    expect((await chat('alice', 'qwen-turbo')).status).toBe(200);
    const turbo = await chat('alice', 'qwen-turbo');
    expect(turbo.status).toBe(429);
    expect(JSON.parse(turbo.text).error.message).toContain(
      'requests budget of this client for model "qwen-turbo"',
    );
    expect(upstreamCalls(h, 'chat')).toBe(4);
    // Six requests: four within their budgets, two refused by their model's.
    expect(h.handler.stats().budgets).toMatchObject({
      allowed: 4,
      refused: { tokens: 1, requests: 1 },
    });
    // Naming the model twice cannot slip past its budget (upstream might read the other one).
    const twice = await send(h.url, 'POST', CHAT_PATH, {
      headers: { 'content-type': 'application/json', 'x-user': 'alice' },
      body: '{"model":"qwen-plus","model":"qwen-max","messages":[{"role":"user","content":"Hi"}]}',
    });
    expect(twice.status).toBe(400);
    expect(upstreamCalls(h, 'chat')).toBe(4);
  });

  it('leaves the token route out of the budgets', async () => {
    h = await startHarness({
      handler: { limits: false, budgets: { requests: 1, periodSeconds: 60 } },
    });
    for (let i = 0; i < 3; i++) expect((await send(h.url, 'POST', TOKEN)).status).toBe(200);
    expect((await send(h.url, 'POST', CHAT_PATH, json(CHAT_BODY))).status).toBe(200);
    expect((await send(h.url, 'POST', CHAT_PATH, json(CHAT_BODY))).status).toBe(429);
  });

  it('counts after the per-client limits: a request the limits refused spends no budget', async () => {
    h = await startHarness({
      handler: {
        limits: { proxy: { points: 1, durationSeconds: 60 } },
        budgets: { requests: 5, periodSeconds: 60 },
      },
    });
    expect((await send(h.url, 'POST', CHAT_PATH, json(CHAT_BODY))).status).toBe(200);
    const limited = await send(h.url, 'POST', CHAT_PATH, json(CHAT_BODY));
    expect(JSON.parse(limited.text)).toMatchObject({ error: { code: 'throttling_client_limit' } });
    expect(h.handler.stats().budgets).toMatchObject({ allowed: 1, refused: { requests: 0 } });
  });

  it('answers 500 without the thrown message when budgets.key throws', async () => {
    h = await startHarness({
      handler: {
        limits: false,
        budgets: {
          requests: 5,
          periodSeconds: 60,
          key: () => {
            throw new Error('secret detail');
          },
        },
      },
    });
    const res = await send(h.url, 'POST', CHAT_PATH, json(CHAT_BODY));
    expect(res.status).toBe(500);
    expect(res.text).not.toContain('secret detail');
    expect(upstreamCalls(h, 'chat')).toBe(0);
  });
});
