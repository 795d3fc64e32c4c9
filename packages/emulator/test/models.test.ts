import { describe, expect, it } from 'vitest';
import { chatBody, generationBody, PATHS, postJson, start } from './helpers.js';

type CompatError = { error: { message: string; type: string; code: string; param: null } };
type NativeError = { code: string; message: string; request_id: string };

describe('model catalogue', () => {
  it.each([
    ['an unknown model', 'no-such-model'],
    ['a miscased model', 'Qwen-Plus'],
    ['an embedding model on chat', 'text-embedding-v3'],
    ['a speech model on chat', 'cosyvoice-v2'],
  ])('compatible chat answers 404 model_not_found for %s', async (_name, model) => {
    const emulator = await start();
    const res = await postJson(emulator, PATHS.chat, chatBody('x', { model }));
    expect(res.status).toBe(404);
    expect(((await res.json()) as CompatError).error).toEqual({
      message: `The model \`${model}\` does not exist or you do not have access to it.`,
      type: 'invalid_request_error',
      param: null,
      code: 'model_not_found',
    });
  });

  it.each([
    ['an unknown model', PATHS.generation, 'no-such-model'],
    ['a miscased model', PATHS.generation, 'Qwen-Plus'],
    ['a vision model on text generation', PATHS.generation, 'qwen-vl-max'],
    ['a text model on multimodal generation', PATHS.multimodal, 'qwen-plus'],
  ])(
    'native generation answers 400 InvalidParameter "Model not exist." for %s',
    async (_name, path, model) => {
      const emulator = await start();
      const res = await postJson(emulator, path, { ...generationBody('x'), model });
      expect(res.status).toBe(400);
      const body = (await res.json()) as NativeError;
      expect(body).toMatchObject({ code: 'InvalidParameter', message: 'Model not exist.' });
    },
  );

  it('refuses a chat model on both embedding endpoints, in each dialect', async () => {
    const emulator = await start();
    const native = await postJson(emulator, PATHS.nativeEmbeddings, {
      model: 'qwen-plus',
      input: { texts: ['x'] },
    });
    expect(native.status).toBe(400);
    expect(((await native.json()) as NativeError).message).toBe('Model not exist.');
    const compat = await postJson(emulator, PATHS.compatibleEmbeddings, {
      model: 'qwen-plus',
      input: 'x',
    });
    expect(compat.status).toBe(404);
    expect(((await compat.json()) as CompatError).error.code).toBe('model_not_found');
  });

  it('answers qwen3-max with message even when result_format is text (API reference)', async () => {
    const emulator = await start();
    const res = await postJson(emulator, PATHS.generation, {
      ...generationBody('Hi', { result_format: 'text' }),
      model: 'qwen3-max',
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      output: { text?: string; choices?: Array<{ message: { role: string; content: string } }> };
    };
    expect(body.output.text).toBeUndefined();
    expect(body.output.choices?.[0]?.message.role).toBe('assistant');
    expect(body.output.choices?.[0]?.message.content).toContain('qwen3-max');
  });

  it('lists the chat, multimodal and embedding models on /compatible-mode/v1/models', async () => {
    const emulator = await start();
    const res = await fetch(emulator.url + PATHS.models, {
      headers: { authorization: `Bearer ${emulator.apiKeys[0]}` },
    });
    const ids = ((await res.json()) as { data: Array<{ id: string }> }).data.map((m) => m.id);
    expect(ids).toEqual(
      expect.arrayContaining(['qwen-plus', 'qwen3-max', 'qwen-vl-max', 'text-embedding-v4']),
    );
    expect(ids).not.toContain('cosyvoice-v2');
  });
});
