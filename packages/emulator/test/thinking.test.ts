import { describe, expect, it } from 'vitest';
import {
  bearer,
  chatBody,
  PATHS,
  parseCompatibleSse,
  parseNativeSse,
  postJson,
  start,
} from './helpers.js';

type Chunk = {
  choices: Array<{ delta: { content?: string | null; reasoning_content?: string } }>;
  usage?: { completion_tokens_details?: { reasoning_tokens: number } } | null;
};

describe('thinking models', () => {
  it('streams reasoning_content before content with enable_thinking (compatible)', async () => {
    const emulator = await start();
    const res = await postJson(
      emulator,
      PATHS.chat,
      chatBody('2+2?', {
        stream: true,
        enable_thinking: true,
        stream_options: { include_usage: true },
      }),
    );
    const chunks = parseCompatibleSse(await res.text()).slice(0, -1) as Chunk[];
    const kinds = chunks.flatMap((c) => {
      const d = c.choices[0]?.delta;
      if (d?.reasoning_content) return ['reasoning'];
      if (d?.content) return ['content'];
      return [];
    });
    expect(kinds[0]).toBe('reasoning');
    expect(kinds.lastIndexOf('reasoning')).toBeLessThan(kinds.indexOf('content'));
    const reasoning = chunks.map((c) => c.choices[0]?.delta.reasoning_content ?? '').join('');
    expect(reasoning).toContain('2+2?');
    expect(chunks.at(-1)?.usage?.completion_tokens_details?.reasoning_tokens).toBeGreaterThan(0);
  });

  it('does not think without enable_thinking on a model where it is optional', async () => {
    const emulator = await start();
    const res = await postJson(emulator, PATHS.chat, chatBody('x', { stream: true }));
    expect(await res.text()).not.toContain('reasoning_content');
  });

  it('cuts the reasoning at thinking_budget tokens', async () => {
    const emulator = await start();
    const res = await postJson(
      emulator,
      PATHS.chat,
      chatBody('x', { stream: true, enable_thinking: true, thinking_budget: 3 }),
    );
    const chunks = parseCompatibleSse(await res.text()).slice(0, -1) as Chunk[];
    const reasoning = chunks.map((c) => c.choices[0]?.delta.reasoning_content ?? '').join('');
    expect(reasoning.trim().split(/\s+/)).toHaveLength(3);
  });

  it('refuses a thinking_budget beyond the model maximum', async () => {
    const emulator = await start();
    const res = await postJson(
      emulator,
      PATHS.chat,
      chatBody('x', { stream: true, enable_thinking: true, thinking_budget: 1_000_000 }),
    );
    expect(res.status).toBe(400);
  });

  it('streams reasoning_content natively in message format (qwq-plus thinks always)', async () => {
    const emulator = await start();
    const res = await postJson(
      emulator,
      PATHS.generation,
      {
        model: 'qwq-plus',
        input: { messages: [{ role: 'user', content: 'why?' }] },
        parameters: { incremental_output: true },
      },
      { ...bearer(), 'x-dashscope-sse': 'enable' },
    );
    expect(res.status).toBe(200);
    const frames = parseNativeSse(await res.text()).map(
      (f) =>
        f.data as {
          output: { choices: Array<{ message: { content: string; reasoning_content?: string } }> };
          usage: { output_tokens_details?: { reasoning_tokens: number } };
        },
    );
    const first = frames[0]?.output.choices[0]?.message;
    expect(first?.reasoning_content).toBeTruthy();
    expect(first?.content).toBe('');
    expect(frames.at(-1)?.output.choices[0]?.message.content).not.toBe('');
    expect(frames.at(-1)?.usage.output_tokens_details?.reasoning_tokens).toBeGreaterThan(0);
  });

  it('ignores enable_thinking on a model that cannot think (qwen-max), as documented', async () => {
    const emulator = await start();
    const res = await postJson(
      emulator,
      PATHS.chat,
      chatBody('x', { model: 'qwen-max', enable_thinking: true }),
    );
    expect(res.status).toBe(200);
  });
});
