import {
  AIMessage,
  type AIMessageChunk,
  HumanMessage,
  ToolMessage,
} from '@langchain/core/messages';
import { tool } from '@langchain/core/tools';
import { ChatOpenAI } from '@langchain/openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { CLIENT_KEY, type Stack, startStack } from './harness.js';

let stack: Stack;
let model: ChatOpenAI;
beforeAll(async () => {
  stack = await startStack();
  model = new ChatOpenAI({
    model: 'qwen-plus',
    apiKey: CLIENT_KEY,
    configuration: { baseURL: stack.compatibleBase },
    maxRetries: 0,
  });
});
afterAll(() => stack.close());

const weather = tool(async ({ city }) => `Sunny in ${city}`, {
  name: 'get_weather',
  description: 'Current weather of a city',
  schema: z.object({ city: z.string(), days: z.number().int().min(1).max(7) }),
});

describe('LangChain (@langchain/openai) through the proxy', () => {
  it('bindTools gets tool_calls with parsed args, and a ToolMessage gets an answer', async () => {
    const withTools = model.bindTools([weather]);
    const question = new HumanMessage('Call get_weather for Hangzhou');
    const first = await withTools.invoke([question]);
    expect(first.tool_calls).toHaveLength(1);
    expect(first.tool_calls?.[0]).toMatchObject({
      name: 'get_weather',
      args: { city: 'example', days: 1 },
    });
    const call = first.tool_calls?.[0];
    const result = await weather.invoke(call as Parameters<typeof weather.invoke>[0]);
    expect(result).toBeInstanceOf(ToolMessage);
    const second = await withTools.invoke([question, first, result as ToolMessage]);
    expect(second.tool_calls ?? []).toEqual([]);
    expect(second.content).toContain('Sunny in example');
  });

  it('bindTools with tool_choice forces the named tool, also streamed', async () => {
    const forced = model.bindTools([weather], { tool_choice: 'get_weather' });
    let merged: AIMessageChunk | undefined;
    for await (const chunk of await forced.stream('hello'))
      merged = merged ? merged.concat(chunk) : chunk;
    expect(merged?.tool_calls?.[0]).toMatchObject({
      name: 'get_weather',
      args: { city: 'example', days: 1 },
    });
  });

  it('withStructuredOutput returns an object that satisfies the zod schema (function calling and json_schema)', async () => {
    const schema = z.object({ answer: z.string(), confidence: z.number().min(0).max(1) });
    for (const method of ['functionCalling', 'jsonSchema'] as const) {
      const structured = model.withStructuredOutput(schema, { name: 'reply', method });
      expect(await structured.invoke('How sure are you?')).toEqual({
        answer: 'example',
        confidence: 0,
      });
    }
  });

  it('stream yields the answer in several chunks', async () => {
    const pieces: string[] = [];
    for await (const chunk of await model.stream([new HumanMessage('Hi')]))
      pieces.push(String(chunk.content));
    expect(pieces.filter((p) => p !== '').length).toBeGreaterThan(2);
    expect(pieces.join('')).toBe('Hello from the DashScope emulator (qwen-plus). You said: "Hi".');
  });

  it('rejects an AI message with tool_calls that no ToolMessage answers', async () => {
    const dangling = new AIMessage({
      content: '',
      tool_calls: [{ id: 'call_1', name: 'get_weather', args: { city: 'x', days: 1 } }],
    });
    await expect(
      model.invoke([new HumanMessage('x'), dangling, new HumanMessage('and?')]),
    ).rejects.toThrow(/must be followed by tool messages/);
  });
});
