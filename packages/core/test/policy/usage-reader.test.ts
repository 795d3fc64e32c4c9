import { describe, expect, it } from 'vitest';
import {
  MAX_JSON_USAGE_BYTES,
  MAX_SSE_LINE_BYTES,
  usageCounts,
  usageReader,
} from '../../src/policy/usage-reader.js';

const encoder = new TextEncoder();

/** Reads `text` as an answer of `type`, split into chunks at `cuts` (byte offsets). */
function read(type: string, text: string, cuts: number[] = []) {
  const bytes = encoder.encode(text);
  const reader = usageReader(type)!;
  let at = 0;
  for (const cut of [...cuts, bytes.length]) {
    reader.push(bytes.subarray(at, cut));
    at = cut;
  }
  return reader.finish();
}

/** Reads `text` split at every single byte offset (one cut), and checks every result is `expected`. */
function everySplit(type: string, text: string) {
  const length = encoder.encode(text).length;
  const first = read(type, text);
  for (let cut = 0; cut <= length; cut++) expect(read(type, text, [cut])).toEqual(first);
  // And one byte at a time.
  expect(
    read(
      type,
      text,
      Array.from({ length }, (_, i) => i),
    ),
  ).toEqual(first);
  return first;
}

const compatibleJson = JSON.stringify({
  id: 'chatcmpl-1',
  object: 'chat.completion',
  model: 'qwen-plus',
  choices: [{ index: 0, message: { role: 'assistant', content: 'Grüße 你好' } }],
  usage: {
    prompt_tokens: 12,
    completion_tokens: 30,
    total_tokens: 42,
    prompt_tokens_details: { cached_tokens: 8 },
    completion_tokens_details: { reasoning_tokens: 20 },
  },
});

const nativeJson = JSON.stringify({
  output: { text: 'hi', finish_reason: 'stop' },
  usage: {
    input_tokens: 5,
    output_tokens: 7,
    total_tokens: 12,
    output_tokens_details: { reasoning_tokens: 3 },
  },
  request_id: 'req-native-1',
});

describe('usage of JSON answers', () => {
  it('reads OpenAI-compatible usage, cached and reasoning tokens, model and id, however the answer is split', () => {
    expect(everySplit('application/json; charset=utf-8', compatibleJson)).toEqual({
      usage: {
        inputTokens: 12,
        outputTokens: 30,
        totalTokens: 42,
        cachedTokens: 8,
        reasoningTokens: 20,
      },
      model: 'qwen-plus',
      requestId: 'chatcmpl-1',
    });
  });

  it('reads native usage and request_id, however the answer is split', () => {
    expect(everySplit('application/json', nativeJson)).toEqual({
      usage: { inputTokens: 5, outputTokens: 7, totalTokens: 12, reasoningTokens: 3 },
      model: undefined,
      requestId: 'req-native-1',
    });
  });

  it('reads embeddings of both dialects (total only, or prompt and total)', () => {
    const native = read(
      'application/json',
      '{"output":{"embeddings":[]},"usage":{"total_tokens":9}}',
    );
    expect(native.usage).toEqual({
      inputTokens: undefined,
      outputTokens: undefined,
      totalTokens: 9,
    });
    const compatible = read(
      'application/json',
      '{"object":"list","data":[],"model":"text-embedding-v3","usage":{"prompt_tokens":4,"total_tokens":4}}',
    );
    expect(compatible.usage).toEqual({ inputTokens: 4, outputTokens: undefined, totalTokens: 4 });
    expect(compatible.model).toBe('text-embedding-v3');
  });

  it('reads image, audio and character units', () => {
    expect(usageCounts({ image_count: 2 })).toEqual({
      inputTokens: undefined,
      outputTokens: undefined,
      totalTokens: undefined,
      imageCount: 2,
    });
    expect(usageCounts({ duration: 3 })?.audioSeconds).toBe(3);
    expect(usageCounts({ characters: 140 })?.characters).toBe(140);
  });

  it('adds input and output when the total is missing', () => {
    expect(usageCounts({ input_tokens: 2, output_tokens: 3 })?.totalTokens).toBe(5);
  });

  it('finds no usage in malformed, truncated or usage-less answers', () => {
    expect(read('application/json', compatibleJson.slice(0, -5)).usage).toBeUndefined();
    expect(read('application/json', 'not json').usage).toBeUndefined();
    expect(read('application/json', '{"usage":null}').usage).toBeUndefined();
    expect(read('application/json', '{"usage":{"prompt_tokens":"12"}}').usage).toBeUndefined();
    expect(read('application/json', '{"usage":{"input_tokens":-1}}').usage).toBeUndefined();
    expect(read('application/json', '[1,2]').usage).toBeUndefined();
    expect(read('application/json', '').usage).toBeUndefined();
  });

  it('lets go of a JSON answer beyond the bound (no usage) but reads one just within it', () => {
    const usage = ',"usage":{"total_tokens":1}}';
    const within = `{"pad":"${'x'.repeat(MAX_JSON_USAGE_BYTES - 10 - usage.length)}"${usage}`;
    expect(encoder.encode(within).length).toBeLessThanOrEqual(MAX_JSON_USAGE_BYTES);
    expect(read('application/json', within, [1000]).usage?.totalTokens).toBe(1);
    const beyond = `{"pad":"${'x'.repeat(MAX_JSON_USAGE_BYTES)}"${usage}`;
    expect(read('application/json', beyond, [1000]).usage).toBeUndefined();
  });

  it('reads nothing of answers that are neither JSON nor SSE', () => {
    expect(usageReader('audio/mpeg')).toBeUndefined();
    expect(usageReader(undefined)).toBeUndefined();
    expect(usageReader('application/problem+json')).toBeDefined();
  });
});

const compatibleSse = [
  'data: {"id":"chatcmpl-2","model":"qwen-plus","choices":[{"index":0,"delta":{"content":"你好"}}],"usage":null}',
  'data: {"id":"chatcmpl-2","model":"qwen-plus","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}',
  'data: {"id":"chatcmpl-2","model":"qwen-plus","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}',
  'data: [DONE]',
]
  .map((line) => `${line}\n\n`)
  .join('');

const nativeSse = [1, 2, 3]
  .map(
    (n) =>
      `id:${n}\nevent:result\n:HTTP_STATUS/200\ndata:{"output":{"text":"t${n}"},"usage":{"input_tokens":10,"output_tokens":${n},"total_tokens":${10 + n}},"request_id":"req-sse"}\r\n\r\n`,
  )
  .join('');

describe('usage of SSE answers', () => {
  it('reads the OpenAI-compatible usage chunk, however the stream is split', () => {
    expect(everySplit('text/event-stream', compatibleSse)).toEqual({
      usage: { inputTokens: 3, outputTokens: 4, totalTokens: 7 },
      model: 'qwen-plus',
      requestId: 'chatcmpl-2',
    });
  });

  it("reads native SSE's last event's usage (CRLF lines too), however the stream is split", () => {
    expect(everySplit('text/event-stream', nativeSse)).toEqual({
      usage: { inputTokens: 10, outputTokens: 3, totalTokens: 13 },
      model: undefined,
      requestId: 'req-sse',
    });
  });

  it('keeps the running usage of a native stream cut before its last event', () => {
    const cut = nativeSse.slice(0, nativeSse.indexOf('id:3') + 20);
    expect(read('text/event-stream', cut).usage?.outputTokens).toBe(2);
  });

  it('finds no usage in a stream without a usage chunk, or with malformed data lines', () => {
    const withoutUsage = compatibleSse.split('\n\n').slice(0, 2).join('\n\n');
    expect(read('text/event-stream', withoutUsage).usage).toBeUndefined();
    expect(
      read('text/event-stream', 'data: {"usage": {"total_tokens": 1\n\n').usage,
    ).toBeUndefined();
    expect(read('text/event-stream', 'event: usage\ndata: "usage"\n\n').usage).toBeUndefined();
    expect(read('text/event-stream', ': "usage":{"total_tokens":1}\n\n').usage).toBeUndefined();
  });

  it('skips a line longer than its bound and still reads the events after it', () => {
    const long = `data: {"pad":"${'x'.repeat(MAX_SSE_LINE_BYTES)}","usage":{"total_tokens":99}}\n\n`;
    const after = 'data: {"choices":[],"usage":{"total_tokens":5}}\n\n';
    const chunks = [4096, 8192, MAX_SSE_LINE_BYTES + 10];
    expect(read('text/event-stream', long, chunks).usage).toBeUndefined();
    expect(read('text/event-stream', long + after, chunks).usage?.totalTokens).toBe(5);
  });
});
