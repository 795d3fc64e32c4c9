/**
 * The Fetch handler on Node publishes on the same diagnostics channels as the node:http one
 * (found through `process.getBuiltinModule`): a request ends on the channel only once its
 * relayed body ended, and limit hits and mints are published too.
 */
import diagnostics from 'node:diagnostics_channel';
import { CHANNELS } from '@dashscope-token/core/neutral';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CHAT_BODY,
  CHAT_PATH,
  call,
  type Harness,
  PERMANENT_KEY,
  request,
  startHarness,
} from './harness.js';

let h: Harness | undefined;
const offs: (() => void)[] = [];
afterEach(async () => {
  for (const off of offs.splice(0)) off();
  await h?.close();
  h = undefined;
});

function record(name: string): Record<string, unknown>[] {
  const seen: Record<string, unknown>[] = [];
  const listener = (m: unknown) => seen.push(m as Record<string, unknown>);
  diagnostics.subscribe(name, listener);
  offs.push(() => diagnostics.unsubscribe(name, listener));
  return seen;
}

describe('fetch handler: diagnostics channels', () => {
  it('a streamed chat ends on the channel after its body, with its status and request id', async () => {
    const starts = record(CHANNELS.requestStart);
    const ends = record(CHANNELS.requestEnd);
    const mints = record(CHANNELS.mint);
    h = await startHarness();
    const response = await h.handler.fetch(
      request(CHAT_PATH, { method: 'POST', json: { ...CHAT_BODY, stream: true } }),
    );
    expect(response.status).toBe(200);
    expect(starts).toHaveLength(1);
    expect(ends).toHaveLength(0); // the body is still to be read
    const text = await response.text();
    expect(text).toContain('[DONE]');
    expect(ends).toHaveLength(1);
    expect(ends[0]).toMatchObject({
      request: starts[0]!.request,
      status: 200,
      requestId: response.headers.get('x-request-id'),
      clientGone: false,
    });
    expect(mints).toMatchObject([{ outcome: 'minted' }]);
    expect(JSON.stringify([starts, ends, mints])).not.toContain(PERMANENT_KEY);
  });

  it('a request over a limit is a limit hit', async () => {
    const hits = record(CHANNELS.limitHit);
    h = await startHarness({ limits: { tokenRoute: { points: 1, durationSeconds: 60 } } });
    await call(h, request('/dashscope/token', { method: 'POST' }));
    expect((await call(h, request('/dashscope/token', { method: 'POST' }))).status).toBe(429);
    expect(hits).toEqual([{ limit: 'tokenRoute', code: 'Throttling.ClientLimit' }]);
  });
});
