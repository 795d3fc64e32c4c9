import { describe, expect, it } from 'vitest';
import {
  bearer,
  generationBody,
  type NativeFrame,
  PATHS,
  parseNativeSse,
  postJson,
  start,
} from './helpers.js';

const sse = { ...bearer(), 'x-dashscope-sse': 'enable' };

interface TextData {
  output: { text: string; finish_reason: string };
  usage: { input_tokens: number; output_tokens: number; total_tokens: number };
  request_id: string;
}

const texts = (frames: NativeFrame[]) => frames.map((f) => (f.data as TextData).output.text);

describe('native text generation', () => {
  it('answers output.text with usage and request_id', async () => {
    const emulator = await start();
    const res = await postJson(emulator, PATHS.generation, generationBody('Tell me a joke'));
    expect(res.status).toBe(200);
    const body = (await res.json()) as TextData;
    expect(body.output).toEqual({
      text: 'Hello from the DashScope emulator (qwen-plus). You said: "Tell me a joke".',
      finish_reason: 'stop',
    });
    expect(body.usage).toEqual({ input_tokens: 4, output_tokens: 12, total_tokens: 16 });
    expect(body.request_id).toBe(res.headers.get('x-request-id'));
  });

  it('answers choices[].message with result_format message', async () => {
    const emulator = await start();
    const res = await postJson(
      emulator,
      PATHS.generation,
      generationBody('Hi', { result_format: 'message' }),
    );
    const body = (await res.json()) as { output: { choices: unknown[] } };
    expect(body.output.choices).toEqual([
      {
        finish_reason: 'stop',
        message: {
          role: 'assistant',
          content: 'Hello from the DashScope emulator (qwen-plus). You said: "Hi".',
        },
      },
    ]);
  });

  it('accepts input.prompt and uses the reply option', async () => {
    const emulator = await start({ reply: (prompt, model) => `${model} echoes ${prompt}` });
    const res = await postJson(emulator, PATHS.generation, {
      model: 'qwen-max',
      input: { prompt: 'ping' },
    });
    expect(((await res.json()) as TextData).output.text).toBe('qwen-max echoes ping');
  });

  it('answers the multimodal path with message content parts', async () => {
    const emulator = await start();
    const res = await postJson(emulator, PATHS.multimodal, {
      model: 'qwen-vl-plus',
      input: {
        messages: [
          {
            role: 'user',
            content: [{ image: 'https://example.invalid/cat.png' }, { text: 'What is this?' }],
          },
        ],
      },
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      output: { choices: Array<{ message: { content: unknown } }> };
    };
    expect(body.output.choices[0]?.message.content).toEqual([
      { text: 'Hello from the DashScope emulator (qwen-vl-plus). You said: "What is this?".' },
    ]);
  });

  it.each([
    ['a missing model', { input: { prompt: 'x' } }],
    ['an empty model', { model: '', input: { prompt: 'x' } }],
    ['a missing input', { model: 'qwen-plus' }],
    ['empty messages', { model: 'qwen-plus', input: { messages: [] } }],
    [
      'a message with an unknown role',
      { model: 'qwen-plus', input: { messages: [{ role: 'robot', content: 'x' }] } },
    ],
    ['a message without content', { model: 'qwen-plus', input: { messages: [{ role: 'user' }] } }],
    ['a bad result_format', { ...generationBody(), parameters: { result_format: 'xml' } }],
    [
      'a non-boolean incremental_output',
      { ...generationBody(), parameters: { incremental_output: 'yes' } },
    ],
    ['an array body', [1, 2]],
  ])('answers 400 InvalidParameter for %s', async (_name, body) => {
    const emulator = await start();
    const res = await postJson(emulator, PATHS.generation, body);
    expect(res.status).toBe(400);
    const json = (await res.json()) as Record<string, string>;
    expect(json.code).toBe('InvalidParameter');
    expect(json.request_id).toBe(res.headers.get('x-request-id'));
  });
});

describe('native SSE streaming', () => {
  it('streams cumulative text in several result frames, finish_reason "null" until "stop"', async () => {
    const emulator = await start();
    const res = await postJson(emulator, PATHS.generation, generationBody('stream please'), sse);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const frames = parseNativeSse(await res.text());
    expect(frames.length).toBeGreaterThanOrEqual(4);
    frames.forEach((f, i) => {
      expect(f.id).toBe(String(i + 1));
      expect(f.event).toBe('result');
      expect(f.status).toBe(200);
      expect((f.data as TextData).request_id).toBe(res.headers.get('x-request-id'));
    });
    const reasons = frames.map((f) => (f.data as TextData).output.finish_reason);
    expect(reasons.slice(0, -1).every((r) => r === 'null')).toBe(true);
    expect(reasons.at(-1)).toBe('stop');
    const parts = texts(frames);
    const full = 'Hello from the DashScope emulator (qwen-plus). You said: "stream please".';
    expect(parts.at(-1)).toBe(full);
    // Cumulative: each frame extends the previous one.
    for (let i = 1; i < parts.length; i++)
      expect(parts[i]?.startsWith(parts[i - 1] as string)).toBe(true);
    const usage = (frames.at(-1)!.data as TextData).usage;
    expect(usage.output_tokens).toBe(10);
  });

  it('streams only the new text with incremental_output, and the deltas add up', async () => {
    const emulator = await start();
    const res = await postJson(
      emulator,
      PATHS.generation,
      generationBody('stream please', { incremental_output: true }),
      sse,
    );
    const frames = parseNativeSse(await res.text());
    expect(frames.length).toBeGreaterThanOrEqual(4);
    const parts = texts(frames);
    expect(parts.every((p) => p.length > 0)).toBe(true);
    expect(parts.join('')).toBe(
      'Hello from the DashScope emulator (qwen-plus). You said: "stream please".',
    );
    expect((frames.at(-1)!.data as TextData).output.finish_reason).toBe('stop');
  });

  it('streams choices frames with result_format message', async () => {
    const emulator = await start();
    const res = await postJson(
      emulator,
      PATHS.generation,
      generationBody('Hi', { result_format: 'message', incremental_output: true }),
      sse,
    );
    const frames = parseNativeSse(await res.text());
    const contents = frames.map(
      (f) =>
        (f.data as { output: { choices: Array<{ message: { content: string } }> } }).output
          .choices[0]?.message.content,
    );
    expect(contents.join('')).toBe(
      'Hello from the DashScope emulator (qwen-plus). You said: "Hi".',
    );
  });

  it('streams when asked with Accept: text/event-stream', async () => {
    const emulator = await start();
    const res = await postJson(emulator, PATHS.generation, generationBody(), {
      ...bearer(),
      accept: 'text/event-stream',
    });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(parseNativeSse(await res.text()).length).toBeGreaterThanOrEqual(4);
  });

  it('splits a short custom reply into at least 4 pieces', async () => {
    const emulator = await start({ reply: () => 'Okay' });
    const res = await postJson(
      emulator,
      PATHS.generation,
      generationBody('x', { incremental_output: true }),
      sse,
    );
    const parts = texts(parseNativeSse(await res.text()));
    expect(parts).toEqual(['O', 'k', 'a', 'y']);
  });

  it('reports a request error in SSE mode as an event:error frame', async () => {
    const emulator = await start();
    const res = await postJson(emulator, PATHS.generation, { model: 'qwen-plus', input: {} }, sse);
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const frames = parseNativeSse(await res.text());
    expect(frames).toHaveLength(1);
    expect(frames[0]).toMatchObject({
      event: 'error',
      status: 400,
      data: { code: 'InvalidParameter' },
    });
  });

  it('really streams: the first frame arrives while the rest is still pending', async () => {
    const emulator = await start({ chunkDelayMs: 60_000 });
    const res = await postJson(emulator, PATHS.generation, generationBody('slow'), sse);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const first = await reader.read();
    const text = new TextDecoder().decode(first.value);
    expect(parseNativeSse(text)).toHaveLength(1);
    await reader.cancel();
  });
});
