import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_KEY, type Stack, startStack } from './harness.js';

let stack: Stack;
let client: OpenAI;
beforeAll(async () => {
  stack = await startStack();
  client = new OpenAI({ apiKey: CLIENT_KEY, baseURL: stack.compatibleBase, maxRetries: 0 });
});
afterAll(() => stack.close());

const weatherTool: OpenAI.Chat.Completions.ChatCompletionTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather of a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['c', 'f'] } },
      required: ['city', 'unit'],
    },
  },
};

describe('openai SDK through the proxy', () => {
  it('gets a tool call with tool_choice required, then an answer that uses the tool result', async () => {
    const messages: OpenAI.Chat.Completions.ChatCompletionMessageParam[] = [
      { role: 'user', content: 'What is the weather in Hangzhou?' },
    ];
    const first = await client.chat.completions.create({
      model: 'qwen-plus',
      messages,
      tools: [weatherTool],
      tool_choice: 'required',
    });
    const choice = first.choices[0];
    expect(choice?.finish_reason).toBe('tool_calls');
    const call = choice?.message.tool_calls?.[0];
    if (call?.type !== 'function') throw new Error('expected a function call');
    expect(call.function.name).toBe('get_weather');
    expect(JSON.parse(call.function.arguments)).toEqual({ city: 'example', unit: 'c' });

    messages.push(choice?.message as OpenAI.Chat.Completions.ChatCompletionMessageParam, {
      role: 'tool',
      tool_call_id: call.id,
      content: '{"temperature":24}',
    });
    const second = await client.chat.completions.create({
      model: 'qwen-plus',
      messages,
      tools: [weatherTool],
    });
    expect(second.choices[0]?.finish_reason).toBe('stop');
    expect(second.choices[0]?.message.content).toContain('{"temperature":24}');
  });

  it('streams a tool call the SDK reassembles (ChatCompletionStream)', async () => {
    const stream = client.chat.completions.stream({
      model: 'qwen-plus',
      messages: [{ role: 'user', content: 'call get_weather' }],
      tools: [weatherTool],
    });
    const deltas: string[] = [];
    stream.on('tool_calls.function.arguments.delta', (e) => deltas.push(e.arguments_delta));
    const final = await stream.finalChatCompletion();
    expect(deltas.length).toBeGreaterThan(1);
    const call = final.choices[0]?.message.tool_calls?.[0];
    expect(final.choices[0]?.finish_reason).toBe('tool_calls');
    expect(call?.type === 'function' && JSON.parse(call.function.arguments)).toEqual({
      city: 'example',
      unit: 'c',
    });
  });

  it('parses a json_schema response_format (chat.completions.parse)', async () => {
    const completion = await client.chat.completions.parse({
      model: 'qwen-plus',
      messages: [{ role: 'user', content: 'A city, please' }],
      response_format: {
        type: 'json_schema',
        json_schema: {
          name: 'city',
          strict: true,
          schema: {
            type: 'object',
            properties: {
              name: { type: 'string' },
              population: { type: 'integer', minimum: 1000 },
            },
            required: ['name', 'population'],
            additionalProperties: false,
          },
        },
      },
    });
    expect(completion.choices[0]?.message.parsed).toEqual({ name: 'example', population: 1000 });
  });

  it('gets a JSON object for json_object when the prompt says JSON, and a 400 when it does not', async () => {
    const ok = await client.chat.completions.create({
      model: 'qwen-plus',
      messages: [{ role: 'user', content: 'Reply in JSON' }],
      response_format: { type: 'json_object' },
    });
    expect(JSON.parse(ok.choices[0]?.message.content ?? '')).toHaveProperty('answer');
    const refused = await client.chat.completions
      .create({
        model: 'qwen-plus',
        messages: [{ role: 'user', content: 'Reply' }],
        response_format: { type: 'json_object' },
      })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(OpenAI.BadRequestError);
    expect((refused as InstanceType<typeof OpenAI.BadRequestError>).code).toBe(
      'invalid_parameter_error',
    );
  });

  it("raises a 502 InvalidApiKey at once, without retries, when the server's key is refused", async () => {
    // A client with the SDK's default retries: the proxy says the answer is not retryable.
    const retrying = new OpenAI({ apiKey: CLIENT_KEY, baseURL: stack.compatibleBase });
    stack.emulator.clearRequests();
    stack.emulator.fault('chat', { type: 'invalid-api-key' }, 10);
    const error = await retrying.chat.completions
      .create({ model: 'qwen-plus', messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    stack.emulator.clearFaults();
    expect(error).toBeInstanceOf(OpenAI.InternalServerError);
    expect(error).not.toBeInstanceOf(OpenAI.AuthenticationError);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(502);
    expect((error as InstanceType<typeof OpenAI.APIError>).code).toBe('invalid_api_key');
    // One client call, one replay with a fresh key: two chat requests upstream, not six.
    expect(stack.emulator.requests.filter((r) => r.route === 'chat')).toHaveLength(2);
  });

  it('raises NotFoundError model_not_found for an unknown or miscased model', async () => {
    for (const model of ['no-such-model', 'Qwen-Plus']) {
      const error = await client.chat.completions
        .create({ model, messages: [{ role: 'user', content: 'x' }] })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(OpenAI.NotFoundError);
      expect((error as InstanceType<typeof OpenAI.NotFoundError>).code).toBe('model_not_found');
      expect((error as Error).message).toContain(`The model \`${model}\` does not exist`);
    }
  });

  it('raises BadRequestError for temperature 3 and for a tool message without tool_calls', async () => {
    const hot = await client.chat.completions
      .create({ model: 'qwen-plus', messages: [{ role: 'user', content: 'x' }], temperature: 3 })
      .catch((e: unknown) => e);
    expect(hot).toBeInstanceOf(OpenAI.BadRequestError);
    expect((hot as Error).message).toContain('Temperature should be in [0.0, 2.0)');
    const orphan = await client.chat.completions
      .create({
        model: 'qwen-plus',
        messages: [
          { role: 'user', content: 'x' },
          { role: 'tool', tool_call_id: 'call_x', content: '1' },
        ],
      })
      .catch((e: unknown) => e);
    expect(orphan).toBeInstanceOf(OpenAI.BadRequestError);
    expect((orphan as Error).message).toContain(
      'must be a response to a preceeding message with "tool_calls"',
    );
  });

  it('streams reasoning before content with enable_thinking', async () => {
    const stream = await client.chat.completions.create({
      model: 'qwen-plus',
      messages: [{ role: 'user', content: 'think' }],
      stream: true,
      // Model Studio's extension to the OpenAI body (the SDKs pass it as extra_body).
      ...({ enable_thinking: true } as object),
    });
    const order: string[] = [];
    for await (const chunk of stream) {
      const delta = chunk.choices[0]?.delta as {
        content?: string | null;
        reasoning_content?: string;
      };
      if (delta?.reasoning_content) order.push('reasoning');
      else if (delta?.content) order.push('content');
    }
    expect(order[0]).toBe('reasoning');
    expect(order.at(-1)).toBe('content');
  });
});
