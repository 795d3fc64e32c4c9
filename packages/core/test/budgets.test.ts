import { describe, expect, it } from 'vitest';
import {
  type BudgetCounter,
  type BudgetStore,
  Budgets,
  type BudgetsOptions,
  budgetWindow,
  type DashScopeError,
  type ErrorAnswer,
  MemoryBudgetCounter,
  Metering,
  type UsageEvent,
} from '../src/index.js';

const HOUR = 3_600_000;
/** 2026-12-01T10:15:00Z: 45 minutes before an hour-long period resets. */
const T0 = Date.UTC(2026, 11, 1, 10, 15);
const ADMITTED = { apiKey: 'sk-unused', identity: undefined };
const CLIENT = { address: '203.0.113.7', headers: {} };

interface Ctx {
  user?: string;
}

function setup(
  options: BudgetsOptions<Ctx>,
  extra: { store?: unknown; onStoreError?: (e: DashScopeError) => void } = {},
) {
  const clock = { now: T0 };
  const metering = new Metering<Ctx>({});
  const budgets = Budgets.resolve<Ctx>(
    { budgets: options, now: () => clock.now, storeTimeoutMs: 50, ...extra },
    metering,
  )!;
  const check = (ctx: Ctx = {}) =>
    budgets.check(budgets.identityOf(ctx, ADMITTED, CLIENT, undefined));
  const used = (totalTokens: number, ctx: Ctx = {}, identity = CLIENT.address) =>
    metering.report(usage(identity, totalTokens), ctx);
  return { clock, metering, budgets, check, used };
}

function usage(identity: string, totalTokens: number): UsageEvent {
  return {
    identity,
    keyHash: '0123456789abcdef',
    route: 'compatible',
    dialect: 'openai',
    path: '/compatible-mode/v1/chat/completions',
    model: 'qwen-plus',
    inputTokens: undefined,
    outputTokens: undefined,
    totalTokens,
    requestId: 'req-1',
    status: 200,
    durationMs: 10,
    complete: true,
  };
}

function refusal(answer: ErrorAnswer | undefined | Promise<unknown>): ErrorAnswer {
  expect(answer).toBeDefined();
  expect(answer).not.toBeInstanceOf(Promise);
  return answer as ErrorAnswer;
}

describe('budgets', () => {
  it('refuses the request after the requests budget with 429 BudgetExceeded until the period resets', () => {
    const { clock, check } = setup({ requests: 3, periodSeconds: 3600 });
    expect([check(), check(), check()]).toEqual([undefined, undefined, undefined]);
    const refused = refusal(check());
    expect(refused).toMatchObject({ status: 429, code: 'BudgetExceeded', retryable: false });
    // The period is aligned to the epoch: it resets at 11:00 UTC, 45 minutes on.
    expect(refused.retryAfterSeconds).toBe(45 * 60);
    expect(refused.message).toContain('resets at 2026-12-01T11:00:00.000Z');
    expect(refused.message).toContain('3 per 1 h');
    clock.now = Date.UTC(2026, 11, 1, 10, 59, 59, 500);
    expect(refusal(check()).retryAfterSeconds).toBe(1);
    clock.now = Date.UTC(2026, 11, 1, 11, 0);
    expect(check()).toBeUndefined();
  });

  it('counts each identity on its own, by budgets.key when it names one', () => {
    const { check } = setup({ requests: 1, periodSeconds: 60, key: (ctx) => ctx.user });
    expect(check({ user: 'alice' })).toBeUndefined();
    expect(check({ user: 'bob' })).toBeUndefined();
    expect(refusal(check({ user: 'alice' })).code).toBe('BudgetExceeded');
    // Without a key of its own, the request counts against the client address.
    expect(check({})).toBeUndefined();
    expect(refusal(check({})).code).toBe('BudgetExceeded');
  });

  it('refuses after the reported tokens reach the budget, letting the crossing request overshoot', () => {
    const { clock, budgets, check, used } = setup({ tokens: 100, periodSeconds: 86_400 });
    expect(check()).toBeUndefined();
    used(60);
    expect(check()).toBeUndefined();
    // This answer takes the identity to 160 of 100: it was admitted, and counted in full.
    used(100);
    const refused = refusal(check());
    expect(refused.message).toContain('tokens budget');
    expect(refused.message).toContain('resets at 2026-12-02T00:00:00.000Z');
    expect(budgets.stats()).toMatchObject({ tokens: 160, refused: { tokens: 1, requests: 0 } });
    // Another identity has its own budget.
    used(500, {}, '198.51.100.1');
    expect(check()).toBeDefined();
    clock.now = Date.UTC(2026, 11, 2, 0, 0, 1);
    expect(check()).toBeUndefined();
  });

  it('counts tokens against budgets.key of the context, like the requests', () => {
    const { check, used } = setup({ tokens: 10, periodSeconds: 60, key: (ctx) => ctx.user });
    used(10, { user: 'alice' });
    expect(refusal(check({ user: 'alice' })).code).toBe('BudgetExceeded');
    expect(check({ user: 'bob' })).toBeUndefined();
  });

  it('listens to usage only when there is a token budget', () => {
    expect(setup({ requests: 5, periodSeconds: 60 }).metering.active).toBe(false);
    expect(setup({ tokens: 5, periodSeconds: 60 }).metering.active).toBe(true);
  });

  it('refuses invalid options when the handler is created', () => {
    const metering = new Metering({});
    const invalid = [
      { periodSeconds: 60 },
      { requests: 0, periodSeconds: 60 },
      { tokens: 1.5, periodSeconds: 60 },
      { requests: 1, periodSeconds: 0 },
      { requests: 1, periodSeconds: 366 * 86_400 + 1 },
      { requests: 1 },
      { requests: 1, periodSeconds: 60, key: 'user' },
      'daily',
    ];
    for (const budgets of invalid) {
      expect(() => Budgets.resolve({ budgets: budgets as never }, metering)).toThrow(
        expect.objectContaining({ code: 'InvalidParameter' }),
      );
    }
    expect(Budgets.resolve({}, metering)).toBeUndefined();
  });

  it('puts periods at the same place on every clock: fixed windows from the epoch', () => {
    expect(budgetWindow(HOUR, T0)).toEqual({
      index: Math.floor(T0 / HOUR),
      startsAt: Date.UTC(2026, 11, 1, 10),
      endsAt: Date.UTC(2026, 11, 1, 11),
    });
    expect(budgetWindow(HOUR, Date.UTC(2026, 11, 1, 11)).startsAt).toBe(Date.UTC(2026, 11, 1, 11));
  });
});

/** A budget store of shared counters (like Redis for a fleet) that can be taken down. */
function sharedStore() {
  const counters = new Map<string, MemoryBudgetCounter>();
  const keys: string[] = [];
  const state = { down: false };
  const store: BudgetStore = {
    createBudgetCounter({ name }) {
      let counter = counters.get(name);
      if (counter === undefined) {
        counter = new MemoryBudgetCounter();
        counters.set(name, counter);
      }
      const c = counter;
      const wrapped: BudgetCounter = {
        add: async (key, n, w) => {
          keys.push(key);
          if (state.down) throw new Error('connection refused');
          return c.add(key, n, w);
        },
        get: async (key, w) => {
          if (state.down) throw new Error('connection refused');
          return c.get(key, w);
        },
      };
      return wrapped;
    },
  };
  return { store, state, keys };
}

describe('budgets in a shared store', () => {
  it('holds one budget across handlers sharing the store', async () => {
    const { store } = sharedStore();
    const a = setup({ requests: 2, tokens: 50, periodSeconds: 60 }, { store });
    const b = setup({ requests: 2, tokens: 50, periodSeconds: 60 }, { store });
    expect(await a.check()).toBeUndefined();
    expect(await b.check()).toBeUndefined();
    expect(await a.check()).toMatchObject({ code: 'BudgetExceeded' });
    expect(a.budgets.stats()).toMatchObject({ shared: true, allowed: 1 });

    const c = setup({ tokens: 50, periodSeconds: 60, key: (ctx) => ctx.user }, { store });
    const d = setup({ tokens: 50, periodSeconds: 60, key: (ctx) => ctx.user }, { store });
    c.used(50, { user: 'carol' });
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(await d.check({ user: 'carol' })).toMatchObject({ code: 'BudgetExceeded' });
  });

  it('keeps no identity in the store: keys are hashes', async () => {
    const { store, keys } = sharedStore();
    const { check } = setup({ requests: 5, periodSeconds: 60, key: (ctx) => ctx.user }, { store });
    await check({ user: 'alice@example.com' });
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatch(/^[0-9a-f]{32}$/);
  });

  it('decides by the local counts while the store is down, and reports the outage once', async () => {
    const { store, state } = sharedStore();
    const reported: DashScopeError[] = [];
    const { check, budgets } = setup(
      { requests: 2, periodSeconds: 60 },
      { store, onStoreError: (e) => reported.push(e) },
    );
    state.down = true;
    expect(await check()).toBeUndefined();
    expect(await check()).toBeUndefined();
    expect(await check()).toMatchObject({ code: 'BudgetExceeded' });
    expect(reported).toHaveLength(1);
    expect(reported[0]).toMatchObject({ code: 'StoreUnavailable' });
    expect(reported[0]!.message).toContain('counting budgets locally');
    expect(budgets.stats().storeErrors).toBeGreaterThanOrEqual(1);
  });
});

function modelUsage(
  totalTokens: number,
  requestModel: string | undefined,
  model = requestModel,
): UsageEvent {
  return {
    ...usage(CLIENT.address, totalTokens),
    model,
    ...(requestModel !== undefined && { requestModel }),
  };
}

describe('budgets per model', () => {
  const models = { 'qwen-max': { tokens: 100 }, 'qwen-plus': { requests: 2 } };

  function modelSetup(options: BudgetsOptions<Ctx>, extra: { store?: unknown } = {}) {
    const s = setup(options, extra);
    const checkModel = (model: string | undefined, ctx: Ctx = {}) =>
      s.budgets.checkModel(s.budgets.identityOf(ctx, ADMITTED, CLIENT, undefined), model);
    return { ...s, checkModel };
  }

  it('refuses the model whose tokens are spent, naming its budget, while another model passes', () => {
    const { metering, checkModel } = modelSetup({ models, periodSeconds: 3600 });
    expect(checkModel('qwen-max')).toBeUndefined();
    metering.report(modelUsage(60, 'qwen-max'), {});
    expect(checkModel('qwen-max')).toBeUndefined();
    metering.report(modelUsage(40, 'qwen-max'), {});
    const refused = refusal(checkModel('qwen-max'));
    expect(refused).toMatchObject({ status: 429, code: 'BudgetExceeded', retryable: false });
    expect(refused.message).toContain('tokens budget of this client for model "qwen-max"');
    expect(refused.message).toContain('100 per 1 h');
    expect(checkModel('qwen-plus')).toBeUndefined();
  });

  it('counts the requests naming a model against its requests budget', () => {
    const { checkModel, budgets } = modelSetup({ models, periodSeconds: 60 });
    expect([checkModel('qwen-plus'), checkModel('qwen-plus')]).toEqual([undefined, undefined]);
    expect(refusal(checkModel('qwen-plus')).message).toContain(
      'requests budget of this client for model "qwen-plus" (2 per 1 min)',
    );
    expect(checkModel('qwen-max')).toBeUndefined();
    expect(budgets.stats().refused).toEqual({ requests: 1, tokens: 0 });
  });

  it('leaves a model not listed, or no model, to the overall budget alone', () => {
    const { checkModel, check } = modelSetup({ requests: 2, models, periodSeconds: 60 });
    for (let i = 0; i < 5; i++) expect(checkModel('qwen-turbo')).toBeUndefined();
    expect(checkModel(undefined)).toBeUndefined();
    expect(checkModel('toString')).toBeUndefined();
    expect([check(), check()]).toEqual([undefined, undefined]);
    expect(refusal(check()).message).not.toContain('model');
  });

  it('counts tokens by the model the request named, not the dated variant the answer named', () => {
    const { metering, checkModel } = modelSetup({ models, periodSeconds: 60 });
    metering.report(modelUsage(100, 'qwen-max', 'qwen-max-2025-01-25'), {});
    expect(refusal(checkModel('qwen-max')).code).toBe('BudgetExceeded');
  });

  it('counts a model budget per identity, and the tokens in the overall budget too', () => {
    const { metering, checkModel, check } = modelSetup({
      tokens: 150,
      models,
      periodSeconds: 60,
      key: (ctx) => ctx.user,
    });
    metering.report(modelUsage(100, 'qwen-max'), { user: 'alice' });
    expect(refusal(checkModel('qwen-max', { user: 'alice' })).code).toBe('BudgetExceeded');
    expect(checkModel('qwen-max', { user: 'bob' })).toBeUndefined();
    expect(check({ user: 'alice' })).toBeUndefined();
    metering.report(modelUsage(50, 'qwen-turbo'), { user: 'alice' });
    expect(refusal(check({ user: 'alice' })).message).toContain(
      'tokens budget of this client (150',
    );
  });

  it('listens to usage when only a model has a token budget', () => {
    expect(
      modelSetup({ models: { 'qwen-plus': { requests: 1 } }, periodSeconds: 60 }).metering.active,
    ).toBe(false);
    expect(
      modelSetup({ models: { 'qwen-max': { tokens: 1 } }, periodSeconds: 60 }).metering.active,
    ).toBe(true);
    expect(modelSetup({ requests: 1, periodSeconds: 60 }).budgets.byModel).toBe(false);
  });

  it('refuses invalid per-model options when the handler is created', () => {
    const metering = new Metering({});
    const invalid = [
      { models: {}, periodSeconds: 60 },
      { models: { 'qwen-max': {} }, periodSeconds: 60 },
      { models: { 'qwen-max': { tokens: 0 } }, periodSeconds: 60 },
      { models: { 'qwen-max': { requests: 2.5 } }, periodSeconds: 60 },
      { models: { 'qwen-max': 100 }, periodSeconds: 60 },
      { models: ['qwen-max'], periodSeconds: 60 },
    ];
    for (const budgets of invalid) {
      expect(() => Budgets.resolve({ budgets: budgets as never }, metering)).toThrow(
        expect.objectContaining({ code: 'InvalidParameter' }),
      );
    }
  });

  it('keeps each model in its own shared counter, holding across handlers', async () => {
    const { store } = sharedStore();
    const a = modelSetup({ models, periodSeconds: 60 }, { store });
    const b = modelSetup({ models, periodSeconds: 60 }, { store });
    expect(await a.checkModel('qwen-plus')).toBeUndefined();
    expect(await b.checkModel('qwen-plus')).toBeUndefined();
    expect(await a.checkModel('qwen-plus')).toMatchObject({ code: 'BudgetExceeded' });
    a.metering.report(modelUsage(100, 'qwen-max'), {});
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(await b.checkModel('qwen-max')).toMatchObject({ code: 'BudgetExceeded' });
    expect(await b.check()).toBeUndefined();
  });
});
