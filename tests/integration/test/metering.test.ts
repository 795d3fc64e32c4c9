/**
 * Usage metering through every front door of the matrix (`onUsage`, `meterStreams`), against
 * the emulator: what the app is told matches what the answers said, the client receives what it
 * would without metering, and no key reaches an event.
 */
import { randomUUID } from 'node:crypto';
import type { UsageEvent } from '@dashscope-token/core';
import {
  DEFAULT_EMULATOR_ACCESS_KEY,
  DEFAULT_EMULATOR_API_KEY,
  DEFAULT_EMULATOR_EAS_REGION,
  DEFAULT_EMULATOR_EAS_SERVICE,
  type Emulator,
  startEmulator,
} from '@dashscope-token/emulator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunkReader, postJson, recordingFetchVia } from './client.js';
import { type RunningServer, SERVER_KINDS } from './servers.js';

const KEY_A = DEFAULT_EMULATOR_API_KEY;
const CHAT = '/compatible-mode/v1/chat/completions';
const GENERATION = '/api/v1/services/aigc/text-generation/generation';
const EAS_SERVICE = DEFAULT_EMULATOR_EAS_SERVICE;

let emulator: Emulator;

beforeAll(async () => {
  emulator = await startEmulator({ apiKeys: [KEY_A], chunkDelayMs: 5 });
});

afterAll(async () => {
  await emulator?.close();
});

function chatBody(prompt: string, extra: Record<string, unknown> = {}) {
  return { model: 'qwen-plus', messages: [{ role: 'user', content: prompt }], ...extra };
}

function generationBody(prompt: string) {
  return {
    model: 'qwen-plus',
    input: { messages: [{ role: 'user', content: prompt }] },
    parameters: { incremental_output: true },
  };
}

/** What differs between two answers to the same request: ids and timestamps. */
function normalised(stream: string): string {
  return stream.replace(/"id":"[^"]*"/g, '"id":"…"').replace(/"created":\d+/g, '"created":0');
}

describe.each(SERVER_KINDS)('$name', (kind) => {
  let server: RunningServer;
  const url = (path: string) => `${server.base}${path}`;
  const send: typeof fetch = (input, init) => recordingFetchVia(server.fetch)(input, init);

  /** A new client (`x-user`) and its requests. */
  function user() {
    const id = `user-${randomUUID()}`;
    const post = (
      path: string,
      body: unknown,
      headers?: Record<string, string>,
      signal?: AbortSignal,
    ) => postJson(url(path), body, { 'x-user': id, ...headers }, signal, send);
    /** The events reported for this client once `count` of them (matching `done`) arrived. */
    async function events(count = 1, done: (e: UsageEvent) => boolean = () => true) {
      for (let attempt = 0; attempt < 200; attempt++) {
        const mine = (await server.usage()).filter((e) => e.identity === id);
        if (mine.filter(done).length >= count) return mine;
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      throw new Error(`no usage event for ${id}`);
    }
    return { id, post, events };
  }

  beforeAll(async () => {
    server = await kind.start({
      baseUrl: emulator.url,
      keyA: KEY_A,
      paiEas: {
        region: DEFAULT_EMULATOR_EAS_REGION,
        credentials: DEFAULT_EMULATOR_ACCESS_KEY,
        service: EAS_SERVICE,
      },
    });
  });

  afterAll(async () => {
    await server?.close();
  });

  it('reports an OpenAI-compatible JSON answer as the answer counted it, for whom authorize named', async () => {
    const u = user();
    const res = await u.post(`/metered/dashscope${CHAT}`, chatBody(u.id));
    expect(res.status).toBe(200);
    const answer = (await res.json()) as {
      usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
    };
    const [event] = await u.events();
    expect(event).toMatchObject({
      identity: u.id,
      route: 'compatible',
      dialect: 'openai',
      path: CHAT,
      model: 'qwen-plus',
      inputTokens: answer.usage.prompt_tokens,
      outputTokens: answer.usage.completion_tokens,
      totalTokens: answer.usage.total_tokens,
      status: 200,
      complete: true,
    });
    expect(event!.requestId).toBe(res.headers.get('x-request-id'));
    expect(event!.durationMs).toBeGreaterThanOrEqual(0);
    expect(event!.keyHash).toMatch(/^[0-9a-f]{16}$/);
  });

  it('reports a native JSON answer with the model the request named', async () => {
    const u = user();
    const res = await u.post(`/metered/dashscope${GENERATION}`, generationBody(u.id));
    const answer = (await res.json()) as {
      usage: { input_tokens: number; output_tokens: number };
      request_id: string;
    };
    const [event] = await u.events();
    expect(event).toMatchObject({
      route: 'native',
      dialect: 'dashscope',
      model: 'qwen-plus',
      inputTokens: answer.usage.input_tokens,
      outputTokens: answer.usage.output_tokens,
      requestId: answer.request_id,
      complete: true,
    });
  });

  it('reports embeddings of both dialects', async () => {
    const u = user();
    const native = await u.post(
      '/metered/dashscope/api/v1/services/embeddings/text-embedding/text-embedding',
      {
        model: 'text-embedding-v3',
        input: { texts: ['hello world', u.id] },
      },
    );
    const nativeUsage = ((await native.json()) as { usage: { total_tokens: number } }).usage;
    const compatible = await u.post('/metered/dashscope/compatible-mode/v1/embeddings', {
      model: 'text-embedding-v3',
      input: ['hello world', u.id],
    });
    const compatibleUsage = ((await compatible.json()) as { usage: { total_tokens: number } })
      .usage;
    const events = await u.events(2);
    expect(events.map((e) => [e.route, e.model, e.totalTokens])).toEqual(
      expect.arrayContaining([
        ['native', 'text-embedding-v3', nativeUsage.total_tokens],
        ['compatible', 'text-embedding-v3', compatibleUsage.total_tokens],
      ]),
    );
  });

  it('reports the usage chunk of an OpenAI-compatible stream that asked for it', async () => {
    const u = user();
    const res = await u.post(
      `/metered/dashscope${CHAT}`,
      chatBody(u.id, { stream: true, stream_options: { include_usage: true } }),
    );
    const text = await res.text();
    const usageChunk = text
      .split('\n\n')
      .find((frame) => frame.includes('"choices":[]'))!
      .slice('data: '.length);
    const { usage } = JSON.parse(usageChunk) as { usage: { total_tokens: number } };
    const [event] = await u.events();
    expect(event).toMatchObject({
      route: 'compatible',
      totalTokens: usage.total_tokens,
      complete: true,
    });
  });

  it("reports a native stream's last usage", async () => {
    const u = user();
    const res = await u.post(`/metered/dashscope${GENERATION}`, generationBody(u.id), {
      'x-dashscope-sse': 'enable',
    });
    const frames = (await res.text()).split(/\r?\n\r?\n/).filter((f) => f.includes('data:'));
    const last = JSON.parse(frames.at(-1)!.split('data:')[1]!) as {
      usage: { output_tokens: number; total_tokens: number };
    };
    const [event] = await u.events();
    expect(event).toMatchObject({
      route: 'native',
      outputTokens: last.usage.output_tokens,
      totalTokens: last.usage.total_tokens,
      complete: true,
    });
  });

  it('reports nothing for a stream that carried no usage', async () => {
    const u = user();
    const res = await u.post(`/metered/dashscope${CHAT}`, chatBody(u.id, { stream: true }));
    await res.text();
    // A metered request after it, to know the first one had its turn.
    await (await u.post(`/metered/dashscope${CHAT}`, chatBody(u.id))).text();
    const events = await u.events();
    expect(events.map((e) => e.path)).toEqual([CHAT]);
    expect(events[0]!.inputTokens).toBeGreaterThan(0);
  });

  it('meterStreams: the client gets the stream it would without metering, and the usage is reported', async () => {
    const u = user();
    const body = chatBody(`same prompt ${kind.name}`, { stream: true });
    const plain = await (await u.post(`/metered/dashscope${CHAT}`, body)).text();
    const res = await u.post(`/metered-streams/dashscope${CHAT}`, body);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const stripped = await res.text();
    expect(normalised(stripped)).toBe(normalised(plain));
    expect(stripped).not.toContain('usage');
    const [event] = await u.events();
    expect(event).toMatchObject({ route: 'compatible', model: 'qwen-plus', complete: true });
    expect(event!.totalTokens).toBeGreaterThan(0);
    // Upstream was asked for it.
    const upstream = emulator.requests.filter((r) => r.body.includes(`same prompt ${kind.name}`));
    expect(upstream.map((r) => r.body.includes('"include_usage":true'))).toEqual([false, true]);
  });

  it('reports a stream the client cut as incomplete, with the usage seen before the cut', async () => {
    const u = user();
    emulator.setChunkDelay(200);
    const controller = new AbortController();
    try {
      const res = await u.post(
        `/metered/dashscope${GENERATION}`,
        generationBody(`${u.id} ${'long prompt '.repeat(20)}`),
        { 'x-dashscope-sse': 'enable' },
        controller.signal,
      );
      const reader = chunkReader(res);
      let seen = '';
      while (!seen.includes('usage')) seen += (await reader.next()) ?? '';
      controller.abort();
      await reader.cancel();
      const [event] = await u.events();
      expect(event).toMatchObject({ route: 'native', complete: false });
      expect(event!.outputTokens).toBeGreaterThan(0);
    } finally {
      emulator.setChunkDelay(5);
    }
  });

  it('reports PAI-EAS service calls as route pai-eas', async () => {
    const u = user();
    const res = await u.post(
      `/metered-eas/dashscope/pai-eas/services/${EAS_SERVICE}/v1/chat/completions`,
      { ...chatBody(u.id), model: EAS_SERVICE },
    );
    expect(res.status).toBe(200);
    const answer = (await res.json()) as { usage?: { total_tokens: number } };
    const [event] = await u.events();
    expect(event).toMatchObject({ route: 'pai-eas', totalTokens: answer.usage?.total_tokens });
  });

  it('never puts a key in an event', async () => {
    const events = await server.usage();
    expect(events.length).toBeGreaterThan(0);
    const text = JSON.stringify(events);
    expect(text).not.toContain(KEY_A);
    expect(text).not.toContain(KEY_A.slice(3, 15));
    expect(text).not.toMatch(/st-[A-Za-z0-9]/);
  });
});
