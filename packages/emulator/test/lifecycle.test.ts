import { describe, expect, it } from 'vitest';
import { bearer, chatBody, generationBody, PATHS, postJson, start } from './helpers.js';

const serverHandles = () =>
  process.getActiveResourcesInfo().filter((r) => r === 'TCPServerWrap').length;

describe('lifecycle', () => {
  it('listens on a random port of 127.0.0.1 by default', async () => {
    const emulator = await start();
    expect(emulator.url).toBe(`http://127.0.0.1:${emulator.port}`);
    expect(emulator.port).toBeGreaterThan(0);
  });

  it('close() is idempotent and refuses connections afterwards', async () => {
    const emulator = await start();
    const url = emulator.url;
    await Promise.all([emulator.close(), emulator.close()]);
    await emulator.close();
    await expect(
      fetch(url + PATHS.tokens, { method: 'POST', headers: bearer() }),
    ).rejects.toThrow();
  });

  it('close() ends open streams and hanging requests promptly', async () => {
    const before = serverHandles();
    const emulator = await start({ chunkDelayMs: 60_000, latencyMs: 0 });
    expect(serverHandles()).toBe(before + 1);
    const stream = await postJson(emulator, PATHS.generation, generationBody(), {
      ...bearer(),
      'x-dashscope-sse': 'enable',
    });
    const reader = (stream.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    emulator.fault('chat', { type: 'hang' });
    const hanging = postJson(emulator, PATHS.chat, chatBody());
    await emulator.waitForRequest((r) => r.route === 'chat');
    emulator.setLatency(60_000);
    const delayed = fetch(emulator.url + PATHS.models, { headers: bearer() }).then(
      () => 'answered',
      () => 'failed',
    );
    await emulator.waitForRequest((r) => r.route === 'models');
    await emulator.close();
    await expect(hanging).rejects.toThrow();
    await expect(reader.read()).rejects.toThrow();
    expect(await delayed).toBe('failed');
    expect(serverHandles()).toBe(before);
    // Cut by the emulator, not by their clients: closedAt without clientClosedEarly.
    expect(emulator.requests.filter((r) => r.closedAt !== undefined).map((r) => r.route)).toEqual([
      'generation',
      'chat',
      'models',
    ]);
    expect(emulator.requests.some((r) => r.clientClosedEarly)).toBe(false);
  });

  it('tracks open connections', async () => {
    const emulator = await start({ chunkDelayMs: 60_000 });
    const res = await postJson(emulator, PATHS.chat, chatBody('x', { stream: true }));
    await (res.body as ReadableStream<Uint8Array>).getReader().read();
    expect(emulator.stats().openConnections).toBeGreaterThanOrEqual(1);
  });

  it('validates its options', async () => {
    await expect(start({ port: -1 })).rejects.toThrow(RangeError);
    await expect(start({ chunkDelayMs: Number.NaN })).rejects.toThrow(RangeError);
    await expect(start({ apiKeys: ['st-abc'] })).rejects.toThrow(TypeError);
    // @ts-expect-error: wrong type on purpose
    await expect(start({ cors: 'yes' })).rejects.toThrow(TypeError);
  });
});
