import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { useEmulator } from '../emulator-fixture.js';
import {
  leaks,
  open,
  PERMANENT_KEY,
  REALTIME,
  type RunningProxy,
  refusal,
  startProxy,
} from './harness.js';

const emulator = useEmulator({ apiKeys: [PERMANENT_KEY] });
let proxy: RunningProxy | undefined;

afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
});

afterAll(() => {
  expect(leaks()).toEqual([]);
});

describe('WebSocket proxy: per-client limits', () => {
  it('refuses session starts over the websocket budget with 429 and Retry-After, before any handshake upstream', async () => {
    proxy = await startProxy({
      baseUrl: emulator().url,
      limits: { websocket: { points: 2, durationSeconds: 60 } },
    });
    for (let i = 0; i < 2; i++) {
      const conn = await open(`${proxy.wsBase}${REALTIME}`);
      expect(((await conn.next()).json as { type: string }).type).toBe('session.created');
      conn.ws.close();
    }
    const before = emulator().requests.length;
    const refused = await refusal(`${proxy.wsBase}${REALTIME}`);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(refused.json).toMatchObject({ code: 'Throttling.ClientLimit' });
    expect(emulator().requests.length).toBe(before);
    expect(proxy.handler.stats().limits?.limited.websocket).toBe(1);
  });
});

describe('WebSocket proxy: budgets', () => {
  it('refuses a session start past the requests budget with 429 BudgetExceeded, before any handshake upstream', async () => {
    proxy = await startProxy({
      baseUrl: emulator().url,
      limits: false,
      budgets: { requests: 1, periodSeconds: 86_400 },
    });
    const conn = await open(`${proxy.wsBase}${REALTIME}`);
    expect(((await conn.next()).json as { type: string }).type).toBe('session.created');
    conn.ws.close();
    const before = emulator().requests.length;
    const refused = await refusal(`${proxy.wsBase}${REALTIME}`);
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(86_400);
    expect(refused.json).toMatchObject({ code: 'BudgetExceeded' });
    expect((refused.json as { message: string }).message).toMatch(
      /resets at \d{4}-\d\d-\d\dT00:00:00\.000Z/,
    );
    expect(emulator().requests.length).toBe(before);
    expect(proxy.handler.stats().budgets).toMatchObject({ allowed: 1, refused: { requests: 1 } });
  });

  it("counts a realtime session start against the budget of the URL's model", async () => {
    proxy = await startProxy({
      baseUrl: emulator().url,
      limits: false,
      budgets: { models: { 'qwen-omni-turbo-realtime': { requests: 1 } }, periodSeconds: 60 },
    });
    const path = (model: string) => `${proxy!.wsBase}/dashscope/api-ws/v1/realtime?model=${model}`;
    const conn = await open(path('qwen-omni-turbo-realtime'));
    expect(((await conn.next()).json as { type: string }).type).toBe('session.created');
    conn.ws.close();
    const before = emulator().requests.length;
    const refused = await refusal(path('qwen-omni-turbo-realtime'));
    expect(refused.status).toBe(429);
    expect((refused.json as { message: string }).message).toContain(
      'requests budget of this client for model "qwen-omni-turbo-realtime"',
    );
    expect(emulator().requests.length).toBe(before);
    const other = await open(path('qwen3-omni-flash-realtime'));
    expect(((await other.next()).json as { type: string }).type).toBe('session.created');
    other.ws.close();
  });
});
