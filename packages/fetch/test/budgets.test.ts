import { afterEach, describe, expect, it } from 'vitest';
import {
  CHAT_BODY,
  CHAT_PATH,
  call,
  type Harness,
  NATIVE_BODY,
  NATIVE_PATH,
  request,
  startHarness,
} from './harness.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const inference = (harness: Harness) =>
  harness.emulator.requests.filter((r) => r.route === 'chat' || r.route === 'generation').length;

describe('fetch handler: budgets', () => {
  it('refuses the request past the requests budget in the route dialect, sending nothing upstream', async () => {
    h = await startHarness({ limits: false, budgets: { requests: 1, periodSeconds: 3600 } });
    expect((await call(h, request(CHAT_PATH, { json: CHAT_BODY }))).status).toBe(200);
    const chat = await call(h, request(CHAT_PATH, { json: CHAT_BODY }));
    expect(chat.status).toBe(429);
    expect(JSON.parse(chat.text)).toMatchObject({ error: { code: 'budget_exceeded' } });
    const retryAfter = Number(chat.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(3600);
    const native = await call(h, request(NATIVE_PATH, { json: NATIVE_BODY }));
    expect(JSON.parse(native.text)).toMatchObject({ code: 'BudgetExceeded' });
    expect(inference(h)).toBe(1);
    expect(h.handler.stats().budgets).toMatchObject({ allowed: 1, refused: { requests: 2 } });
  });

  it('refuses once the reported tokens reached the budget', async () => {
    let reported: () => void = () => {};
    const usage = new Promise<void>((resolve) => {
      reported = resolve;
    });
    h = await startHarness({
      limits: false,
      onUsage: () => reported(),
      budgets: { tokens: 1, periodSeconds: 3600 },
    });
    expect((await call(h, request(CHAT_PATH, { json: CHAT_BODY }))).status).toBe(200);
    await usage;
    const refused = await call(h, request(CHAT_PATH, { json: CHAT_BODY }));
    expect(refused.status).toBe(429);
    expect(JSON.parse(refused.text).error.message).toContain('tokens budget');
    expect(inference(h)).toBe(1);
  });
});
