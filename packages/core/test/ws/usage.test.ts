import { createHash } from 'node:crypto';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  MAX_USAGE_MESSAGE_BYTES,
  Metering,
  type UsageEvent,
  WebSocketUsageMeter,
} from '../../src/index.js';
import { meterSession } from '../../src/node/websocket/metering.js';
import { useEmulator } from '../emulator-fixture.js';
import {
  INFERENCE,
  leaks,
  open,
  PERMANENT_KEY,
  REALTIME,
  type RunningProxy,
  runTask,
  startProxy,
  taskAction,
  until,
} from './harness.js';

const KEY_HASH = createHash('sha256').update(PERMANENT_KEY).digest('hex').slice(0, 16);

const SESSION = { identity: 'alice', keyHash: 'k', path: '/api-ws/v1/inference', model: undefined };

function taskEvent(taskId: string, event: string, payload: unknown = {}): string {
  return JSON.stringify({ header: { task_id: taskId, event, attributes: {} }, payload });
}

describe('WebSocketUsageMeter (speech tasks)', () => {
  it('reports a synthesis task once, at task-finished, with its model and characters', () => {
    let now = 1000;
    const meter = new WebSocketUsageMeter(SESSION, () => now);
    expect(meter.client(runTask('t1', 'tts'))).toEqual([]);
    expect(meter.upstream(taskEvent('t1', 'task-started'))).toEqual([]);
    expect(
      meter.upstream(taskEvent('t1', 'result-generated', { output: {}, usage: { characters: 5 } })),
    ).toEqual([]);
    now = 1250;
    const [event, ...more] = meter.upstream(
      taskEvent('t1', 'task-finished', { output: {}, usage: { characters: 12 } }),
    );
    expect(more).toEqual([]);
    expect(event).toEqual({
      identity: 'alice',
      keyHash: 'k',
      route: 'websocket',
      dialect: 'dashscope',
      path: '/api-ws/v1/inference',
      model: 'cosyvoice-v2',
      requestModel: 'cosyvoice-v2',
      inputTokens: undefined,
      outputTokens: undefined,
      totalTokens: undefined,
      characters: 12,
      requestId: 't1',
      status: 101,
      durationMs: 250,
      complete: true,
    });
    expect(meter.end()).toEqual([]);
  });

  it('reports a failed task as incomplete, and a task cut by the session end with its usage so far', () => {
    const meter = new WebSocketUsageMeter(SESSION);
    meter.client(runTask('a', 'asr'));
    const [failed] = meter.upstream(taskEvent('a', 'task-failed'));
    expect(failed).toMatchObject({
      requestId: 'a',
      model: 'paraformer-realtime-v2',
      complete: false,
    });
    meter.client(runTask('b', 'tts'));
    meter.upstream(taskEvent('b', 'result-generated', { usage: { characters: 7 } }));
    expect(meter.end()).toMatchObject([{ requestId: 'b', characters: 7, complete: false }]);
    expect(meter.end()).toEqual([]);
  });

  it('reads recognition seconds and token usage where a model reports them', () => {
    const meter = new WebSocketUsageMeter(SESSION);
    meter.client(runTask('a', 'asr'));
    meter.upstream(taskEvent('a', 'result-generated', { usage: null }));
    const [event] = meter.upstream(
      taskEvent('a', 'task-finished', {
        usage: { duration: 3, input_tokens: 10, output_tokens: 4 },
      }),
    );
    expect(event).toMatchObject({
      audioSeconds: 3,
      inputTokens: 10,
      outputTokens: 4,
      totalTokens: 14,
    });
  });
});

describe('WebSocketUsageMeter (realtime)', () => {
  const realtime = { ...SESSION, path: '/api-ws/v1/realtime', model: 'qwen-omni-turbo-realtime' };
  const done = (id: string, status: string, usage: unknown) =>
    JSON.stringify({ type: 'response.done', response: { id, status, usage } });

  it('reports each response.done with its token usage and the session model', () => {
    const meter = new WebSocketUsageMeter(realtime);
    meter.upstream(JSON.stringify({ type: 'response.created', response: { id: 'r1' } }));
    const [event] = meter.upstream(
      done('r1', 'completed', {
        input_tokens: 30,
        output_tokens: 8,
        total_tokens: 38,
        input_token_details: { cached_tokens: 4 },
      }),
    );
    expect(event).toMatchObject({
      path: '/api-ws/v1/realtime',
      model: 'qwen-omni-turbo-realtime',
      inputTokens: 30,
      outputTokens: 8,
      totalTokens: 38,
      cachedTokens: 4,
      requestId: 'r1',
      complete: true,
    });
    const [cancelled] = meter.upstream(done('r2', 'cancelled', { input_tokens: 1 }));
    expect(cancelled).toMatchObject({ requestId: 'r2', inputTokens: 1, complete: false });
    expect(meter.end()).toEqual([]);
  });

  it("counts a realtime response against the URL's model, though upstream's session names a dated one", () => {
    const meter = new WebSocketUsageMeter(realtime);
    meter.upstream(
      JSON.stringify({
        type: 'session.created',
        session: { model: 'qwen-omni-turbo-realtime-2025-05-08' },
      }),
    );
    const [event] = meter.upstream(done('r1', 'completed', { total_tokens: 5 }));
    expect(event).toMatchObject({
      model: 'qwen-omni-turbo-realtime-2025-05-08',
      requestModel: 'qwen-omni-turbo-realtime',
    });
  });
});

describe('meterSession (what the node executor parses)', () => {
  function observed() {
    const events: UsageEvent[] = [];
    const metering = new Metering<string>({ onUsage: (event) => void events.push(event) });
    return { events, observer: meterSession(metering, SESSION, 'ctx') };
  }

  it(`does not parse text messages over ${MAX_USAGE_MESSAGE_BYTES} bytes, nor binary frames`, () => {
    const { events, observer } = observed();
    observer.client(Buffer.from(runTask('t', 'tts')), false);
    const big = taskEvent('t', 'task-finished', {
      usage: { characters: 1 },
      pad: 'x'.repeat(MAX_USAGE_MESSAGE_BYTES),
    });
    observer.upstream(Buffer.from(big), false);
    observer.upstream(Buffer.from(taskEvent('t', 'task-finished')), true);
    expect(events).toEqual([]);
    observer.upstream(
      Buffer.from(taskEvent('t', 'task-finished', { usage: { characters: 2 } })),
      false,
    );
    expect(events).toMatchObject([{ characters: 2, complete: true }]);
  });
});

const emulator = useEmulator({ apiKeys: [PERMANENT_KEY] });
let proxy: RunningProxy | undefined;
afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
});
afterAll(() => {
  expect(leaks()).toEqual([]);
});

describe('WebSocket usage through the node handler', () => {
  it('reports a recognition task with its seconds of audio, the identity and the key hash', async () => {
    const events: { event: UsageEvent; ctx: unknown }[] = [];
    proxy = await startProxy({
      baseUrl: emulator().url,
      authorize: () => ({ id: 'user-7' }),
      onUsage: (event, ctx) => void events.push({ event, ctx }),
    });
    const conn = await open(`${proxy.wsBase}${INFERENCE}`);
    conn.ws.send(runTask('asr-1', 'asr'));
    await conn.next(); // task-started
    for (let i = 0; i < 4; i++) conn.ws.send(Buffer.alloc(16_000, i));
    await conn.take(4);
    conn.ws.send(taskAction('finish-task', 'asr-1'));
    await conn.take(2);
    await until(() => events.length === 1);
    expect(events[0]?.event).toMatchObject({
      identity: 'user-7',
      keyHash: KEY_HASH,
      route: 'websocket',
      path: '/api-ws/v1/inference',
      model: 'paraformer-realtime-v2',
      audioSeconds: 2,
      requestId: 'asr-1',
      status: 101,
      complete: true,
    });
    expect(JSON.stringify(events)).not.toContain(PERMANENT_KEY);
    conn.ws.close();
    await conn.closed;
    expect(events).toHaveLength(1);
  });

  it('reports a realtime response and nothing for a session without one', async () => {
    const events: UsageEvent[] = [];
    proxy = await startProxy({ baseUrl: emulator().url, onUsage: (e) => void events.push(e) });
    const quiet = await open(`${proxy.wsBase}${REALTIME}`);
    await quiet.next();
    quiet.ws.close();
    await quiet.closed;
    const conn = await open(`${proxy.wsBase}${REALTIME}`);
    await conn.next(); // session.created
    conn.ws.send(JSON.stringify({ type: 'response.create' }));
    await conn.take(4);
    await until(() => events.length === 1);
    expect(events[0]).toMatchObject({
      model: 'qwen-omni-turbo-realtime',
      path: '/api-ws/v1/realtime',
      inputTokens: 0,
      outputTokens: 2,
      totalTokens: 2,
      requestId: 'resp_1',
      complete: true,
    });
    conn.ws.close();
    await conn.closed;
    expect(events).toHaveLength(1);
  });
});
