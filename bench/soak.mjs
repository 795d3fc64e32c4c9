/**
 * Soak: at least 1,000,000 requests through the Express proxy (`dashscopeToken()`), with the
 * server's RSS recorded along the way. Not part of `pnpm test` (it takes minutes).
 *
 *   node bench/soak.mjs                      # 1,000,000 requests, 64 keep-alive connections
 *   SOAK_REQUESTS=50000 node bench/soak.mjs  # a quick run
 *
 * Three processes: a minimal Model Studio (`upstream`), the Express app (`server`, run with
 * --expose-gc so RSS is sampled after a collection) and this one generating the load with
 * undici. The mix: proxied chat completions (90 %), token-route POSTs (5 %) and short SSE
 * streams (5 %), of which one in five is abandoned by the client after its first chunk. Every
 * `SOAK_SAMPLE_EVERY` requests the server's RSS, heap, open connections and handler stats are
 * printed. The run fails (exit code 1) when any request got an unexpected answer, when the
 * server is left with requests in progress, or when RSS after warm-up grew by more than
 * `SOAK_MAX_RSS_GROWTH` (default 50 %).
 */
import { fork } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';

const role = process.argv[2] ?? 'main';
const API_KEY = 'sk-soak-bench-not-a-real-key-0000';
const CHAT_PATH = '/compatible-mode/v1/chat/completions';

if (role === 'upstream') await upstream();
else if (role === 'server') await server();
else await main();

/** Sends `message` to the parent and waits for the reply to `ask`. */
function request(child, ask) {
  return new Promise((resolve) => {
    const onMessage = (message) => {
      if (message?.type !== ask) return;
      child.off('message', onMessage);
      resolve(message);
    };
    child.on('message', onMessage);
    child.send({ type: ask });
  });
}

async function upstream() {
  let minted = 0;
  const completion = JSON.stringify({
    id: 'chatcmpl-soak',
    object: 'chat.completion',
    model: 'qwen-plus',
    choices: [
      { index: 0, message: { role: 'assistant', content: 'Hello.' }, finish_reason: 'stop' },
    ],
    usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
  });
  const srv = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      if (req.url?.startsWith('/api/v1/tokens')) {
        const ttl = Number(
          new URL(req.url, 'http://x').searchParams.get('expire_in_seconds') ?? 60,
        );
        const body = JSON.stringify({
          token: `st-soak-${++minted}`,
          expires_at: Math.floor(Date.now() / 1000) + ttl,
        });
        res.writeHead(200, {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        });
        res.end(body);
        return;
      }
      if (req.url !== CHAT_PATH || !String(req.headers.authorization).startsWith('Bearer st-')) {
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end('{"error":{"code":"invalid_api_key"}}');
        return;
      }
      if (Buffer.concat(chunks).includes('"stream":true')) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        let i = 0;
        const tick = () => {
          if (res.destroyed) return;
          if (i++ < 3) {
            res.write(`data: {"choices":[{"delta":{"content":"part ${i}"}}]}\n\n`);
            setTimeout(tick, 2);
          } else res.end('data: [DONE]\n\n');
        };
        tick();
        return;
      }
      res.writeHead(200, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(completion),
      });
      res.end(completion);
    });
  });
  srv.keepAliveTimeout = 60_000;
  srv.listen(0, '127.0.0.1', () => process.send({ type: 'listening', port: srv.address().port }));
  process.on('message', (m) => {
    if (m?.type === 'stats') process.send({ type: 'stats', minted });
  });
  process.on('disconnect', () => process.exit(0));
}

async function server() {
  const { default: express } = await import('express');
  const { dashscopeToken } = await import('@dashscope-token/express');
  // The load comes from one client: per-client limits off (they would answer most of it 429).
  const mw = dashscopeToken({ apiKey: API_KEY, baseUrl: process.env.UPSTREAM, limits: false });
  const app = express();
  app.disable('x-powered-by');
  app.use(mw);
  const srv = http.createServer(app);
  srv.keepAliveTimeout = 60_000;
  srv.listen({ port: 0, host: '127.0.0.1', backlog: 1024 }, () =>
    process.send({ type: 'listening', port: srv.address().port }),
  );
  process.on('message', (m) => {
    if (m?.type !== 'mem') return;
    globalThis.gc?.();
    srv.getConnections((_error, connections) => {
      const mem = process.memoryUsage();
      process.send({
        type: 'mem',
        rss: mem.rss,
        heapUsed: mem.heapUsed,
        connections,
        stats: mw.handler.stats(),
      });
    });
  });
  process.on('disconnect', () => process.exit(0));
}

async function main() {
  const { Pool } = await import('undici');
  const total = Number(process.env.SOAK_REQUESTS ?? 1_000_000);
  const concurrency = Number(process.env.SOAK_CONNECTIONS ?? 64);
  const sampleEvery = Number(
    process.env.SOAK_SAMPLE_EVERY ?? Math.max(10_000, Math.floor(total / 20)),
  );
  const maxGrowth = Number(process.env.SOAK_MAX_RSS_GROWTH ?? 0.5);
  const self = fileURLToPath(import.meta.url);

  const start = (role, env = {}, execArgv = []) => {
    const child = fork(self, [role], {
      env: { ...process.env, ...env },
      execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    return new Promise((resolve) => child.once('message', (m) => resolve({ child, port: m.port })));
  };
  const up = await start('upstream');
  const srv = await start('server', { UPSTREAM: `http://127.0.0.1:${up.port}` }, ['--expose-gc']);
  const pool = new Pool(`http://127.0.0.1:${srv.port}`, {
    connections: concurrency,
    keepAliveTimeout: 60_000,
  });

  const chatBody = JSON.stringify({
    model: 'qwen-plus',
    messages: [{ role: 'user', content: 'Hi' }],
  });
  const streamBody = JSON.stringify({
    model: 'qwen-plus',
    stream: true,
    messages: [{ role: 'user', content: 'Hi' }],
  });
  const counts = { chat: 0, token: 0, stream: 0, abandoned: 0, failed: 0 };
  const failures = [];
  const samples = [];
  let sent = 0;
  let done = 0;
  let nextSample = sampleEvery;
  const t0 = performance.now();

  const sample = async () => {
    const mem = await request(srv.child, 'mem');
    const row = {
      requests: done,
      seconds: (performance.now() - t0) / 1000,
      rssMiB: mem.rss / 2 ** 20,
      heapMiB: mem.heapUsed / 2 ** 20,
      connections: mem.connections,
      active: mem.stats.activeRequests,
    };
    samples.push(row);
    console.log(
      `${String(row.requests).padStart(9)} requests  ${row.seconds.toFixed(1).padStart(7)} s  ` +
        `${Math.round(row.requests / row.seconds)
          .toString()
          .padStart(6)} req/s  RSS ${row.rssMiB.toFixed(1)} MiB  ` +
        `heap ${row.heapMiB.toFixed(1)} MiB  connections ${row.connections}  in progress ${row.active}`,
    );
  };

  const one = async (i) => {
    const kind = i % 20 === 0 ? 'token' : i % 20 === 1 ? 'stream' : 'chat';
    try {
      if (kind === 'token') {
        const res = await pool.request({
          method: 'POST',
          path: '/dashscope/token',
          headers: { 'content-length': '0' },
        });
        const body = await res.body.json();
        if (res.statusCode !== 200 || !String(body.token).startsWith('st-'))
          throw new Error(`token ${res.statusCode}`);
      } else if (kind === 'stream') {
        const abandon = i % 100 === 1;
        const controller = new AbortController();
        const res = await pool.request({
          method: 'POST',
          path: `/dashscope${CHAT_PATH}`,
          headers: { 'content-type': 'application/json' },
          body: streamBody,
          signal: controller.signal,
        });
        if (res.statusCode !== 200) throw new Error(`stream ${res.statusCode}`);
        let text = '';
        for await (const chunk of res.body) {
          if (abandon) {
            controller.abort();
            counts.abandoned++;
            break;
          }
          text += chunk;
        }
        if (!abandon && !text.includes('[DONE]')) throw new Error('stream ended early');
      } else {
        const res = await pool.request({
          method: 'POST',
          path: `/dashscope${CHAT_PATH}`,
          headers: { 'content-type': 'application/json' },
          body: chatBody,
        });
        const body = await res.body.text();
        if (res.statusCode !== 200 || !body.includes('chat.completion'))
          throw new Error(`chat ${res.statusCode}`);
      }
      counts[kind]++;
    } catch (error) {
      if (error?.name === 'AbortError' || error?.code === 'UND_ERR_ABORTED') return;
      counts.failed++;
      if (failures.length < 10) failures.push(String(error));
    }
  };

  const worker = async () => {
    while (sent < total) {
      const i = sent++;
      await one(i);
      done++;
      if (done >= nextSample) {
        nextSample += sampleEvery;
        await sample();
      }
    }
  };
  console.log(
    `soak: ${total.toLocaleString('en')} requests over ${concurrency} keep-alive connections`,
  );
  await sample();
  await Promise.all(Array.from({ length: concurrency }, worker));
  await new Promise((resolve) => setTimeout(resolve, 200));
  await sample();
  const seconds = (performance.now() - t0) / 1000;
  const minted = (await request(up.child, 'stats')).minted;
  const last = samples.at(-1);
  const warm = samples[Math.min(2, samples.length - 1)];
  const growth = (last.rssMiB - warm.rssMiB) / warm.rssMiB;
  console.log(
    `\nsoak done: ${done.toLocaleString('en')} requests in ${seconds.toFixed(1)} s (${Math.round(done / seconds)} req/s): ` +
      `${JSON.stringify(counts)}; upstream minted ${minted} keys; ` +
      `RSS ${samples[0].rssMiB.toFixed(1)} → ${warm.rssMiB.toFixed(1)} (warm) → ${last.rssMiB.toFixed(1)} MiB ` +
      `(${(growth * 100).toFixed(1)} % after warm-up)`,
  );
  await pool.close();
  srv.child.kill();
  up.child.kill();
  const problems = [];
  if (counts.failed > 0) problems.push(`${counts.failed} failed requests: ${failures.join('; ')}`);
  if (last.active !== 0) problems.push(`${last.active} requests still in progress on the server`);
  if (growth > maxGrowth) problems.push(`RSS grew ${(growth * 100).toFixed(1)} % after warm-up`);
  if (problems.length > 0) {
    console.error(`soak FAILED: ${problems.join('; ')}`);
    process.exit(1);
  }
}
