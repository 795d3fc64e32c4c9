/**
 * The bench upstream: a minimal Model Studio on 127.0.0.1, fast enough not to be the bottleneck.
 *
 * - `POST /api/v1/tokens?expire_in_seconds=N` (`Authorization: Bearer sk-…`): mints
 *   `{token: 'st-bench-<n>', expires_at}` (optionally after `tokenDelayMs`), counting mints.
 * - `POST /compatible-mode/v1/chat/completions`: needs `Authorization: Bearer st-…` (401
 *   otherwise, so a contender that does not inject the key shows up as errors). Answers a
 *   precomputed small chat-completions JSON body once the request body is read; with
 *   `"stream": true` in the body, an SSE stream of `sseChunks` events `sseIntervalMs` apart, each
 *   carrying the monotonic time (`process.hrtime`, shared by every process on the machine) at
 *   which it was written, so that the client can measure the delay each chunk took. With
 *   `"include_usage":true` too (what `meterStreams` adds), every event carries `"usage":null`
 *   and a usage-only chunk comes before `[DONE]`, as Model Studio does.
 */
import http from 'node:http';
import { serveParent } from './ipc.mjs';
import { STREAM_USAGE } from './workload.mjs';

const COMPLETION = Buffer.from(
  JSON.stringify({
    id: 'chatcmpl-bench-0001',
    object: 'chat.completion',
    created: 1764000000,
    model: 'qwen-plus',
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          content: 'Paris, famous for the Eiffel Tower and the Louvre.',
        },
        finish_reason: 'stop',
      },
    ],
    usage: { prompt_tokens: 38, completion_tokens: 14, total_tokens: 52 },
  }),
);
const COMPLETION_HEADERS = [
  'content-type',
  'application/json',
  'content-length',
  String(COMPLETION.length),
  'x-request-id',
  'bench-0001',
];
const SSE_HEADERS = ['content-type', 'text/event-stream', 'cache-control', 'no-cache'];
const UNAUTHORIZED = Buffer.from(
  JSON.stringify({ error: { message: 'bad key', type: 'invalid_request_error', code: 'x' } }),
);
const STREAM_MARK = Buffer.from('"stream":true');
const USAGE_MARK = Buffer.from('"include_usage":true');
const USAGE_CHUNK = `data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","choices":[],"usage":${JSON.stringify(STREAM_USAGE)}}\n\n`;
const CHAT_PATH = '/compatible-mode/v1/chat/completions';
const TOKENS_PATH = '/api/v1/tokens';

const config = { tokenDelayMs: 0, sseChunks: 20, sseIntervalMs: 20 };
const stats = { mints: 0, requests: 0, unauthorized: 0, streams: 0, notFound: 0 };

function sseEvent(i, stream, usage) {
  // The write time goes last, taken right before the write.
  return `data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"token ${i} of the answer "}}],${usage ? '"usage":null,' : ''}"i":${i},"s":${stream},"t":${process.hrtime.bigint()}}\n\n`;
}

function streamAnswer(res, usage) {
  const stream = ++stats.streams;
  res.writeHead(200, SSE_HEADERS);
  res.flushHeaders();
  let i = 0;
  const timer = setInterval(() => {
    if (res.destroyed) {
      clearInterval(timer);
      return;
    }
    res.write(sseEvent(i, stream, usage));
    i++;
    if (i >= config.sseChunks) {
      clearInterval(timer);
      res.end(usage ? `${USAGE_CHUNK}data: [DONE]\n\n` : 'data: [DONE]\n\n');
    }
  }, config.sseIntervalMs);
  res.on('close', () => clearInterval(timer));
}

function mint(req, res, url) {
  const auth = req.headers.authorization;
  req.resume();
  if (typeof auth !== 'string' || !auth.startsWith('Bearer sk-')) {
    res.writeHead(401, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ code: 'InvalidApiKey', message: 'Invalid API-key provided.' }));
    return;
  }
  const ttl = Number(new URL(url, 'http://x').searchParams.get('expire_in_seconds') ?? 60);
  const n = ++stats.mints;
  const answer = () => {
    const body = JSON.stringify({
      request_id: `mint-${n}`,
      token: `st-bench-${n}-${Math.random().toString(36).slice(2)}`,
      expires_at: Math.floor(Date.now() / 1000) + ttl,
    });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(body);
  };
  if (config.tokenDelayMs > 0) setTimeout(answer, config.tokenDelayMs);
  else answer();
}

const server = http.createServer((req, res) => {
  const url = req.url;
  if (url === CHAT_PATH) {
    stats.requests++;
    const auth = req.headers.authorization;
    if (typeof auth !== 'string' || !auth.startsWith('Bearer st-')) {
      stats.unauthorized++;
      req.resume();
      res.writeHead(401, ['content-type', 'application/json']);
      res.end(UNAUTHORIZED);
      return;
    }
    let streamed = false;
    let usage = false;
    req.on('data', (chunk) => {
      if (!streamed && chunk.indexOf(STREAM_MARK) >= 0) streamed = true;
      if (!usage && chunk.indexOf(USAGE_MARK) >= 0) usage = true;
    });
    req.on('end', () => {
      if (streamed) streamAnswer(res, usage);
      else {
        res.writeHead(200, COMPLETION_HEADERS);
        res.end(COMPLETION);
      }
    });
    return;
  }
  if (url.startsWith(TOKENS_PATH) && req.method === 'POST') {
    mint(req, res, url);
    return;
  }
  stats.notFound++;
  req.resume();
  res.writeHead(404, ['content-type', 'application/json']);
  res.end('{"code":"NotFound"}');
});
// Idle keep-alive connections of the (paused) contenders stay open for the whole run.
server.keepAliveTimeout = 600_000;

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  serveParent(
    {
      stats: () => ({ ...stats }),
      reset: () => {
        for (const key of Object.keys(stats)) stats[key] = 0;
      },
      configure: (args) => Object.assign(config, args),
    },
    { url: `http://127.0.0.1:${port}` },
  );
});
