import { describe, expect, it } from 'vitest';
import { PATHS, postJson, start } from './helpers.js';

const norm = (v: number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));

interface NativeEmbeddings {
  output: { embeddings: Array<{ text_index: number; embedding: number[] }> };
  usage: { total_tokens: number };
  request_id: string;
}
interface CompatibleEmbeddings {
  object: string;
  data: Array<{ object: string; index: number; embedding: number[] | string }>;
  model: string;
  usage: { prompt_tokens: number; total_tokens: number };
}

describe('embeddings', () => {
  it('answers native embeddings: 1024 normalised dimensions per text', async () => {
    const emulator = await start();
    const res = await postJson(emulator, PATHS.nativeEmbeddings, {
      model: 'text-embedding-v4',
      input: { texts: ['hello world', 'second text here'] },
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as NativeEmbeddings;
    expect(body.output.embeddings.map((e) => e.text_index)).toEqual([0, 1]);
    for (const e of body.output.embeddings) {
      expect(e.embedding).toHaveLength(1024);
      expect(norm(e.embedding)).toBeCloseTo(1, 6);
    }
    expect(body.output.embeddings[0]?.embedding).not.toEqual(body.output.embeddings[1]?.embedding);
    expect(body.usage.total_tokens).toBe(5);
    expect(body.request_id).toBe(res.headers.get('x-request-id'));
  });

  it('honours parameters.dimension and rejects unsupported ones', async () => {
    const emulator = await start();
    const ok = await postJson(emulator, PATHS.nativeEmbeddings, {
      model: 'text-embedding-v3',
      input: { texts: ['a'] },
      parameters: { dimension: 256 },
    });
    expect(((await ok.json()) as NativeEmbeddings).output.embeddings[0]?.embedding).toHaveLength(
      256,
    );
    const bad = await postJson(emulator, PATHS.nativeEmbeddings, {
      model: 'text-embedding-v3',
      input: { texts: ['a'] },
      parameters: { dimension: 100 },
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { code: string }).code).toBe('InvalidParameter');
  });

  it.each([
    ['missing texts', { model: 'text-embedding-v4', input: {} }],
    ['empty texts', { model: 'text-embedding-v4', input: { texts: [] } }],
    ['a non-string text', { model: 'text-embedding-v4', input: { texts: [1] } }],
    ['too many texts', { model: 'text-embedding-v4', input: { texts: Array(11).fill('x') } }],
    ['a missing model', { input: { texts: ['x'] } }],
  ])('answers native 400 for %s', async (_name, body) => {
    const emulator = await start();
    const res = await postJson(emulator, PATHS.nativeEmbeddings, body);
    expect(res.status).toBe(400);
  });

  it('answers the OpenAI list shape and the same vectors as the native dialect', async () => {
    const emulator = await start();
    const compat = await postJson(emulator, PATHS.compatibleEmbeddings, {
      model: 'text-embedding-v4',
      input: ['hello world', 'bye'],
      dimensions: 512,
    });
    expect(compat.status).toBe(200);
    const body = (await compat.json()) as CompatibleEmbeddings;
    expect(body.object).toBe('list');
    expect(body.model).toBe('text-embedding-v4');
    expect(body.data.map((d) => [d.object, d.index])).toEqual([
      ['embedding', 0],
      ['embedding', 1],
    ]);
    expect(body.usage).toEqual({ prompt_tokens: 3, total_tokens: 3 });
    const native = await postJson(emulator, PATHS.nativeEmbeddings, {
      model: 'text-embedding-v4',
      input: { texts: ['hello world'] },
      parameters: { dimension: 512 },
    });
    const n = (await native.json()) as NativeEmbeddings;
    expect(body.data[0]?.embedding).toEqual(n.output.embeddings[0]?.embedding);
  });

  it('accepts a single string input and base64 encoding', async () => {
    const emulator = await start();
    const res = await postJson(emulator, PATHS.compatibleEmbeddings, {
      model: 'text-embedding-v4',
      input: 'just one',
      encoding_format: 'base64',
    });
    const body = (await res.json()) as CompatibleEmbeddings;
    expect(body.data).toHaveLength(1);
    const buf = Buffer.from(body.data[0]?.embedding as string, 'base64');
    expect(buf.length).toBe(1024 * 4);
  });

  it('answers compatible 400 in the OpenAI shape', async () => {
    const emulator = await start();
    const res = await postJson(emulator, PATHS.compatibleEmbeddings, {
      model: 'text-embedding-v4',
      input: [],
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
      'invalid_parameter_error',
    );
  });
});
