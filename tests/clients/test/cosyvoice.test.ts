/**
 * The CosyVoice protocol as the official Python SDK speaks it (dashscope-sdk-python,
 * `dashscope/audio/tts_v2/speech_synthesizer.py`: get_start_request, get_continue_request,
 * get_flush_request, get_finish_request), over a WebSocket through the proxy.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type Stack, startStack } from './harness.js';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(() => stack.close());

type Event = {
  header: { event: string; task_id: string; error_code?: string; error_message?: string };
  payload: { output?: { type?: string; original_text?: string }; usage?: { characters: number } };
};

/** A connection that queues what it receives (JSON events and binary audio). */
async function connect() {
  const ws = new WebSocket(`${stack.wsBase}/api-ws/v1/inference`, {
    headers: { 'user-agent': 'dashscope/1.26.2; python/3.12' },
  });
  const received: Array<Event | Buffer> = [];
  const waiters: Array<() => void> = [];
  ws.on('message', (data: Buffer, isBinary) => {
    received.push(isBinary ? data : (JSON.parse(data.toString()) as Event));
    for (const w of waiters.splice(0)) w();
  });
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  /** Waits for the next event satisfying `pred`; returns everything received before it too. */
  const until = async (pred: (m: Event | Buffer) => boolean): Promise<Array<Event | Buffer>> => {
    for (;;) {
      const i = received.findIndex(pred);
      if (i >= 0) return received.splice(0, i + 1);
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
  };
  return { ws, until, closed };
}

const isEvent = (name: string) => (m: Event | Buffer) =>
  !Buffer.isBuffer(m) && m.header.event === name;

/** What the SDK repeats in run-task and continue-task payloads. */
const TASK = {
  model: 'cosyvoice-v2',
  task_group: 'audio',
  task: 'tts',
  function: 'SpeechSynthesizer',
};

function start(taskId: string, parameters: Record<string, unknown>) {
  return JSON.stringify({
    header: { action: 'run-task', task_id: taskId, streaming: 'duplex' },
    payload: {
      ...TASK,
      input: {},
      parameters: {
        volume: 50,
        text_type: 'PlainText',
        sample_rate: 22050,
        rate: 1.0,
        format: 'mp3',
        pitch: 1.0,
        seed: 0,
        type: 0,
        ...parameters,
      },
    },
  });
}

function cont(taskId: string, input: Record<string, unknown>) {
  return JSON.stringify({
    header: { action: 'continue-task', task_id: taskId, streaming: 'duplex' },
    payload: { ...TASK, input },
  });
}

function finish(taskId: string) {
  return JSON.stringify({
    header: { action: 'finish-task', task_id: taskId, streaming: 'duplex' },
    payload: { input: {} },
  });
}

describe('CosyVoice over the proxy, as the Python SDK speaks it', () => {
  it('streaming_call, streaming_flush, streaming_complete: sentence events, audio, characters', async () => {
    const conn = await connect();
    const taskId = randomUUID().replace(/-/g, '');
    conn.ws.send(start(taskId, { voice: 'longxiaochun_v2' }));
    await conn.until(isEvent('task-started'));
    conn.ws.send(cont(taskId, { text: '你好,' }));
    conn.ws.send(cont(taskId, { text: 'world' }));
    conn.ws.send(cont(taskId, { flush: true }));
    conn.ws.send(finish(taskId));
    const all = await conn.until(isEvent('task-finished'));
    const audio = all.filter((m): m is Buffer => Buffer.isBuffer(m));
    expect(audio.map((b) => b.toString())).toEqual([
      'emulated-audio:你好,',
      'emulated-audio:world',
    ]);
    const events = all.filter((m): m is Event => !Buffer.isBuffer(m));
    expect(events.map((e) => e.payload.output?.type ?? e.header.event)).toEqual([
      'sentence-begin',
      'sentence-synthesis',
      'sentence-end',
      'sentence-begin',
      'sentence-synthesis',
      'sentence-end',
      'task-finished',
    ]);
    // "你好," is 2 + 2 + 1 characters; "world" 5 more.
    expect(events[2]?.payload.usage).toEqual({ characters: 5 });
    expect(events.at(-1)?.payload.usage).toEqual({ characters: 10 });
    conn.ws.close();
    await conn.closed;
  });

  it('a run-task without voice gets task-failed, then the connection is closed', async () => {
    const conn = await connect();
    conn.ws.send(start('t-1', {}));
    const [failed] = await conn.until(isEvent('task-failed'));
    expect((failed as Event).header).toMatchObject({ error_code: 'InvalidParameter' });
    expect((failed as Event).header.error_message).toContain('voice');
    expect(await conn.closed).toBe(1000);
  });
});
