import { once } from 'node:events';
import { createServer } from 'node:net';
import { DEFAULT_EMULATOR_API_KEY, startEmulator } from '@dashscope-token/emulator';
import { afterEach, expect, test } from 'vitest';
import { spawnDemo, startDemo } from './demo-process.mjs';

const cleanups = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function demo(env) {
  const started = await startDemo(env);
  cleanups.push(() => started.stop());
  return started;
}

test('without DASHSCOPE_API_KEY it starts the emulator, says so, and serves the page and its config', async () => {
  const { url, output } = await demo();
  expect(output.stdout).toContain(
    'DASHSCOPE_API_KEY is not set: using the local Model Studio emulator',
  );
  expect(output.stdout).toMatch(/Chat demo running at http:\/\/127\.0\.0\.1:\d+/);

  const page = await fetch(url);
  expect(page.status).toBe(200);
  expect(await page.text()).toContain('<ol id="transcript"');

  const config = await fetch(`${url}/config.json`);
  expect(config.headers.get('cache-control')).toBe('no-store');
  const body = await config.json();
  expect(body).toEqual({
    mode: 'emulator',
    directBaseUrl: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/),
    model: 'qwen-plus',
    refreshBeforeSeconds: 10,
    paiEas: {
      region: 'cn-shanghai',
      service: 'emulator_llm',
      instance: 'emulator-llm-7b56869574-44nq9',
      emulated: true,
      operator: false,
    },
  });
  expect(output.stdout).toContain('PAI-EAS: the emulated EAS at http://127.0.0.1:');

  // The PAI-EAS routes: a Workbench URL only for the demo's operator cookie.
  const workbench = (headers = {}) =>
    fetch(`${url}/dashscope/pai-eas/workbench`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ service: 'emulator_llm', instance: 'emulator-llm-7b56869574-44nq9' }),
    });
  expect((await workbench()).status).toBe(403);
  const login = await workbench({ cookie: 'demo_operator=yes' });
  expect(login.status).toBe(200);
  expect(login.headers.get('cache-control')).toBe('no-store');
  expect((await login.json()).workbench_url).toContain('/ecs-workbench/disposable/login?token=');
  expect(output.stdout + output.stderr).not.toContain('token=');

  // The token route vends 60 s keys.
  const minted = await (await fetch(`${url}/dashscope/token`, { method: 'POST' })).json();
  expect(minted.token).toMatch(/^st-/);
  expect(minted.expires_at - Date.now() / 1000).toBeGreaterThan(50);
  expect(JSON.stringify(body) + output.stdout + output.stderr).not.toContain(
    DEFAULT_EMULATOR_API_KEY,
  );
});

test('Ctrl-C stops the demo and its emulator cleanly, even in the middle of a streamed answer', async () => {
  const { url, exited, child, output } = await demo();
  const { directBaseUrl } = await (await fetch(`${url}/config.json`)).json();
  // Slow the stream down so that it is still running when Ctrl-C comes.
  await fetch(`${directBaseUrl}/__emulator/chunk-delay`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ms: 2000 }),
  });
  const res = await fetch(`${url}/dashscope/compatible-mode/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'qwen-plus',
      stream: true,
      messages: [{ role: 'user', content: 'hi' }],
    }),
  });
  expect(res.status).toBe(200);
  const reader = res.body.getReader();
  await reader.read(); // the first chunk is here: the stream is open

  const stoppedAt = Date.now();
  child.kill('SIGINT');
  const { code, signal } = await exited;
  expect({ code, signal }).toEqual({ code: 0, signal: null });
  expect(Date.now() - stoppedAt).toBeLessThan(5000); // "a second or two", generously
  expect(output.stdout).toContain('SIGINT: shutting down.');
  expect(output.stdout).toContain('Stopped.');
  expect(output.stderr).toBe('');
  await expect(fetch(`${directBaseUrl}/__emulator/stats`)).rejects.toThrow(); // emulator gone too
  await reader.cancel().catch(() => {});
});

test('a busy port is reported clearly and the demo exits with code 1', async () => {
  const blocker = createServer();
  blocker.listen(0, '127.0.0.1');
  await once(blocker, 'listening');
  cleanups.push(() => new Promise((resolve) => blocker.close(resolve)));
  const { port } = blocker.address();

  const { exited, output } = spawnDemo({ PORT: String(port) });
  const { code } = await exited;
  expect(code).toBe(1);
  expect(output.stderr).toContain(`Port ${port} on 127.0.0.1 is already in use`);
  expect(output.stderr).toContain('PORT=3001 corepack pnpm demo');
});

test('with DASHSCOPE_API_KEY it uses Model Studio at the configured host, and never shows the key', async () => {
  const upstream = await startEmulator({ chunkDelayMs: 1 });
  cleanups.push(() => upstream.close());
  const { url, output } = await demo({
    DASHSCOPE_API_KEY: DEFAULT_EMULATOR_API_KEY,
    DASHSCOPE_BASE_URL: upstream.url,
  });
  expect(output.stdout).toContain(`Using Alibaba Cloud Model Studio at ${upstream.url}`);
  const config = await (await fetch(`${url}/config.json`)).json();
  expect(config).toMatchObject({ mode: 'model-studio', directBaseUrl: upstream.url });

  const res = await fetch(`${url}/dashscope/compatible-mode/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'qwen-plus', messages: [{ role: 'user', content: 'hi' }] }),
  });
  expect(res.status).toBe(200);
  const answer = await res.json();
  expect(answer.choices[0].message.content).toContain('You said: "hi"');
  // Upstream got a temporary key, and the key is in nothing the demo printed or served.
  expect(upstream.requests.at(-1)?.headers.authorization).toMatch(/^Bearer st-/);
  expect(
    JSON.stringify(config) + JSON.stringify(answer) + output.stdout + output.stderr,
  ).not.toContain(DEFAULT_EMULATOR_API_KEY);
});

test('GET /usage adds up the usage of the chats through the proxy, by model, with the mints', async () => {
  const { url } = await demo();
  const empty = await fetch(`${url}/usage`);
  expect(empty.headers.get('cache-control')).toBe('no-store');
  const before = await empty.json();
  expect(before).toEqual({
    since: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    requests: 0,
    mints: 0,
    models: [],
  });
  const chat = async (stream) => {
    const res = await fetch(`${url}/dashscope/compatible-mode/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'qwen-plus',
        stream,
        messages: [{ role: 'user', content: 'hi' }],
      }),
    });
    return stream ? res.text() : res.json();
  };
  const answer = await chat(false);
  // A stream whose client did not ask for usage is metered too (meterStreams), and the page
  // does not see the extra usage chunk.
  const streamed = await chat(true);
  expect(streamed).not.toContain('"usage"');
  // Usage is reported as each answer ends, which may be a moment after the client has it.
  const usage = async () => (await fetch(`${url}/usage`)).json();
  await expect.poll(async () => (await usage()).requests).toBe(2);
  expect(await usage()).toMatchObject({
    since: before.since,
    requests: 2,
    mints: 1,
    models: [
      {
        model: 'qwen-plus',
        requests: 2,
        inputTokens: 2 * answer.usage.prompt_tokens,
        outputTokens: 2 * answer.usage.completion_tokens,
        totalTokens: 2 * answer.usage.total_tokens,
      },
    ],
  });
});
