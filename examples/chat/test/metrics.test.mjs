// GET /metrics of the chat demo: after one chat through the proxy and one token for the
// page, the Prometheus text shows the requests, the mints and the tokens used by model.
import { DEFAULT_EMULATOR_API_KEY } from '@dashscope-token/emulator';
import { afterEach, expect, test } from 'vitest';
import { startDemo } from './demo-process.mjs';

const cleanups = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** The value of the series `name{…labels…}` whose labels include every one of `labels`. */
function series(text, name, labels = {}) {
  const values = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    values.push(Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return values;
}

test('after a chat, /metrics shows the requests, the mints and the tokens used by model', async () => {
  const demo = await startDemo();
  cleanups.push(() => demo.stop());
  const { url } = demo;

  const chat = await fetch(`${url}/dashscope/compatible-mode/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'qwen-plus',
      messages: [{ role: 'user', content: 'Hello there' }],
      stream: true,
      stream_options: { include_usage: true },
    }),
  });
  expect(chat.status).toBe(200);
  const stream = await chat.text();
  const usage = JSON.parse(
    stream
      .split('\n')
      .filter((l) => l.startsWith('data: {') && l.includes('"usage":{'))
      .at(-1)
      .slice(6),
  ).usage;
  expect((await fetch(`${url}/dashscope/token`, { method: 'POST' })).status).toBe(200);

  const metrics = await fetch(`${url}/metrics`);
  expect(metrics.status).toBe(200);
  expect(metrics.headers.get('content-type')).toContain('text/plain');
  const text = await metrics.text();

  expect(
    series(text, 'dashscope_token_requests_total', {
      dashscope_token_route: 'compatible',
      http_response_status_code: '200',
    }),
  ).toEqual([1]);
  expect(
    series(text, 'dashscope_token_requests_total', { dashscope_token_route: 'token' }),
  ).toEqual([1]);
  // The proxy's key and the page's key: one mint each.
  expect(
    series(text, 'dashscope_token_mints_total', { dashscope_token_mint_outcome: 'minted' }),
  ).toEqual([2]);
  expect(
    series(text, 'gen_ai_client_token_usage_sum', {
      gen_ai_token_type: 'input',
      gen_ai_response_model: 'qwen-plus',
    }),
  ).toEqual([usage.prompt_tokens]);
  expect(
    series(text, 'gen_ai_client_token_usage_sum', {
      gen_ai_token_type: 'output',
      gen_ai_response_model: 'qwen-plus',
    }),
  ).toEqual([usage.completion_tokens]);
  expect(
    series(text, 'dashscope_token_token_cache_lookups_total', {
      dashscope_token_token_provider: 'tokenRoute',
      dashscope_token_cache_result: 'miss',
    }),
  ).toEqual([1]);
  expect(text).toContain('dashscope_token_request_duration_bucket');
  expect(text).not.toContain(DEFAULT_EMULATOR_API_KEY);
  expect(text).not.toContain('Hello there');
});
