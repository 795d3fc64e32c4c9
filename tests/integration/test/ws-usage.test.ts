/**
 * Usage of WebSocket sessions (`onUsage`) through every WebSocket-capable front door, in front
 * of one emulator: one event per speech task and per realtime response, with the counts the
 * emulator reported, who spent it and the key's hash; what the client receives is the same
 * byte for byte as through an unmetered app; a session cut mid-task is reported incomplete.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { UsageEvent } from '@dashscope-token/core';
import { type Emulator, startEmulator } from '@dashscope-token/emulator';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { connect, leaksOf, type Received, until, WS_KINDS, type WsApp } from './ws-apps.js';

const PERMANENT_KEY = 'sk-ws-usage-permanent-key-0000001';
const KEY_HASH = createHash('sha256').update(PERMANENT_KEY).digest('hex').slice(0, 16);
const REALTIME = '/dashscope/api-ws/v1/realtime?model=qwen-omni-turbo-realtime';
const INFERENCE = '/dashscope/api-ws/v1/inference';

let emulator: Emulator;
beforeAll(async () => {
  emulator = await startEmulator({ apiKeys: [PERMANENT_KEY] });
});
afterAll(async () => {
  await emulator?.close();
  expect(leaksOf(PERMANENT_KEY)).toEqual([]);
});

function speech(action: string, taskId: string, payload: Record<string, unknown>): string {
  return JSON.stringify({ header: { action, task_id: taskId, streaming: 'duplex' }, payload });
}

const runTts = (taskId: string) =>
  speech('run-task', taskId, {
    task_group: 'audio',
    task: 'tts',
    function: 'SpeechSynthesizer',
    model: 'cosyvoice-v2',
    parameters: { voice: 'longxiaochun_v2' },
    input: {},
  });
const say = (taskId: string, text: string) => speech('continue-task', taskId, { input: { text } });

async function listen(app: WsApp): Promise<{ ws: string; origin: string }> {
  await new Promise<void>((resolve) => app.server.listen(0, '127.0.0.1', resolve));
  const port = (app.server.address() as AddressInfo).port;
  return { ws: `ws://127.0.0.1:${port}`, origin: `http://127.0.0.1:${port}` };
}

async function stop(app: WsApp): Promise<void> {
  await app.close();
  app.server.closeAllConnections();
  await new Promise<void>((resolve) => app.server.close(() => resolve()));
}

describe.each(WS_KINDS)('WebSocket usage through $name', (kind) => {
  const events: UsageEvent[] = [];
  let metered: WsApp;
  let plain: WsApp;
  let meteredAt: { ws: string; origin: string };
  let plainAt: { ws: string; origin: string };

  beforeAll(async () => {
    const options = { apiKey: PERMANENT_KEY, baseUrl: emulator.url };
    metered = await kind.start({ ...options, onUsage: (event) => void events.push(event) });
    plain = await kind.start(options);
    meteredAt = await listen(metered);
    plainAt = await listen(plain);
  });
  beforeEach(() => {
    events.length = 0;
  });
  afterAll(async () => {
    await stop(metered);
    await stop(plain);
  });

  async function open(at: { ws: string; origin: string }, path: string, user = 'alice') {
    const outcome = await connect(`${at.ws}${path}`, {
      Cookie: `session=${user}`,
      Origin: at.origin,
    });
    if (outcome.kind !== 'open') throw new Error(`refused: ${outcome.status}`);
    return outcome;
  }

  /** A synthesis task of two sentences, whole; what the client received. */
  async function ttsTask(at: { ws: string; origin: string }, taskId: string) {
    const { ws, messages, closed } = await open(at, INFERENCE);
    ws.send(runTts(taskId));
    await until(() => messages.length === 1);
    ws.send(say(taskId, 'Hello world'));
    ws.send(say(taskId, '你好'));
    // Per sentence: sentence-begin, sentence-synthesis, the audio, sentence-end.
    await until(() => messages.length === 9);
    ws.send(speech('finish-task', taskId, { input: {} }));
    await until(() => messages.length === 10);
    ws.close();
    await closed;
    return messages;
  }

  it('reports a synthesis task once, with its characters, model, identity and key hash', async () => {
    const taskId = randomUUID();
    const messages = await ttsTask(meteredAt, taskId);
    expect(JSON.parse(messages[9]!.text).header.event).toBe('task-finished');
    await until(() => events.length === 1);
    expect(events).toEqual([
      {
        identity: 'alice',
        keyHash: KEY_HASH,
        route: 'websocket',
        dialect: 'dashscope',
        path: '/api-ws/v1/inference',
        model: 'cosyvoice-v2',
        requestModel: 'cosyvoice-v2',
        inputTokens: undefined,
        outputTokens: undefined,
        totalTokens: undefined,
        // "Hello world" 11, "你好" 2 × 2.
        characters: 15,
        requestId: taskId,
        status: 101,
        durationMs: expect.any(Number),
        complete: true,
      },
    ]);
    expect(JSON.stringify(events)).not.toContain(PERMANENT_KEY.slice(3, 15));
  });

  it('reports a realtime response with its token counts', async () => {
    const { ws, messages, closed } = await open(meteredAt, REALTIME, 'bob');
    await until(() => messages.length === 1);
    ws.send(
      JSON.stringify({
        type: 'conversation.item.create',
        item: {
          type: 'message',
          role: 'user',
          content: [{ type: 'input_text', text: 'what is the weather' }],
        },
      }),
    );
    ws.send(JSON.stringify({ type: 'response.create' }));
    // The item's echo, then response.created, .text.delta, .text.done, .done.
    await until(() => messages.length === 6);
    expect(JSON.parse(messages[5]!.text).type).toBe('response.done');
    await until(() => events.length === 1);
    expect(events[0]).toMatchObject({
      identity: 'bob',
      keyHash: KEY_HASH,
      path: '/api-ws/v1/realtime',
      model: 'qwen-omni-turbo-realtime',
      inputTokens: 4,
      // "Emulated reply to: what is the weather"
      outputTokens: 7,
      totalTokens: 11,
      requestId: 'resp_1',
      status: 101,
      complete: true,
    });
    ws.close();
    await closed;
    expect(events).toHaveLength(1);
  });

  it('gives the client the same bytes as an unmetered app', async () => {
    const taskId = randomUUID();
    const through = await ttsTask(meteredAt, taskId);
    const direct = await ttsTask(plainAt, taskId);
    expect(through).toEqual(direct);
    expect(through.filter((m: Received) => m.binary)).toHaveLength(2);
  });

  it('reports a task cut by the client leaving mid-task as incomplete, with its usage so far', async () => {
    const taskId = randomUUID();
    const { ws, messages, closed } = await open(meteredAt, INFERENCE);
    ws.send(runTts(taskId));
    ws.send(say(taskId, 'one two three'));
    await until(() => messages.length === 5);
    ws.terminate();
    await closed;
    await until(() => events.length === 1);
    expect(events[0]).toMatchObject({
      identity: 'alice',
      model: 'cosyvoice-v2',
      characters: 13,
      requestId: taskId,
      complete: false,
    });
  });

  it('reports a task cut by Model Studio mid-task as incomplete', async () => {
    const taskId = randomUUID();
    // task-started, then a sentence's four messages; the connection drops instead of the next.
    emulator.fault('ws-inference', { type: 'stream-cut', afterChunks: 5 });
    const { ws, messages, closed } = await open(meteredAt, INFERENCE);
    ws.send(runTts(taskId));
    ws.send(say(taskId, 'cut here'));
    await until(() => messages.length === 5);
    ws.send(speech('finish-task', taskId, { input: {} }));
    await closed;
    await until(() => events.length === 1);
    expect(events[0]).toMatchObject({ characters: 8, requestId: taskId, complete: false });
  });
});
