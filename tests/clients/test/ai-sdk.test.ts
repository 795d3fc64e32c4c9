import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { generateObject, generateText, stepCountIs, streamText, tool } from 'ai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { CLIENT_KEY, type Stack, startStack } from './harness.js';

let stack: Stack;
let dashscope: ReturnType<typeof createOpenAICompatible>;
beforeAll(async () => {
  stack = await startStack();
  dashscope = createOpenAICompatible({
    name: 'dashscope',
    baseURL: stack.compatibleBase,
    apiKey: CLIENT_KEY,
    // Model Studio supports response_format json_schema (Structured output guide).
    supportsStructuredOutputs: true,
    includeUsage: true,
  });
});
afterAll(() => stack.close());

const seen: unknown[] = [];
const weather = tool({
  description: 'Current weather of a city',
  inputSchema: z.object({ city: z.string(), unit: z.enum(['celsius', 'fahrenheit']) }),
  execute: async (input) => {
    seen.push(input);
    return { temperature: 21, unit: input.unit };
  },
});

describe('Vercel AI SDK (@ai-sdk/openai-compatible) through the proxy', () => {
  it('generateText runs a tool (toolChoice required) and answers with its result', async () => {
    seen.length = 0;
    const result = await generateText({
      model: dashscope('qwen-plus'),
      prompt: 'What is the weather in Hangzhou?',
      tools: { weather },
      toolChoice: 'required',
      stopWhen: stepCountIs(3),
      maxRetries: 0,
    });
    expect(seen).toEqual([{ city: 'example', unit: 'celsius' }]);
    expect(result.steps[0]?.finishReason).toBe('tool-calls');
    expect(result.finishReason).toBe('stop');
    expect(result.text).toContain('"temperature":21');
  });

  it('generateText calls the tool the prompt names (toolChoice auto)', async () => {
    seen.length = 0;
    const result = await generateText({
      model: dashscope('qwen-plus'),
      prompt: 'Use weather for Paris',
      tools: { weather },
      stopWhen: stepCountIs(3),
      maxRetries: 0,
    });
    expect(seen).toHaveLength(1);
    expect(result.steps.map((s) => s.finishReason)).toEqual(['tool-calls', 'stop']);
  });

  it('streamText streams the text and the usage', async () => {
    const result = streamText({ model: dashscope('qwen-plus'), prompt: 'Hi there', maxRetries: 0 });
    const parts: string[] = [];
    for await (const piece of result.textStream) parts.push(piece);
    expect(parts.length).toBeGreaterThan(2);
    expect(parts.join('')).toBe(
      'Hello from the DashScope emulator (qwen-plus). You said: "Hi there".',
    );
    expect(await result.finishReason).toBe('stop');
    expect((await result.usage).outputTokens).toBeGreaterThan(0);
  });

  it('streamText streams a tool call and its input deltas', async () => {
    const result = streamText({
      model: dashscope('qwen-plus'),
      prompt: 'weather please',
      tools: {
        weather: tool({ description: weather.description, inputSchema: weather.inputSchema }),
      },
      toolChoice: { type: 'tool', toolName: 'weather' },
      maxRetries: 0,
    });
    const types: string[] = [];
    for await (const part of result.fullStream) types.push(part.type);
    expect(types).toContain('tool-input-delta');
    expect(types).toContain('tool-call');
    expect(await result.finishReason).toBe('tool-calls');
    expect((await result.toolCalls)[0]?.input).toEqual({ city: 'example', unit: 'celsius' });
  });

  it('generateObject returns an object that satisfies the zod schema', async () => {
    const { object } = await generateObject({
      model: dashscope('qwen-plus'),
      schema: z.object({
        title: z.string(),
        year: z.number().int().min(1900),
        tags: z.array(z.string()).min(1),
        rating: z.enum(['good', 'bad']),
      }),
      prompt: 'A film',
      maxRetries: 0,
    });
    expect(object).toEqual({ title: 'example', year: 1900, tags: ['example'], rating: 'good' });
  });

  it('surfaces a model Model Studio does not have as an APICallError with status 404', async () => {
    const error = await generateText({
      model: dashscope('Qwen-Plus'),
      prompt: 'x',
      maxRetries: 0,
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ statusCode: 404 });
    expect((error as Error).message).toContain('does not exist');
  });
});
