import { describe, expect, it } from 'vitest';
import { bearer, chatBody, generationBody, PATHS, postJson, start } from './helpers.js';

describe('HTTP strictness', () => {
  it('answers 404 NotFound for unknown paths, in the path dialect', async () => {
    const emulator = await start();
    const native = await fetch(`${emulator.url}/api/v1/services/aigc/nothing`, { method: 'POST' });
    expect(native.status).toBe(404);
    expect(((await native.json()) as { code: string }).code).toBe('NotFound');
    const compat = await fetch(`${emulator.url}/compatible-mode/v1/nothing`);
    expect(compat.status).toBe(404);
    expect(((await compat.json()) as { error: { code: string } }).error.code).toBe('not_found');
    expect((await fetch(`${emulator.url}${PATHS.tokens}/`, { method: 'POST' })).status).toBe(404);
  });

  it('answers 405 with Allow for a wrong method on a known path', async () => {
    const emulator = await start();
    const res = await fetch(emulator.url + PATHS.tokens, { headers: bearer() });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST, OPTIONS');
    expect(((await res.json()) as { code: string }).code).toBe('MethodNotAllowed');
    const chat = await fetch(emulator.url + PATHS.chat, {
      method: 'PUT',
      headers: bearer(),
      body: '{}',
    });
    expect(chat.status).toBe(405);
    expect(((await chat.json()) as { error: { code: string } }).error.code).toBe(
      'method_not_allowed',
    );
  });

  it('answers 400 InvalidParameter for invalid JSON', async () => {
    const emulator = await start();
    const res = await postJson(emulator, PATHS.generation, '{"model": "qwen-plus",');
    expect(res.status).toBe(400);
    expect(((await res.json()) as { code: string }).code).toBe('InvalidParameter');
    const empty = await postJson(emulator, PATHS.chat, '');
    expect(empty.status).toBe(400);
  });

  it('answers 400 for a non-JSON content type', async () => {
    const emulator = await start();
    const res = await fetch(emulator.url + PATHS.generation, {
      method: 'POST',
      headers: { ...bearer(), 'content-type': 'text/plain' },
      body: JSON.stringify(generationBody()),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toMatch(/Content-Type/);
    const ok = await postJson(emulator, PATHS.generation, generationBody(), {
      ...bearer(),
      'content-type': 'application/json; charset=utf-8',
    });
    expect(ok.status).toBe(200);
  });

  it('answers 413 for a body over 10 MiB', async () => {
    const emulator = await start();
    const big = JSON.stringify(chatBody('x'.repeat(10 * 1024 * 1024)));
    const res = await postJson(emulator, PATHS.chat, big);
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
      'request_too_large',
    );
  });

  it('sends a fresh uuid x-request-id on every answer, equal to request_id', async () => {
    const emulator = await start();
    const ids = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const res = await postJson(emulator, PATHS.generation, generationBody());
      const id = res.headers.get('x-request-id') ?? '';
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(((await res.json()) as { request_id: string }).request_id).toBe(id);
      ids.add(id);
    }
    expect(ids.size).toBe(3);
    const notFound = await fetch(`${emulator.url}/x`);
    expect(notFound.headers.get('x-request-id')).toBeTruthy();
    expect(emulator.requests.map((r) => r.id)).toContain(notFound.headers.get('x-request-id'));
  });

  it('adds latency before answers', async () => {
    const emulator = await start({ latencyMs: 150 });
    const t0 = performance.now();
    await postJson(emulator, PATHS.chat, chatBody());
    // A lower bound only: a loaded machine can be slower, never faster.
    expect(performance.now() - t0).toBeGreaterThanOrEqual(140);
    emulator.setLatency(0);
    expect(() => emulator.setLatency(-5)).toThrow(RangeError);
  });
});
