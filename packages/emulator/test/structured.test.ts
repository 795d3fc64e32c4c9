import { describe, expect, it } from 'vitest';
import { valueFor } from '../src/chat/schema-value.js';
import { chatBody, generationBody, PATHS, postJson, start } from './helpers.js';

const person = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    age: { type: 'integer', minimum: 18 },
    tags: { type: 'array', items: { type: 'string' }, minItems: 2 },
    address: { $ref: '#/$defs/address' },
    nickname: { anyOf: [{ type: 'null' }, { type: 'string' }] },
  },
  required: ['name', 'age', 'tags', 'address'],
  $defs: { address: { type: 'object', properties: { zip: { type: 'string', maxLength: 5 } } } },
};

describe('structured output', () => {
  it('answers json_schema with JSON that validates against the schema', async () => {
    const emulator = await start();
    const res = await postJson(
      emulator,
      PATHS.chat,
      chatBody('Describe someone', {
        response_format: { type: 'json_schema', json_schema: { name: 'person', schema: person } },
      }),
    );
    const body = (await res.json()) as { choices: Array<{ message: { content: string } }> };
    expect(JSON.parse(body.choices[0]?.message.content ?? '')).toEqual({
      name: 'example',
      age: 18,
      tags: ['example', 'example'],
      address: { zip: 'examp' },
      nickname: 'example',
    });
  });

  it('answers json_object with a JSON object when the messages mention JSON', async () => {
    const emulator = await start();
    const res = await postJson(
      emulator,
      PATHS.chat,
      chatBody('Answer in JSON please', { response_format: { type: 'json_object' } }),
    );
    expect(res.status).toBe(200);
    const body = (await res.json()) as { choices: Array<{ message: { content: string } }> };
    expect(JSON.parse(body.choices[0]?.message.content ?? '')).toMatchObject({
      answer: expect.stringContaining('Answer in JSON please'),
    });
  });

  it('answers json_schema natively too', async () => {
    const emulator = await start();
    const res = await postJson(emulator, PATHS.generation, {
      ...generationBody('x', {
        result_format: 'message',
        response_format: { type: 'json_schema', json_schema: { name: 'p', schema: person } },
      }),
    });
    const body = (await res.json()) as {
      output: { choices: Array<{ message: { content: string } }> };
    };
    expect(JSON.parse(body.output.choices[0]?.message.content ?? '')).toMatchObject({ age: 18 });
  });

  it('generates values for enum, const, formats, bounds and allOf', () => {
    expect(
      valueFor({
        type: 'object',
        properties: {
          e: { enum: ['b', 'a'] },
          c: { const: 7 },
          d: { type: 'string', format: 'date' },
          n: { type: 'number', exclusiveMinimum: 0, maximum: 0.9 },
          m: { type: 'integer', minimum: 3, multipleOf: 5 },
          all: {
            allOf: [
              { properties: { x: { type: 'boolean' } } },
              { properties: { y: { type: 'null' } } },
            ],
          },
        },
      }),
    ).toEqual({ e: 'b', c: 7, d: '2025-01-01', n: 0.5, m: 5, all: { x: true, y: null } });
  });
});
