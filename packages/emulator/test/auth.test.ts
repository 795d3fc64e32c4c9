import { describe, expect, it } from 'vitest';
import {
  bearer,
  chatBody,
  generationBody,
  mint,
  PATHS,
  parseNativeSse,
  postJson,
  start,
} from './helpers.js';

describe('inference authentication', () => {
  it('accepts a permanent key and a live temporary key', async () => {
    const emulator = await start();
    const { token } = await mint(emulator);
    expect((await postJson(emulator, PATHS.generation, generationBody(), bearer())).status).toBe(
      200,
    );
    expect(
      (await postJson(emulator, PATHS.generation, generationBody(), bearer(token))).status,
    ).toBe(200);
    expect((await postJson(emulator, PATHS.chat, chatBody(), bearer(token))).status).toBe(200);
  });

  it('answers native 401 InvalidApiKey without a key or with an unknown st- key', async () => {
    const emulator = await start();
    for (const headers of [{}, bearer('st-0123456789abcdef0123456789abcdef01234567')]) {
      const res = await postJson(emulator, PATHS.generation, generationBody(), headers);
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({
        code: 'InvalidApiKey',
        message: 'Invalid API-key provided.',
        request_id: res.headers.get('x-request-id'),
      });
    }
  });

  it('answers compatible-mode 401 in the OpenAI error shape', async () => {
    const emulator = await start();
    const res = await postJson(emulator, PATHS.chat, chatBody(), bearer('st-unknown'));
    expect(res.status).toBe(401);
    const body = (await res.json()) as { error: Record<string, unknown>; request_id: string };
    expect(body.error).toMatchObject({ code: 'invalid_api_key', type: 'invalid_request_error' });
    expect(typeof body.error.message).toBe('string');
    expect(body.request_id).toBe(res.headers.get('x-request-id'));
  });

  it('rejects a temporary key once it expired on the emulator clock', async () => {
    const emulator = await start();
    const { token, expires_at } = await mint(emulator, 60);
    expect((await postJson(emulator, PATHS.chat, chatBody(), bearer(token))).status).toBe(200);
    // Jump the emulator's clock just past expiry instead of sleeping.
    emulator.setClockOffset(expires_at - Math.floor(Date.now() / 1000) + 1);
    expect(emulator.now()).toBeGreaterThan(expires_at);
    const res = await postJson(emulator, PATHS.chat, chatBody(), bearer(token));
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('invalid_api_key');
    const native = await postJson(emulator, PATHS.generation, generationBody(), bearer(token));
    expect(native.status).toBe(401);
  });

  it('keeps a temporary key valid until its expires_at second', async () => {
    const emulator = await start();
    const { token, expires_at } = await mint(emulator, 120);
    emulator.setClockOffset(expires_at - 5 - Date.now() / 1000);
    expect((await postJson(emulator, PATHS.chat, chatBody(), bearer(token))).status).toBe(200);
  });

  it('expires a 1 s token for real', async () => {
    const emulator = await start();
    const { token, expires_at } = await mint(emulator, 1);
    while (emulator.now() < expires_at) await new Promise((r) => setTimeout(r, 50));
    expect((await postJson(emulator, PATHS.chat, chatBody(), bearer(token))).status).toBe(401);
  });

  it('keeps temporary keys valid after the minting key is revoked', async () => {
    const emulator = await start();
    const { token } = await mint(emulator);
    emulator.revokeApiKey(emulator.apiKeys[0] as string);
    expect((await postJson(emulator, PATHS.chat, chatBody(), bearer(token))).status).toBe(200);
    expect((await postJson(emulator, PATHS.chat, chatBody(), bearer())).status).toBe(401);
  });
});

describe('CORS', () => {
  it('answers a preflight with the methods and headers a browser needs', async () => {
    const emulator = await start();
    const res = await fetch(emulator.url + PATHS.generation, {
      method: 'OPTIONS',
      headers: {
        origin: 'http://localhost:5173',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type, x-dashscope-sse',
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('http://localhost:5173');
    expect(res.headers.get('access-control-allow-methods')).toMatch(/POST/);
    const allowed = (res.headers.get('access-control-allow-headers') ?? '').toLowerCase();
    for (const h of ['authorization', 'content-type', 'x-dashscope-sse'])
      expect(allowed).toContain(h);
    expect(res.headers.get('x-request-id')).toBeTruthy();
  });

  it('adds Access-Control-Allow-Origin to real answers, errors included', async () => {
    const emulator = await start();
    const origin = { origin: 'http://app.example' };
    const { token } = await mint(emulator);
    const ok = await postJson(emulator, PATHS.chat, chatBody(), { ...bearer(token), ...origin });
    expect(ok.headers.get('access-control-allow-origin')).toBe('http://app.example');
    expect(ok.headers.get('access-control-expose-headers')).toMatch(/x-request-id/i);
    const denied = await postJson(emulator, PATHS.chat, chatBody(), origin);
    expect(denied.status).toBe(401);
    expect(denied.headers.get('access-control-allow-origin')).toBe('http://app.example');
  });

  it('honours an origin allow-list', async () => {
    const emulator = await start({ cors: ['http://good.example'] });
    const preflight = (origin: string) =>
      fetch(emulator.url + PATHS.chat, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST' },
      });
    expect(
      (await preflight('http://good.example')).headers.get('access-control-allow-origin'),
    ).toBe('http://good.example');
    const bad = await preflight('http://evil.example');
    expect(bad.headers.get('access-control-allow-origin')).toBeNull();
    expect(bad.headers.get('access-control-allow-headers')).toBeNull();
  });

  it('sends no CORS headers when cors is false', async () => {
    const emulator = await start({ cors: false });
    const res = await postJson(emulator, PATHS.chat, chatBody(), {
      ...bearer(),
      origin: 'http://a.example',
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('in-flight expiry', () => {
  it('lets a stream finish after its temporary key expired, by default', async () => {
    const emulator = await start({ chunkDelayMs: 20 });
    const { token } = await mint(emulator, 60);
    const res = await postJson(
      emulator,
      PATHS.chat,
      chatBody('x', { stream: true }),
      bearer(token),
    );
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    emulator.setClockOffset(120);
    let text = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    expect(text).toContain('data: [DONE]');
  });

  it('fails a stream whose temporary key expires mid-stream with failStreamsOnExpiry', async () => {
    const emulator = await start({ chunkDelayMs: 500, failStreamsOnExpiry: true });
    const { token } = await mint(emulator, 60);
    const res = await postJson(
      emulator,
      PATHS.generation,
      generationBody('x', { incremental_output: true }),
      { ...bearer(token), 'x-dashscope-sse': 'enable' },
    );
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let text = decoder.decode((await reader.read()).value);
    emulator.setClockOffset(120);
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value);
    }
    const frames = parseNativeSse(text);
    expect(frames.map((f) => f.event)).toEqual(['result', 'error']);
    expect(frames[1]).toMatchObject({ status: 401, data: { code: 'InvalidApiKey' } });
  });
});
