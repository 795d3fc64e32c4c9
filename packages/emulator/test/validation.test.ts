import { describe, expect, it } from 'vitest';
import { ASYNC_REFUSED } from '../src/async-calls.js';
import {
  bearer,
  chatBody,
  generationBody,
  PATHS,
  parseCompatibleSse,
  parseNativeSse,
  postJson,
  start,
} from './helpers.js';

const ALGO = '<400> InternalError.Algo.InvalidParameter:';
type CompatError = { error: { message: string; type: string; code: string } };
type NativeError = { code: string; message: string };

const toolCallMessages = [
  { role: 'user', content: 'weather?' },
  {
    role: 'assistant',
    content: '',
    tool_calls: [
      { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{}' } },
    ],
  },
];

/** Requests Model Studio refuses with 400, and its message for each. */
const REFUSALS: Array<[string, Record<string, unknown>, string]> = [
  ['temperature 3', { temperature: 3 }, `${ALGO} Temperature should be in [0.0, 2.0)`],
  [
    'temperature 2 (the bound is open)',
    { temperature: 2 },
    `${ALGO} Temperature should be in [0.0, 2.0)`,
  ],
  ['temperature -0.1', { temperature: -0.1 }, `${ALGO} Temperature should be in [0.0, 2.0)`],
  ['top_p 0', { top_p: 0 }, `${ALGO} Range of top_p should be (0.0, 1.0]`],
  ['top_p 1.5', { top_p: 1.5 }, `${ALGO} Range of top_p should be (0.0, 1.0]`],
  ['max_tokens 0', { max_tokens: 0 }, `${ALGO} Range of max_tokens should be [1, 16384]`],
  ['max_tokens -1', { max_tokens: -1 }, `${ALGO} Range of max_tokens should be [1, 16384]`],
  [
    'max_tokens above the model limit',
    { max_tokens: 16385 },
    `${ALGO} Range of max_tokens should be [1, 16384]`,
  ],
  ['n 10', { n: 10 }, `${ALGO} Range of n should be [1, 4]`],
  [
    'presence_penalty 3',
    { presence_penalty: 3 },
    `${ALGO} Range of presence_penalty should be [-2.0, 2.0]`,
  ],
  [
    'a tool message without preceding tool_calls',
    {
      messages: [
        { role: 'user', content: 'x' },
        { role: 'tool', tool_call_id: 'c', content: '1' },
      ],
    },
    `${ALGO} messages with role "tool" must be a response to a preceeding message with "tool_calls".`,
  ],
  [
    'tool_calls without tool answers',
    { messages: [...toolCallMessages, { role: 'user', content: 'and?' }] },
    `${ALGO} An assistant message with "tool_calls" must be followed by tool messages responding to each "tool_call_id". The following tool_call_ids did not have response messages: message[2].role`,
  ],
  [
    'json_object without the word JSON in the messages',
    { response_format: { type: 'json_object' } },
    `${ALGO} 'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.`,
  ],
  [
    'non-streaming thinking (enable_thinking: true)',
    { enable_thinking: true },
    'parameter.enable_thinking must be set to false for non-streaming calls',
  ],
  [
    'non-streaming open-source Qwen3 (thinking by default)',
    { model: 'qwen3-32b' },
    'parameter.enable_thinking must be set to false for non-streaming calls',
  ],
  [
    'non-streaming thinking-only model',
    { model: 'qwq-plus' },
    'This model only support stream mode, please enable the stream parameter to access the model.',
  ],
];

describe('parameter validation', () => {
  it.each(REFUSALS)(
    'compatible mode refuses %s with 400 invalid_parameter_error',
    async (_n, extra, message) => {
      const emulator = await start();
      const res = await postJson(emulator, PATHS.chat, { ...chatBody('hello'), ...extra });
      expect(res.status).toBe(400);
      expect(((await res.json()) as CompatError).error).toMatchObject({
        message,
        type: 'invalid_request_error',
        code: 'invalid_parameter_error',
      });
    },
  );

  it.each(REFUSALS)(
    'native generation refuses %s with 400 InvalidParameter',
    async (_n, extra, message) => {
      const emulator = await start();
      const { model, messages, ...parameters } = extra as { model?: string; messages?: unknown };
      const body = generationBody('hello', parameters);
      const res = await postJson(emulator, PATHS.generation, {
        ...body,
        ...(model ? { model } : {}),
        ...(messages ? { input: { messages } } : {}),
      });
      expect(res.status).toBe(400);
      expect((await res.json()) as NativeError).toMatchObject({
        code: 'InvalidParameter',
        message,
      });
    },
  );

  it('reports a refusal in native SSE mode as an event:error frame', async () => {
    const emulator = await start();
    const res = await postJson(
      emulator,
      PATHS.generation,
      generationBody('x', { temperature: 3 }),
      {
        ...bearer(),
        'x-dashscope-sse': 'enable',
      },
    );
    expect(res.status).toBe(400);
    const [frame] = parseNativeSse(await res.text());
    expect(frame).toMatchObject({ event: 'error', status: 400 });
    expect((frame?.data as NativeError | undefined)?.message).toBe(
      `${ALGO} Temperature should be in [0.0, 2.0)`,
    );
  });

  it('accepts the bounds: temperature 0 and 1.99, top_p 1, max_tokens at the limit, n 4', async () => {
    const emulator = await start();
    for (const extra of [
      { temperature: 0 },
      { temperature: 1.99 },
      { top_p: 1 },
      { max_tokens: 16384 },
      { n: 4 },
    ]) {
      const res = await postJson(emulator, PATHS.chat, chatBody('x', extra));
      expect(res.status, JSON.stringify(extra)).toBe(200);
    }
  });

  it('answers n candidates on a model that supports n (qwen-plus)', async () => {
    const emulator = await start();
    const res = await postJson(emulator, PATHS.chat, chatBody('x', { n: 3 }));
    const body = (await res.json()) as { choices: Array<{ index: number }> };
    expect(body.choices.map((c) => c.index)).toEqual([0, 1, 2]);
  });

  it('streams n candidates under their own choice indexes', async () => {
    const emulator = await start();
    const res = await postJson(emulator, PATHS.chat, chatBody('x', { n: 2, stream: true }));
    const chunks = parseCompatibleSse(await res.text()).slice(0, -1) as Array<{
      choices: Array<{ index: number; delta: { content?: string }; finish_reason: string | null }>;
    }>;
    for (const index of [0, 1]) {
      const mine = chunks.flatMap((c) => c.choices).filter((c) => c.index === index);
      expect(mine.map((c) => c.delta.content ?? '').join('')).toContain('You said: "x"');
      expect(mine.at(-1)?.finish_reason).toBe('stop');
    }
  });

  it('cuts the answer at max_tokens with finish_reason length', async () => {
    const emulator = await start();
    const res = await postJson(emulator, PATHS.chat, chatBody('x', { max_tokens: 3 }));
    const body = (await res.json()) as {
      choices: Array<{ message: { content: string }; finish_reason: string }>;
      usage: { completion_tokens: number };
    };
    expect(body.choices[0]?.finish_reason).toBe('length');
    expect(body.choices[0]?.message.content).toBe('Hello from the');
    expect(body.usage.completion_tokens).toBe(3);
  });

  it.each([
    ['text generation', PATHS.generation, generationBody()],
    [
      'multimodal generation',
      PATHS.multimodal,
      { model: 'qwen-vl-max', input: { messages: [{ role: 'user', content: [{ text: 'x' }] }] } },
    ],
    [
      'native embeddings',
      PATHS.nativeEmbeddings,
      { model: 'text-embedding-v4', input: { texts: ['x'] } },
    ],
  ])('refuses X-DashScope-Async: enable on %s with 403 AccessDenied', async (_n, path, body) => {
    const emulator = await start();
    const res = await postJson(emulator, path, body, {
      ...bearer(),
      'X-DashScope-Async': 'enable',
    });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ code: 'AccessDenied', message: ASYNC_REFUSED });
  });
});
