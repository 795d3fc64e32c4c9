import { afterAll, afterEach, describe, expect, it } from 'vitest';
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
const calls = (harness: Harness, route: string) =>
  harness.emulator.requests.filter((r) => r.route === route).length;

/** An `onUsage` hook and a way to wait for its next call (budgets count before it runs). */
function usageSignal() {
  const totals: (number | undefined)[] = [];
  let wake: (() => void) | undefined;
  return {
    totals,
    onUsage: (event: { totalTokens: number | undefined }) => {
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

describe('budgets', () => {
  it('refuses the identity once the tokens of its answers reached the budget, in either dialect', async () => {
    const usage = usageSignal();
    h = await startHarness({
      handler: {
        limits: false,
        onUsage: usage.onUsage,
        budgets: {
          tokens: 1,
          periodSeconds: 3600,
          key: (req) => req.headers['x-user'] as string | undefined,
        },
      },
    });
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
    expect(calls(h, 'chat')).toBe(1);
    expect(calls(h, 'generation')).toBe(0);
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
    expect(calls(h, 'chat')).toBe(2);
    expect(calls(h, 'generation')).toBe(0);
    // Another identity has its own budget.
    expect((await chat('bob')).status).toBe(200);
    expect(h.handler.stats().budgets).toMatchObject({
      allowed: 3,
      refused: { requests: 2, tokens: 0 },
      shared: false,
    });
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
    expect(calls(h, 'chat')).toBe(0);
  });
});
