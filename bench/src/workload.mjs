/** The request every contender gets, and the constants shared by the bench processes. */

/** Upstream path of the OpenAI-compatible chat endpoint (what Model Studio serves). */
export const UPSTREAM_PATH = '/compatible-mode/v1/chat/completions';
/** Where the proxies mount Model Studio. */
export const PREFIX = '/dashscope';
/** The path clients of a proxy call. */
export const PROXY_PATH = PREFIX + UPSTREAM_PATH;

/** The permanent key the dashscope-token contenders mint with (the bench upstream accepts any `sk-`). */
export const BENCH_API_KEY = 'sk-bench-0000000000000000000000000000';
/** The fixed temporary key injected by the contenders that do not mint (direct, HPM, Fastify). */
export const FIXED_AUTHORIZATION = 'Bearer st-bench-fixed-0000000000000000';

/** A typical small chat-completions request (~300 bytes). */
export const REQUEST_BODY = JSON.stringify({
  model: 'qwen-plus',
  messages: [
    { role: 'system', content: 'You are a helpful assistant. Answer briefly.' },
    {
      role: 'user',
      content: 'What is the capital of France, and what is it famous for? One sentence, please.',
    },
  ],
  temperature: 0.7,
  max_tokens: 128,
  user: 'bench-user-0001',
});

/** The same request asking for a server-sent-event stream. */
export const STREAM_REQUEST_BODY = JSON.stringify({
  ...JSON.parse(REQUEST_BODY),
  stream: true,
});

/** The usage the bench upstream reports at the end of a stream that asked for it (`include_usage`). */
export const STREAM_USAGE = { prompt_tokens: 38, completion_tokens: 20, total_tokens: 58 };

/** Request headers of the load generator (clients of a proxy send no key). */
export const CLIENT_HEADERS = {
  'content-type': 'application/json',
  accept: 'application/json',
  'user-agent': 'bench-client/1.0',
};
