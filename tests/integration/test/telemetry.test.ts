/**
 * The diagnostics channels of `@dashscope-token/fetch` on real Bun and real Deno: where the
 * runtime has `diagnostics_channel` (through `process.getBuiltinModule`), a chat through the
 * Fetch handler publishes its request, its mint and its usage, with no secret in any message.
 */
import { type Emulator, startEmulator } from '@dashscope-token/emulator';
import { afterEach, describe, expect, it } from 'vitest';
import { RUNTIMES, type RuntimeServer, startRuntimeServer } from './runtimes.js';

const KEY = 'sk-telemetry-runtime-key-0001';

interface Seen {
  name: string;
  message: Record<string, unknown> & { request?: Record<string, unknown> };
}

describe.each(RUNTIMES)('%s', (runtime) => {
  let server: RuntimeServer | undefined;
  let emulator: Emulator | undefined;
  afterEach(async () => {
    await server?.close();
    await emulator?.close();
    server = undefined;
    emulator = undefined;
  });

  it('a chat through the Fetch handler publishes its request, mint and usage, without a secret', async () => {
    emulator = await startEmulator({ apiKeys: [KEY] });
    server = await startRuntimeServer(runtime, 'telemetry-fetch.mjs', {
      env: { TELEMETRY_KEY: KEY, TELEMETRY_BASE_URL: emulator.url },
    });
    const chat = await fetch(`${server.base}/dashscope/compatible-mode/v1/chat/completions?x=1`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'qwen-plus', messages: [{ role: 'user', content: 'Hi' }] }),
    });
    expect(chat.status).toBe(200);
    const answer = (await chat.json()) as { usage: { prompt_tokens: number } };
    const seen = (await (await fetch(`${server.base}/app/seen`)).json()) as Seen[];
    const names = seen.map((s) => s.name);
    expect(names).toEqual(
      expect.arrayContaining([
        'dashscope-token:request:start',
        'dashscope-token:token:mint',
        'dashscope-token:usage',
        'dashscope-token:request:end',
      ]),
    );
    const start = seen.find((s) => s.name === 'dashscope-token:request:start')!.message;
    expect(start.request).toMatchObject({
      method: 'POST',
      route: 'compatible',
      path: '/dashscope/compatible-mode/v1/chat/completions',
    });
    const end = seen.find((s) => s.name === 'dashscope-token:request:end')!.message;
    expect(end).toMatchObject({
      status: 200,
      clientGone: false,
      requestId: chat.headers.get('x-request-id'),
    });
    const mint = seen.find((s) => s.name === 'dashscope-token:token:mint')!.message;
    expect(mint).toMatchObject({ outcome: 'minted', expireInSeconds: 1800 });
    const usage = seen.find((s) => s.name === 'dashscope-token:usage')!.message as {
      usage: { inputTokens: number; model: string };
    };
    expect(usage.usage).toMatchObject({
      inputTokens: answer.usage.prompt_tokens,
      model: 'qwen-plus',
    });
    const text = JSON.stringify(seen);
    expect(text).not.toContain(KEY);
    expect(text).not.toContain('x=1');
    expect(text).not.toMatch(/st-[A-Za-z0-9]/);
  });
});
