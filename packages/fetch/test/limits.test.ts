import { afterEach, describe, expect, it } from 'vitest';
import {
  CHAT_BODY,
  CHAT_PATH,
  call,
  type Harness,
  NATIVE_BODY,
  NATIVE_PATH,
  read,
  request,
  startHarness,
} from './harness.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

function inference(harness: Harness) {
  return harness.emulator.requests.filter((r) => r.route === 'chat' || r.route === 'generation');
}

const token = () => request('/dashscope/token', { method: 'POST' });

describe('fetch handler: per-client limits', () => {
  it('refuses the token route over its budget with 429 and Retry-After, per clientAddress', async () => {
    h = await startHarness({ limits: { tokenRoute: { points: 2, durationSeconds: 60 } } });
    const from = async (clientAddress: string) =>
      (await read((await h!.handler.handle(token(), undefined, { clientAddress }))!)).status;
    expect([await from('10.0.0.1'), await from('10.0.0.1'), await from('10.0.0.1')]).toEqual([
      200, 200, 429,
    ]);
    expect(await from('10.0.0.2')).toBe(200);
    const refused = await read(
      (await h.handler.handle(token(), undefined, { clientAddress: '10.0.0.1' }))!,
    );
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(refused.text)).toMatchObject({ code: 'Throttling.ClientLimit' });
    expect(h.handler.stats().limits?.limited.tokenRoute).toBe(2);
  });

  it('answers the proxy 429 in the route dialect and sends nothing upstream', async () => {
    h = await startHarness({ limits: { proxy: { points: 1, durationSeconds: 60 } } });
    expect((await call(h, request(CHAT_PATH, { json: CHAT_BODY }))).status).toBe(200);
    const chat = await call(h, request(CHAT_PATH, { json: CHAT_BODY }));
    expect(chat.status).toBe(429);
    expect(JSON.parse(chat.text)).toMatchObject({ error: { type: 'rate_limit_error' } });
    const native = await call(h, request(NATIVE_PATH, { json: NATIVE_BODY }));
    expect(native.status).toBe(429);
    expect(JSON.parse(native.text)).toMatchObject({ code: 'Throttling.ClientLimit' });
    expect(inference(h)).toHaveLength(1);
  });

  it("takes the client address from Deno's and Bun's second fetch argument", async () => {
    h = await startHarness({ limits: { tokenRoute: { points: 1, durationSeconds: 60 } } });
    const deno = (hostname: string) => ({ remoteAddr: { hostname, port: 1, transport: 'tcp' } });
    const bun = (address: string) => ({ requestIP: () => ({ address, port: 1, family: 'IPv4' }) });
    expect((await h.handler.fetch(token(), deno('10.0.0.1'))).status).toBe(200);
    expect((await h.handler.fetch(token(), deno('10.0.0.1'))).status).toBe(429);
    expect((await h.handler.fetch(token(), bun('10.0.0.2'))).status).toBe(200);
    expect((await h.handler.fetch(token(), bun('10.0.0.2'))).status).toBe(429);
  });

  it('reads the client address from clientAddressHeader only when it is configured', async () => {
    const viaProxy = (ip: string) =>
      request('/dashscope/token', {
        method: 'POST',
        headers: { 'x-forwarded-for': `1.2.3.4, ${ip}` },
      });
    h = await startHarness({
      limits: {
        tokenRoute: { points: 1, durationSeconds: 60 },
        clientAddressHeader: 'X-Forwarded-For',
      },
    });
    expect((await h.handler.fetch(viaProxy('10.0.0.1'))).status).toBe(200);
    expect((await h.handler.fetch(viaProxy('10.0.0.2'))).status).toBe(200);
    expect((await h.handler.fetch(viaProxy('10.0.0.1'))).status).toBe(429);
  });
});

/** Starts `h` with hour-long `budgets` (no limits), and the promise of its first usage. */
async function budgeted(budgets: { tokens?: number; models?: Record<string, object> }) {
  let reported: () => void = () => {};
  const usage = new Promise<void>((resolve) => {
    reported = resolve;
  });
  h = await startHarness({
    limits: false,
    onUsage: () => reported(),
    budgets: { ...budgets, periodSeconds: 3600 },
  });
  return { h, usage };
}

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
    expect(inference(h)).toHaveLength(1);
    expect(h.handler.stats().budgets).toMatchObject({ allowed: 1, refused: { requests: 2 } });
  });

  it('refuses once the reported tokens reached the budget', async () => {
    const { h, usage } = await budgeted({ tokens: 1 });
    expect((await call(h, request(CHAT_PATH, { json: CHAT_BODY }))).status).toBe(200);
    await usage;
    const refused = await call(h, request(CHAT_PATH, { json: CHAT_BODY }));
    expect(refused.status).toBe(429);
    expect(JSON.parse(refused.text).error.message).toContain('tokens budget');
    expect(inference(h)).toHaveLength(1);
  });
});

describe('fetch handler: budgets per model', () => {
  it('refuses the next qwen-max request once its tokens are spent while qwen-plus passes, and a model past its requests budget', async () => {
    const { h, usage } = await budgeted({
      models: { 'qwen-max': { tokens: 1 }, 'qwen-turbo': { requests: 1 } },
    });
    const chat = (model: string) => call(h, request(CHAT_PATH, { json: { ...CHAT_BODY, model } }));
    expect((await chat('qwen-max')).status).toBe(200);
    await usage;
    const refused = await chat('qwen-max');
    expect(refused.status).toBe(429);
    expect(JSON.parse(refused.text).error).toMatchObject({ code: 'budget_exceeded' });
    expect(JSON.parse(refused.text).error.message).toContain(
      'tokens budget of this client for model "qwen-max"',
    );
    expect(inference(h)).toHaveLength(1);
    expect((await chat('qwen-plus')).status).toBe(200);
    expect((await chat('qwen-turbo')).status).toBe(200);
    const turbo = await call(
      h,
      request(NATIVE_PATH, { json: { ...NATIVE_BODY, model: 'qwen-turbo' } }),
    );
    expect(turbo.status).toBe(429);
    expect(JSON.parse(turbo.text)).toMatchObject({ code: 'BudgetExceeded' });
    expect(JSON.parse(turbo.text).message).toContain(
      'requests budget of this client for model "qwen-turbo"',
    );
    expect(inference(h)).toHaveLength(3);
  });
});
