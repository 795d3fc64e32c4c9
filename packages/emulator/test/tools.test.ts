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

const weather = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Weather of a city',
    parameters: {
      type: 'object',
      properties: {
        city: { type: 'string', minLength: 2 },
        unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
        days: { type: 'integer', minimum: 1, maximum: 7 },
      },
      required: ['city', 'unit'],
    },
  },
};
const time = {
  type: 'function',
  function: {
    name: 'get_time',
    parameters: { type: 'object', properties: { zone: { type: 'string', format: 'date-time' } } },
  },
};

type ToolCall = { id: string; type: string; function: { name: string; arguments: string } };
type Completion = {
  choices: Array<{ message: { content: string; tool_calls?: ToolCall[] }; finish_reason: string }>;
};

async function chat(extra: Record<string, unknown>, content = 'What is the weather?') {
  const emulator = await start();
  const res = await postJson(emulator, PATHS.chat, chatBody(content, extra));
  expect(res.status).toBe(200);
  return (await res.json()) as Completion;
}

describe('tool calling (compatible mode)', () => {
  it('calls the function tool_choice names, with arguments that satisfy its schema', async () => {
    const body = await chat({
      tools: [weather, time],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
    });
    const choice = body.choices[0];
    expect(choice?.finish_reason).toBe('tool_calls');
    expect(choice?.message.tool_calls).toHaveLength(1);
    expect(choice?.message.tool_calls?.[0]).toMatchObject({
      type: 'function',
      function: { name: 'get_weather' },
    });
    expect(JSON.parse(choice?.message.tool_calls?.[0]?.function.arguments ?? '')).toEqual({
      city: 'example',
      unit: 'celsius',
      days: 1,
    });
  });

  it("calls the first tool with tool_choice 'required' when no tool is named", async () => {
    const body = await chat({ tools: [time, weather], tool_choice: 'required' });
    expect(body.choices[0]?.message.tool_calls?.map((c) => c.function.name)).toEqual(['get_time']);
  });

  it('calls the tool the last user message names (tool_choice auto)', async () => {
    const body = await chat({ tools: [weather, time] }, 'please use get_time');
    expect(body.choices[0]?.message.tool_calls?.map((c) => c.function.name)).toEqual(['get_time']);
  });

  it('answers text when no tool is named and tool_choice is auto, or none', async () => {
    expect((await chat({ tools: [weather] })).choices[0]?.finish_reason).toBe('stop');
    const none = await chat({ tools: [weather], tool_choice: 'none' }, 'use get_weather');
    expect(none.choices[0]?.message.tool_calls).toBeUndefined();
  });

  it('calls several tools only when parallel_tool_calls is true', async () => {
    const prompt = 'use get_weather and get_time';
    const single = await chat({ tools: [weather, time] }, prompt);
    expect(single.choices[0]?.message.tool_calls).toHaveLength(1);
    const parallel = await chat({ tools: [weather, time], parallel_tool_calls: true }, prompt);
    const calls = parallel.choices[0]?.message.tool_calls ?? [];
    expect(calls.map((c) => c.function.name)).toEqual(['get_weather', 'get_time']);
    expect(new Set(calls.map((c) => c.id)).size).toBe(2);
  });

  it('answers a tool result with text that uses it', async () => {
    const body = await chat({
      tools: [weather],
      messages: [
        { role: 'user', content: 'use get_weather' },
        {
          role: 'assistant',
          content: '',
          tool_calls: [
            { id: 'call_9', type: 'function', function: { name: 'get_weather', arguments: '{}' } },
          ],
        },
        { role: 'tool', tool_call_id: 'call_9', content: '{"temp":21}' },
      ],
    });
    expect(body.choices[0]?.finish_reason).toBe('stop');
    expect(body.choices[0]?.message.content).toBe(
      'The tool results: get_weather returned {"temp":21}.',
    );
  });

  it('streams a tool call: id and name first, then argument deltas, then finish_reason tool_calls', async () => {
    const emulator = await start();
    const res = await postJson(
      emulator,
      PATHS.chat,
      chatBody('use get_weather', { tools: [weather], stream: true }),
    );
    const chunks = parseCompatibleSse(await res.text()).slice(0, -1) as Array<{
      choices: Array<{
        delta: {
          tool_calls?: Array<{
            index: number;
            id?: string;
            function: { name?: string; arguments: string };
          }>;
        };
        finish_reason: string | null;
      }>;
    }>;
    const deltas = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []);
    expect(deltas[0]).toMatchObject({
      index: 0,
      type: 'function',
      function: { name: 'get_weather', arguments: '' },
    });
    expect(deltas[0]?.id).toMatch(/^call_/);
    expect(deltas.length).toBeGreaterThan(2);
    const args = deltas.map((d) => d.function.arguments).join('');
    expect(JSON.parse(args)).toEqual({ city: 'example', unit: 'celsius', days: 1 });
    expect(chunks.at(-1)?.choices[0]?.finish_reason).toBe('tool_calls');
  });
});

describe('tool calling (native)', () => {
  it('answers tool_calls in message format with finish_reason tool_calls', async () => {
    const emulator = await start();
    const res = await postJson(emulator, PATHS.generation, {
      model: 'qwen-plus',
      input: { messages: [{ role: 'user', content: 'use get_weather' }] },
      parameters: { tools: [weather] },
    });
    const body = (await res.json()) as {
      output: { choices: Array<{ finish_reason: string; message: { tool_calls: ToolCall[] } }> };
    };
    const choice = body.output.choices[0];
    expect(choice?.finish_reason).toBe('tool_calls');
    expect(JSON.parse(choice?.message.tool_calls[0]?.function.arguments ?? '')).toMatchObject({
      city: 'example',
    });
  });

  it('streams argument deltas with incremental_output and ends with tool_calls', async () => {
    const emulator = await start();
    const res = await postJson(
      emulator,
      PATHS.generation,
      {
        model: 'qwen-plus',
        input: { messages: [{ role: 'user', content: 'x' }] },
        parameters: { tools: [weather], tool_choice: 'required', incremental_output: true },
      },
      { ...bearer(), 'x-dashscope-sse': 'enable' },
    );
    const frames = parseNativeSse(await res.text()).map(
      (f) =>
        f.data as {
          output: {
            choices: Array<{ finish_reason: string; message: { tool_calls?: ToolCall[] } }>;
          };
        },
    );
    const args = frames
      .flatMap((f) => f.output.choices[0]?.message.tool_calls ?? [])
      .map((c) => c.function.arguments)
      .join('');
    expect(JSON.parse(args)).toMatchObject({ city: 'example', unit: 'celsius' });
    expect(frames.at(-1)?.output.choices[0]?.finish_reason).toBe('tool_calls');
    expect(frames[0]?.output.choices[0]?.finish_reason).toBe('null');
  });
});
