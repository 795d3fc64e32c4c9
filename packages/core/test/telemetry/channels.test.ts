/**
 * The diagnostics channels, as a subscriber (an APM agent, the OpenTelemetry binding) sees
 * them: what each carries through a real handler in front of the emulator, and that none of
 * it is a secret.
 */
import diagnostics from 'node:diagnostics_channel';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  CHANNELS,
  createTokenProvider,
  type HttpTransport,
  type MintMessage,
  type RequestEndMessage,
  type RequestStartMessage,
  type UsageEvent,
} from '../../src/index.js';
import { nodeTelemetry } from '../../src/node/telemetry.js';
import { resolveHandlerConfig } from '../../src/policy/config.js';
import {
  CHAT_BODY,
  CHAT_PATH,
  type Harness,
  json,
  leakedKeys,
  PERMANENT_KEY,
  send,
  startHarness,
} from '../proxy/harness.js';
import { USAGE_EVENT } from './usage-event.js';

let h: Harness | undefined;
const unsubscribe: (() => void)[] = [];
afterEach(async () => {
  for (const off of unsubscribe.splice(0)) off();
  await h?.close();
  h = undefined;
});
afterAll(() => {
  expect(leakedKeys()).toEqual([]);
});

/** Collects what is published on `name` until the test ends. */
function record<T>(name: string): T[] {
  const seen: T[] = [];
  const listener = (message: unknown) => seen.push(message as T);
  diagnostics.subscribe(name, listener);
  unsubscribe.push(() => diagnostics.unsubscribe(name, listener));
  return seen;
}

/** Every string inside `value` (so a secret anywhere in a message is found). */
function texts(value: unknown): string {
  return JSON.stringify(value);
}

function expectNoSecret(messages: unknown[], token?: string): void {
  const all = texts(messages);
  expect(all).not.toContain(PERMANENT_KEY);
  expect(all).not.toContain(PERMANENT_KEY.slice(3, 15));
  if (token !== undefined) expect(all).not.toContain(token);
  expect(all).not.toContain('authorization');
}

describe('request channels', () => {
  it('a proxied chat publishes one start and one end for the same request, with its status and request id', async () => {
    const starts = record<RequestStartMessage>(CHANNELS.requestStart);
    const ends = record<RequestEndMessage>(CHANNELS.requestEnd);
    h = await startHarness();
    const answer = await send(h.url, 'POST', `${CHAT_PATH}?secret=hidden`, json(CHAT_BODY));
    expect(answer.status).toBe(200);
    expect(starts).toHaveLength(1);
    expect(ends).toHaveLength(1);
    const { request } = starts[0]!;
    expect(request).toMatchObject({
      method: 'POST',
      route: 'compatible',
      path: CHAT_PATH,
    });
    expect(ends[0]!.request).toBe(request);
    expect(ends[0]).toMatchObject({
      status: 200,
      requestId: answer.headers['x-request-id'],
      clientGone: false,
    });
    expect(ends[0]!.durationMs).toBeGreaterThanOrEqual(0);
    expect(texts([starts, ends])).not.toContain('hidden');
    expectNoSecret([starts, ends]);
  });

  it('a streamed answer ends on the channel only once the stream is over', async () => {
    const ends = record<RequestEndMessage>(CHANNELS.requestEnd);
    h = await startHarness();
    let endedBeforeBody = false;
    const answer = await send(h.url, 'POST', CHAT_PATH, json({ ...CHAT_BODY, stream: true }));
    endedBeforeBody = ends.length === 0;
    expect(endedBeforeBody).toBe(false);
    expect(answer.text).toContain('data: [DONE]');
    expect(ends).toHaveLength(1);
    expect(ends[0]).toMatchObject({ status: 200, clientGone: false });
  });

  it('the token route is a "token" request; answers the handler gives itself (preflight) are not requests', async () => {
    const starts = record<RequestStartMessage>(CHANNELS.requestStart);
    const ends = record<RequestEndMessage>(CHANNELS.requestEnd);
    h = await startHarness();
    const answer = await send(h.url, 'POST', '/dashscope/token');
    expect(answer.status).toBe(200);
    const token = JSON.parse(answer.text).token as string;
    await send(h.url, 'GET', '/dashscope/unknown-route');
    expect(starts.map((s) => s.request.route)).toEqual(['token']);
    expect(ends.map((e) => e.status)).toEqual([200]);
    expectNoSecret([starts, ends], token);
  });

  it('nothing is published, and no message is built, while nobody subscribes', async () => {
    h = await startHarness();
    expect(diagnostics.channel(CHANNELS.requestStart).hasSubscribers).toBe(false);
    // startRequest answers undefined at once: the executors then do no per-request work.
    expect(nodeTelemetry.startRequest('POST', 'compatible', CHAT_PATH, {})).toBeUndefined();
    const answer = await send(h.url, 'POST', CHAT_PATH, json(CHAT_BODY));
    expect(answer.status).toBe(200);
  });
});

describe('token channels', () => {
  it('a mint publishes the key hash, TTL and outcome; a cache hit publishes nothing', async () => {
    const mints = record<MintMessage>(CHANNELS.mint);
    h = await startHarness();
    const first = await send(h.url, 'POST', '/dashscope/token');
    await send(h.url, 'POST', '/dashscope/token');
    expect(mints).toHaveLength(1);
    expect(mints[0]).toMatchObject({
      expireInSeconds: 60,
      outcome: 'minted',
      code: undefined,
      background: false,
    });
    expect(mints[0]!.keyHash).toMatch(/^[0-9a-f]{16}$/);
    expect(mints[0]!.durationMs).toBeGreaterThanOrEqual(0);
    expectNoSecret(mints, JSON.parse(first.text).token);
  });

  it('a refused mint publishes its code', async () => {
    const mints = record<MintMessage>(CHANNELS.mint);
    h = await startHarness({ handler: { apiKey: 'sk-not-a-key-the-emulator-knows' } });
    const answer = await send(h.url, 'POST', '/dashscope/token');
    expect(answer.status).toBeGreaterThanOrEqual(400);
    expect(mints).toHaveLength(1);
    expect(mints[0]).toMatchObject({ outcome: 'failed', code: 'InvalidApiKey' });
    expect(texts(mints)).not.toContain('sk-not-a-key');
  });

  it('a standalone provider publishes too, and a failed refresh served stale is a refresh error', async () => {
    const refreshErrors = record<{ code: string; retryable: boolean; keyHash: string }>(
      CHANNELS.refreshError,
    );
    const mints = record<MintMessage>(CHANNELS.mint);
    let calls = 0;
    const transport: HttpTransport = {
      async request() {
        calls++;
        if (calls > 1)
          throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
        const body = JSON.stringify({
          token: 'st-standalone-token',
          expires_at: Math.floor(Date.now() / 1000) + 600,
        });
        return { status: 200, header: () => undefined, text: async () => body };
      },
    };
    const provider = createTokenProvider({
      apiKey: PERMANENT_KEY,
      transport,
      retry: false,
      expireInSeconds: 600,
    });
    try {
      await provider.getToken();
      const stale = await provider.getToken({ forceRefresh: true });
      expect(stale.token).toBe('st-standalone-token');
    } finally {
      await provider.close();
    }
    expect(mints.map((m) => m.outcome)).toEqual(['minted', 'failed']);
    expect(refreshErrors).toHaveLength(1);
    expect(refreshErrors[0]!.keyHash).toBe(mints[0]!.keyHash);
    expect(typeof refreshErrors[0]!.retryable).toBe('boolean');
    expectNoSecret([mints, refreshErrors], 'st-standalone-token');
  });
});

describe('limit channel', () => {
  it('a request over a per-client limit publishes which limit and the code the client got', async () => {
    const hits = record<{ limit: string; code: string }>(CHANNELS.limitHit);
    h = await startHarness({
      handler: { limits: { tokenRoute: { points: 1, durationSeconds: 60 } } },
    });
    expect((await send(h.url, 'POST', '/dashscope/token')).status).toBe(200);
    expect((await send(h.url, 'POST', '/dashscope/token')).status).toBe(429);
    expect(hits).toEqual([{ limit: 'tokenRoute', code: 'Throttling.ClientLimit' }]);
  });
  it('a proxied request over its budget publishes a budget hit', async () => {
    const hits = record<{ limit: string; code: string }>(CHANNELS.limitHit);
    h = await startHarness({ handler: { budgets: { requests: 1, periodSeconds: 60 } } });
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      statuses.push((await send(h.url, 'POST', CHAT_PATH, json(CHAT_BODY))).status);
    }
    expect(statuses[0]).toBe(200);
    expect(statuses).toContain(429);
    expect(hits).toEqual(
      statuses.filter((s) => s === 429).map(() => ({ limit: 'budget', code: 'BudgetExceeded' })),
    );
  });
});

describe('usage channel', () => {
  const event = USAGE_EVENT;

  it('telemetry alone does not make the handler meter answers until the usage channel has a subscriber', () => {
    const config = resolveHandlerConfig({ apiKey: PERMANENT_KEY }, false, nodeTelemetry);
    expect(config.metering.active).toBe(false);
    const usage = record<{ usage: UsageEvent; request: unknown }>(CHANNELS.usage);
    expect(config.metering.active).toBe(true);
    config.metering.report(event, {});
    expect(usage).toEqual([{ usage: event, request: undefined }]);
    for (const off of unsubscribe.splice(0)) off();
    expect(config.metering.active).toBe(false);
  });

  it('a usage event reported while its request is in flight names that request', () => {
    const config = resolveHandlerConfig({ apiKey: PERMANENT_KEY }, false, nodeTelemetry);
    const usage = record<{ usage: UsageEvent; request: unknown }>(CHANNELS.usage);
    const ctx = {};
    const request = nodeTelemetry.startRequest('POST', 'compatible', `${CHAT_PATH}?a=b`, ctx);
    config.metering.report(event, ctx);
    nodeTelemetry.endRequest(request, ctx, { status: 200 });
    config.metering.report(event, ctx);
    expect(usage.map((u) => u.request)).toEqual([request, undefined]);
  });

  it('the app’s onUsage still gets every event when the channel has a subscriber', () => {
    const seen: UsageEvent[] = [];
    const config = resolveHandlerConfig(
      { apiKey: PERMANENT_KEY, onUsage: (e) => void seen.push(e) },
      false,
      nodeTelemetry,
    );
    record(CHANNELS.usage);
    config.metering.report(event, {});
    expect(seen).toEqual([event]);
  });
});
