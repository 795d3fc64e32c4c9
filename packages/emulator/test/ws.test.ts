import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { bearer, KEY, mint, start } from './helpers.js';
import { connect, open, refused } from './ws-client.js';

const INFERENCE = '/api-ws/v1/inference';
const REALTIME = '/api-ws/v1/realtime?model=qwen-omni-turbo-realtime';

function wsUrl(httpUrl: string, path: string): string {
  return httpUrl.replace(/^http/, 'ws') + path;
}

function runTask(taskId: string, task: 'asr' | 'tts', extra: Record<string, unknown> = {}) {
  return JSON.stringify({
    header: { action: 'run-task', task_id: taskId, streaming: 'duplex' },
    payload: {
      task_group: 'audio',
      task,
      function: task === 'asr' ? 'recognition' : 'SpeechSynthesizer',
      model: task === 'asr' ? 'paraformer-realtime-v2' : 'cosyvoice-v2',
      parameters: task === 'tts' ? { voice: 'longxiaochun_v2' } : {},
      input: {},
      ...extra,
    },
  });
}

function action(name: 'continue-task' | 'finish-task', taskId: string, input: unknown = {}) {
  return JSON.stringify({
    header: { action: name, task_id: taskId, streaming: 'duplex' },
    payload: { input },
  });
}

type Event = {
  header: { event: string; task_id: string; error_code?: string; error_message?: string };
  payload: {
    output?: {
      type?: string;
      original_text?: string;
      sentence?: { index?: number; text?: string; sentence_end?: boolean };
      bytes_received?: number;
      frames_received?: number;
    };
    usage?: { characters?: number; duration?: number } | null;
  };
};

describe('WebSocket /api-ws/v1/inference', () => {
  it('runs a recognition task: task-started, one result per audio frame, task-finished', async () => {
    const emulator = await start();
    const conn = await open(wsUrl(emulator.url, INFERENCE), { headers: bearer() });
    const taskId = randomUUID();
    conn.ws.send(runTask(taskId, 'asr'));
    const started = (await conn.next()).json as Event;
    expect(started.header).toMatchObject({ event: 'task-started', task_id: taskId });

    for (let i = 1; i <= 5; i++) conn.ws.send(Buffer.alloc(3200, i));
    const results = await conn.take(5);
    results.forEach((r, i) => {
      const e = r.json as Event;
      expect(e.header.event).toBe('result-generated');
      expect(e.payload.output?.frames_received).toBe(i + 1);
      expect(e.payload.output?.bytes_received).toBe(3200 * (i + 1));
    });

    conn.ws.send(action('finish-task', taskId));
    const [last, finished] = (await conn.take(2)).map((r) => r.json as Event);
    expect(last?.payload.output?.sentence).toMatchObject({
      text: 'Received 5 audio frames (16000 bytes).',
      sentence_end: true,
    });
    expect(finished?.header).toMatchObject({ event: 'task-finished', task_id: taskId });
    expect(finished?.payload.usage).toEqual({ duration: 1 });

    conn.ws.close(1000, 'done');
    expect(await conn.closed).toEqual({ code: 1000, reason: 'done' });
    const record = await emulator.waitForRequest(
      (r) => r.route === 'ws-inference' && r.closeCode !== undefined,
    );
    expect(record).toMatchObject({
      method: 'GET',
      path: INFERENCE,
      status: 101,
      messagesReceived: 7,
      closeCode: 1000,
      closeReason: 'done',
      clientClosedEarly: true,
    });
    expect(record.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(emulator.stats().requests['ws-inference']).toBe(1);
  });

  it('runs a synthesis task: sentence-begin, sentence-synthesis + audio, sentence-end per text', async () => {
    const emulator = await start();
    const conn = await open(wsUrl(emulator.url, `${INFERENCE}/`), { headers: bearer() });
    const taskId = randomUUID();
    conn.ws.send(runTask(taskId, 'tts'));
    expect(((await conn.next()).json as Event).header.event).toBe('task-started');
    conn.ws.send(action('continue-task', taskId, { text: 'Hello' }));
    conn.ws.send(action('continue-task', taskId, { text: 'world' }));
    const got = await conn.take(8);
    expect(got.map((r) => r.binary)).toEqual([
      false,
      false,
      true,
      false,
      false,
      false,
      true,
      false,
    ]);
    const types = got.map((r) => (r.binary ? 'audio' : (r.json as Event).payload.output?.type));
    expect(types).toEqual([
      'sentence-begin',
      'sentence-synthesis',
      'audio',
      'sentence-end',
      'sentence-begin',
      'sentence-synthesis',
      'audio',
      'sentence-end',
    ]);
    expect((got[0]?.json as Event | undefined)?.payload.output?.original_text).toBe('Hello');
    expect((got[3]?.json as Event | undefined)?.payload.usage).toEqual({ characters: 5 });
    expect((got[7]?.json as Event | undefined)?.payload.output?.sentence?.index).toBe(1);
    expect(got[2]?.data.toString()).toBe('emulated-audio:Hello');
    expect(got[6]?.data.toString()).toBe('emulated-audio:world');
    conn.ws.send(action('finish-task', taskId));
    const finished = (await conn.next()).json as Event;
    expect(finished.header.event).toBe('task-finished');
    expect(finished.payload.usage).toEqual({ characters: 10 });

    // The connection can run another task.
    conn.ws.send(runTask('second', 'tts'));
    expect(((await conn.next()).json as Event).header).toMatchObject({
      event: 'task-started',
      task_id: 'second',
    });
    conn.ws.close();
  });

  it('bills a CJK character as 2 characters ("你好" is 4, "你好, Bob" 9)', async () => {
    const emulator = await start();
    const conn = await open(wsUrl(emulator.url, INFERENCE), { headers: bearer() });
    conn.ws.send(runTask('t', 'tts'));
    await conn.next();
    conn.ws.send(action('continue-task', 't', { text: '你好' }));
    const first = (await conn.take(4))[3]?.json as Event | undefined;
    expect(first?.payload.usage).toEqual({ characters: 4 });
    conn.ws.send(action('continue-task', 't', { text: '你好, Bob' }));
    const second = (await conn.take(4))[3]?.json as Event | undefined;
    expect(second?.payload.usage).toEqual({ characters: 13 });
    conn.ws.send(action('finish-task', 't'));
    expect(((await conn.next()).json as Event).payload.usage).toEqual({ characters: 13 });
    conn.ws.close();
  });

  it('accepts continue-task with input {flush: true}, as the SDK streaming_flush() sends it', async () => {
    const emulator = await start();
    const conn = await open(wsUrl(emulator.url, INFERENCE), { headers: bearer() });
    conn.ws.send(runTask('t', 'tts'));
    await conn.next();
    conn.ws.send(action('continue-task', 't', { text: 'Hi' }));
    await conn.take(4);
    conn.ws.send(action('continue-task', 't', { flush: true }));
    conn.ws.send(action('finish-task', 't'));
    const finished = (await conn.next()).json as Event;
    expect(finished.header.event).toBe('task-finished');
    expect(finished.payload.usage).toEqual({ characters: 2 });
    conn.ws.close();
  });

  it.each([
    ['invalid JSON', 'not json', undefined],
    ['audio before any task', Buffer.from('audio before any task'), undefined],
    ['continue-task without a task', action('continue-task', 'nope', { text: 'x' }), undefined],
    ['a run-task without model', runTask('t1', 'asr', { model: '' }), 'payload.model is required.'],
    ['an unknown model', runTask('t1', 'asr', { model: 'Paraformer-X' }), 'Model not exist.'],
    ['an unknown task', runTask('t1', 'translate' as 'asr'), undefined],
    [
      'a synthesis run-task without voice',
      runTask('t1', 'tts', { parameters: {} }),
      'payload.parameters.voice is required.',
    ],
    [
      'an unknown action',
      JSON.stringify({ header: { action: 'dance', task_id: 't1' } }),
      undefined,
    ],
  ])('answers %s with task-failed, then closes the connection', async (_name, message, text) => {
    const emulator = await start();
    const conn = await open(wsUrl(emulator.url, INFERENCE), { headers: bearer() });
    conn.ws.send(message);
    const e = (await conn.next()).json as Event;
    expect(e.header.event).toBe('task-failed');
    expect(e.header.error_code).toBe('InvalidParameter');
    if (text !== undefined) expect(e.header.error_message).toBe(text);
    expect((await conn.closed).code).toBe(1000);
  });

  it('fails a second run-task while one runs, and closes the connection', async () => {
    const emulator = await start();
    const conn = await open(wsUrl(emulator.url, INFERENCE), { headers: bearer() });
    conn.ws.send(runTask('t2', 'asr'));
    expect(((await conn.next()).json as Event).header.event).toBe('task-started');
    conn.ws.send(runTask('t3', 'asr'));
    expect(((await conn.next()).json as Event).header.event).toBe('task-failed');
    expect((await conn.closed).code).toBe(1000);
    // No task-finished after a failure: the session is over.
    const record = await emulator.waitForRequest((r) => r.closeCode !== undefined);
    expect(record.clientClosedEarly).toBe(false);
  });

  it('accepts ?api_key= on the handshake, as the browser samples do (and never logs it)', async () => {
    const lines: string[] = [];
    const emulator = await start({ log: (line) => lines.push(line) });
    const conn = await open(wsUrl(emulator.url, `${INFERENCE}?api_key=${KEY}&x=1`));
    conn.ws.close();
    await conn.closed;
    expect(lines).toEqual([
      expect.stringMatching(
        /^GET \/api-ws\/v1\/inference\?api_key=\[redacted\]&x=1 101 ws-inference \d+ms$/,
      ),
    ]);
  });
});

describe('WebSocket /api-ws/v1/realtime', () => {
  it('sends session.created, updates the session and echoes every other message in order', async () => {
    const emulator = await start();
    const conn = await open(wsUrl(emulator.url, REALTIME), { headers: bearer() });
    const created = (await conn.next()).json as {
      type: string;
      event_id: string;
      session: { id: string; model: string };
    };
    expect(created).toMatchObject({
      type: 'session.created',
      event_id: 'event_1',
      session: { id: 'sess_1', model: 'qwen-omni-turbo-realtime' },
    });

    conn.ws.send(JSON.stringify({ type: 'session.update', session: { voice: 'Ethan' } }));
    expect((await conn.next()).json).toMatchObject({
      type: 'session.updated',
      event_id: 'event_2',
      session: { id: 'sess_1', voice: 'Ethan' },
    });

    for (let i = 0; i < 200; i++) {
      if (i % 2 === 0) conn.ws.send(JSON.stringify({ type: 'input_audio_buffer.append', i }));
      else conn.ws.send(Buffer.from([i % 256, 1, 2, 3]));
    }
    const echoes = await conn.take(200);
    echoes.forEach((r, i) => {
      expect(r.binary).toBe(i % 2 === 1);
      if (i % 2 === 0) expect(r.json).toEqual({ type: 'input_audio_buffer.append', i });
      else expect([...r.data]).toEqual([i % 256, 1, 2, 3]);
    });
    conn.ws.close();
  });

  it('answers response.create with a response whose response.done carries the usage', async () => {
    const emulator = await start();
    const conn = await open(wsUrl(emulator.url, REALTIME), { headers: bearer() });
    await conn.next(); // session.created
    const item = {
      type: 'conversation.item.create',
      item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'hi there' }] },
    };
    conn.ws.send(JSON.stringify(item));
    // One second of pcm16 audio at 16 kHz: 25 input tokens.
    const audio = Buffer.alloc(32_000).toString('base64');
    conn.ws.send(JSON.stringify({ type: 'input_audio_buffer.append', audio }));
    expect((await conn.take(2)).map((r) => (r.json as { type: string }).type)).toEqual([
      'conversation.item.create',
      'input_audio_buffer.append',
    ]);
    conn.ws.send(JSON.stringify({ type: 'response.create' }));
    const events = (await conn.take(4)).map((r) => r.json as Record<string, unknown>);
    expect(events.map((e) => e.type)).toEqual([
      'response.created',
      'response.text.delta',
      'response.text.done',
      'response.done',
    ]);
    expect(events[2]).toMatchObject({ text: 'Emulated reply to: hi there' });
    expect(events[3]).toMatchObject({
      response: {
        id: 'resp_1',
        status: 'completed',
        usage: {
          input_tokens: 27,
          output_tokens: 5,
          total_tokens: 32,
          input_tokens_details: { text_tokens: 2, audio_tokens: 25 },
        },
      },
    });
    // The input is spent: the next response has none.
    conn.ws.send(JSON.stringify({ type: 'response.create' }));
    const next = (await conn.take(4))[3]?.json;
    expect(next).toMatchObject({
      response: { id: 'resp_2', usage: { input_tokens: 0, output_tokens: 2, total_tokens: 2 } },
    });
    conn.ws.close();
  });

  it('needs a model in the query', async () => {
    const emulator = await start();
    const refusal = await refused(wsUrl(emulator.url, '/api-ws/v1/realtime'), {
      headers: bearer(),
    });
    expect(refusal.status).toBe(400);
    expect(JSON.parse(refusal.body)).toMatchObject({ code: 'InvalidParameter' });
  });

  it('refuses an unknown realtime model on the handshake (400 "Model not exist.")', async () => {
    const emulator = await start();
    const refusal = await refused(wsUrl(emulator.url, '/api-ws/v1/realtime?model=qwen-plus'), {
      headers: bearer(),
    });
    expect(refusal.status).toBe(400);
    expect(JSON.parse(refusal.body)).toMatchObject({
      code: 'InvalidParameter',
      message: 'Model not exist.',
    });
  });

  it('refuses a handshake naming an unknown workspace', async () => {
    const emulator = await start();
    const refusal = await refused(wsUrl(emulator.url, REALTIME), {
      headers: { ...bearer(), 'X-DashScope-WorkSpace': 'llm-nope' },
    });
    expect(refusal.status).toBe(401);
    expect(JSON.parse(refusal.body)).toMatchObject({ code: 'InvalidApiKey' });
  });

  it('selects the first subprotocol offered', async () => {
    const emulator = await start();
    const conn = await open(wsUrl(emulator.url, REALTIME), {
      headers: bearer(),
      protocols: ['realtime', 'other'],
    });
    expect(conn.ws.protocol).toBe('realtime');
    conn.ws.close();
    const record = await emulator.waitForRequest((r) => r.closeCode !== undefined);
    expect(record.protocol).toBe('realtime');
  });
});

describe('WebSocket handshake authentication', () => {
  it('refuses a handshake without a valid key with 401 InvalidApiKey', async () => {
    const emulator = await start();
    for (const headers of [{}, bearer('sk-unknown-key-0000000000000000'), bearer('st-nope')]) {
      const refusal = await refused(wsUrl(emulator.url, REALTIME), { headers });
      expect(refusal.status).toBe(401);
      expect(JSON.parse(refusal.body)).toMatchObject({
        code: 'InvalidApiKey',
        request_id: refusal.headers['x-request-id'],
      });
    }
    // ?api_key= is only read on /inference.
    const refusal = await refused(wsUrl(emulator.url, `${REALTIME}&api_key=${KEY}`));
    expect(refusal.status).toBe(401);
    expect(emulator.requests.map((r) => r.status)).toEqual([401, 401, 401, 401]);
  });

  it('accepts a live st- key and refuses it once expired', async () => {
    const emulator = await start();
    const { token } = await mint(emulator, 60);
    const conn = await open(wsUrl(emulator.url, INFERENCE), { headers: bearer(token) });
    emulator.setClockOffset(61);
    const refusal = await refused(wsUrl(emulator.url, INFERENCE), { headers: bearer(token) });
    expect(refusal.status).toBe(401);
    expect(JSON.parse(refusal.body)).toMatchObject({ code: 'InvalidApiKey' });
    // The open session is not affected: the key is only checked on the handshake.
    conn.ws.send(runTask('t', 'asr'));
    expect(((await conn.next()).json as Event).header.event).toBe('task-started');
    conn.ws.close();
  });

  it('answers unknown WebSocket paths with 404', async () => {
    const emulator = await start();
    const refusal = await refused(wsUrl(emulator.url, '/api-ws/v1/nope'), { headers: bearer() });
    expect(refusal.status).toBe(404);
    expect(emulator.requests[0]?.route).toBe('unknown');
  });
});

describe('WebSocket faults', () => {
  it('answers handshake faults with HTTP errors', async () => {
    const emulator = await start();
    const url = wsUrl(emulator.url, REALTIME);
    emulator.fault('ws-realtime', { type: 'throttle', retryAfterSeconds: 3 });
    emulator.fault('ws-realtime', { type: 'system-error' });
    emulator.fault('ws-realtime', { type: 'invalid-api-key' });
    emulator.fault('ws-realtime', { type: 'html-502' });
    emulator.fault('ws-realtime', { type: 'status', status: 503, body: { code: 'Busy' } });
    const throttled = await refused(url, { headers: bearer() });
    expect(throttled.status).toBe(429);
    expect(throttled.headers['retry-after']).toBe('3');
    expect(JSON.parse(throttled.body)).toMatchObject({ code: 'Throttling.RateQuota' });
    expect((await refused(url, { headers: bearer() })).status).toBe(500);
    expect((await refused(url, { headers: bearer() })).status).toBe(401);
    const html = await refused(url, { headers: bearer() });
    expect(html.status).toBe(502);
    expect(html.headers['content-type']).toBe('text/html');
    const busy = await refused(url, { headers: bearer() });
    expect(busy.status).toBe(503);
    expect(JSON.parse(busy.body)).toEqual({ code: 'Busy' });
    // Faults target their own route only.
    emulator.fault('ws-inference', { type: 'system-error' });
    const conn = await open(url, { headers: bearer() });
    conn.ws.close();
    expect(emulator.stats().requests['ws-realtime']).toBe(6);
  });

  it('resets or hangs the handshake', async () => {
    const emulator = await start();
    const url = wsUrl(emulator.url, REALTIME);
    emulator.fault('ws-realtime', { type: 'reset' });
    await expect(connect(url, { headers: bearer() })).rejects.toThrow(/ECONNRESET|socket hang up/);
    emulator.fault('ws-realtime', { type: 'hang' });
    await expect(connect(url, { headers: bearer(), handshakeTimeout: 200 })).rejects.toThrow(
      /timed out/,
    );
    emulator.fault('ws-realtime', { type: 'hang' });
    const hanging = connect(url, { headers: bearer() });
    await emulator.waitForRequest(
      (r) => r.route === 'ws-realtime' && emulator.requests.length === 3,
    );
    await emulator.close();
    await expect(hanging).rejects.toThrow();
  });

  it('cuts a session after afterChunks messages (stream-cut)', async () => {
    const emulator = await start();
    emulator.fault('ws-realtime', { type: 'stream-cut', afterChunks: 1 });
    const conn = await open(wsUrl(emulator.url, REALTIME), { headers: bearer() });
    expect(((await conn.next()).json as { type: string }).type).toBe('session.created');
    conn.ws.send('echo me');
    expect((await conn.closed).code).toBe(1006);
  });

  it('fails a session with an error event and close 1011 (stream-error)', async () => {
    const emulator = await start();
    emulator.fault('ws-inference', { type: 'stream-error', afterChunks: 0, code: 'Boom' });
    const conn = await open(wsUrl(emulator.url, INFERENCE), { headers: bearer() });
    conn.ws.send(runTask('t', 'asr'));
    const failed = (await conn.next()).json as Event;
    expect(failed.header).toMatchObject({ event: 'task-failed', error_code: 'Boom' });
    expect(await conn.closed).toEqual({ code: 1011, reason: 'stream-error' });
  });

  it('closes open sessions with a chosen code (closeWebSockets)', async () => {
    const emulator = await start();
    const conn = await open(wsUrl(emulator.url, REALTIME), { headers: bearer() });
    await conn.next();
    expect(emulator.stats().openWebSockets).toBe(1);
    expect(emulator.closeWebSockets(4321, 'bye')).toBe(1);
    expect(await conn.closed).toEqual({ code: 4321, reason: 'bye' });
    const record = await emulator.waitForRequest((r) => r.closeCode !== undefined);
    expect(record).toMatchObject({ closeCode: 4321, clientClosedEarly: false });
    expect(emulator.stats().openWebSockets).toBe(0);
    expect(() => emulator.closeWebSockets(1006)).toThrow(RangeError);
  });

  it('close() ends open sessions', async () => {
    const emulator = await start();
    const conn = await open(wsUrl(emulator.url, INFERENCE), { headers: bearer() });
    await emulator.close();
    expect((await conn.closed).code).toBe(1006);
  });
});
