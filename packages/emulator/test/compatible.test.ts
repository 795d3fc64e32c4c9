import { describe, expect, it } from 'vitest';
import { bearer, chatBody, mint, PATHS, parseCompatibleSse, postJson, start } from './helpers.js';

interface Chunk {
  id: string;
  object: string;
  created: number;
  model: string;
  choices: Array<{
    index: number;
    delta: { role?: string; content?: string };
    finish_reason: string | null;
  }>;
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | null;
}

describe('OpenAI-compatible chat completions', () => {
  it('answers a chat.completion object', async () => {
    const emulator = await start();
    const res = await postJson(emulator, PATHS.chat, chatBody('What is 2+2?'));
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      object: 'chat.completion',
      model: 'qwen-plus',
      choices: [
        {
          index: 0,
          message: {
            role: 'assistant',
            content: 'Hello from the DashScope emulator (qwen-plus). You said: "What is 2+2?".',
          },
          finish_reason: 'stop',
        },
      ],
      usage: { prompt_tokens: 3, completion_tokens: 11, total_tokens: 14 },
    });
    expect(body.id).toMatch(/^chatcmpl-/);
    expect(Math.abs((body.created as number) - Date.now() / 1000)).toBeLessThan(60);
  });

  it('streams chunks: role first, content pieces, finish_reason stop, then [DONE]', async () => {
    const emulator = await start();
    const { token } = await mint(emulator);
    const res = await postJson(
      emulator,
      PATHS.chat,
      chatBody('Go', { stream: true }),
      bearer(token),
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = parseCompatibleSse(await res.text());
    expect(events.at(-1)).toBe('[DONE]');
    const chunks = events.slice(0, -1) as Chunk[];
    expect(chunks.every((c) => c.object === 'chat.completion.chunk')).toBe(true);
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    expect(chunks[0]?.choices[0]?.delta.role).toBe('assistant');
    const last = chunks.at(-1);
    expect(last?.choices[0]?.finish_reason).toBe('stop');
    expect(chunks.slice(0, -1).every((c) => c.choices[0]?.finish_reason === null)).toBe(true);
    const pieces = chunks.map((c) => c.choices[0]?.delta.content ?? '').filter((p) => p !== '');
    expect(pieces.length).toBeGreaterThanOrEqual(4);
    expect(pieces.join('')).toBe('Hello from the DashScope emulator (qwen-plus). You said: "Go".');
    expect(chunks.some((c) => 'usage' in c)).toBe(false);
  });

  it('adds a final usage chunk with empty choices when include_usage is set', async () => {
    const emulator = await start();
    const res = await postJson(
      emulator,
      PATHS.chat,
      chatBody('Go', { stream: true, stream_options: { include_usage: true } }),
    );
    const events = parseCompatibleSse(await res.text());
    expect(events.at(-1)).toBe('[DONE]');
    const usageChunk = events.at(-2) as Chunk;
    expect(usageChunk.choices).toEqual([]);
    expect(usageChunk.usage).toEqual({ prompt_tokens: 1, completion_tokens: 9, total_tokens: 10 });
    const others = events.slice(0, -2) as Chunk[];
    expect(others.every((c) => c.usage === null)).toBe(true);
  });

  it.each([
    ['a missing model', { messages: [{ role: 'user', content: 'x' }] }],
    ['missing messages', { model: 'qwen-plus' }],
    ['a non-boolean stream', chatBody('x', { stream: 'yes' })],
    ['a non-object stream_options', chatBody('x', { stream: true, stream_options: 1 })],
  ])('answers 400 in the OpenAI shape for %s', async (_name, body) => {
    const emulator = await start();
    const res = await postJson(emulator, PATHS.chat, body);
    expect(res.status).toBe(400);
    const json = (await res.json()) as { error: Record<string, unknown>; request_id: string };
    expect(json.error).toMatchObject({
      type: 'invalid_request_error',
      code: 'invalid_parameter_error',
    });
    expect(typeof json.error.message).toBe('string');
    expect(json.request_id).toBe(res.headers.get('x-request-id'));
  });

  it('lists models on GET /compatible-mode/v1/models', async () => {
    const emulator = await start();
    const res = await fetch(emulator.url + PATHS.models, { headers: bearer() });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      object: string;
      data: Array<{ id: string; object: string }>;
    };
    expect(body.object).toBe('list');
    expect(body.data.map((m) => m.id)).toContain('qwen-plus');
    expect(body.data.every((m) => m.object === 'model')).toBe(true);
    expect((await fetch(emulator.url + PATHS.models)).status).toBe(401);
  });
});
