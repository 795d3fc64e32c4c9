/**
 * Token-cache figures, in their own process: cache-hit `getToken()` operations per second
 * (also with the Redis tier, when a `redis-server` can be started), and a cold stampede
 * straight on a provider (10,000 concurrent first calls → mints).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { createTokenProvider } from '@dashscope-token/core';
import { createRedisStore } from '@dashscope-token/redis';
import { createClient } from 'redis';
import { serveParent } from './ipc.mjs';
import { BENCH_API_KEY } from './workload.mjs';

const [upstream] = process.argv.slice(2);

/** Awaited cache hits per second over `ms` milliseconds, in batches (the loop's cost is included). */
async function hitsPerSecond(call, ms) {
  // Warm up the JIT.
  for (let i = 0; i < 200_000; i++) await call();
  let ops = 0;
  const start = process.hrtime.bigint();
  const end = start + BigInt(ms) * 1_000_000n;
  let now = start;
  while (now < end) {
    for (let i = 0; i < 10_000; i++) await call();
    ops += 10_000;
    now = process.hrtime.bigint();
  }
  return ops / (Number(now - start) / 1e9);
}

const REDIS_SERVER = process.env.REDIS_SERVER ?? '/usr/bin/redis-server';

/** Whether a Redis on `port` answers PING. */
function answersPing(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')));
  });
}

/**
 * A redis-server of the bench's own on a random port, with a connected node-redis client;
 * `undefined` when there is no redis-server or it does not start within 10 s.
 */
async function startRedis() {
  if (!existsSync(REDIS_SERVER)) return undefined;
  // A random port can be taken (by a contender, say): a few tries.
  for (let attempt = 0; attempt < 3; attempt++) {
    const started = await startRedisOnce(20_000 + Math.floor(Math.random() * 40_000));
    if (started !== undefined) return started;
  }
  return undefined;
}

/** {@link startRedis} on `port`. */
async function startRedisOnce(port) {
  const server = spawn(
    REDIS_SERVER,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  // The orchestrator ends this process with process.exit(): the server goes with it.
  process.once('exit', () => server.kill('SIGKILL'));
  const deadline = Date.now() + 10_000;
  while (!(await answersPing(port))) {
    if (server.exitCode !== null || Date.now() > deadline) {
      server.kill('SIGKILL');
      return undefined;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const client = createClient({
    url: `redis://127.0.0.1:${port}`,
    socket: { reconnectStrategy: false },
  });
  client.on('error', () => {});
  await client.connect();
  return { client };
}

let redis;

async function getTokenOps({ ms }) {
  const options = { apiKey: BENCH_API_KEY, baseUrl: upstream, expireInSeconds: 1800 };
  const provider = createTokenProvider(options);
  await provider.getToken();
  const perCall = { apiKey: BENCH_API_KEY, minValiditySeconds: 60 };
  const result = {
    // `await provider.getToken()`: the provider's own key, default freshness.
    plain: await hitsPerSecond(() => provider.getToken(), ms),
    // What the proxy asks for on every request: a key and a freshness floor.
    withOptions: await hitsPerSecond(() => provider.getToken(perCall), ms),
    stats: provider.stats(),
  };
  await provider.close();
  redis ??= await startRedis();
  if (redis !== undefined) {
    // The same call with the Redis tier configured: a hit is answered by the local LRU.
    const shared = createTokenProvider({
      ...options,
      store: createRedisStore({ client: redis.client }),
    });
    await shared.getToken(perCall);
    result.withRedis = await hitsPerSecond(() => shared.getToken(perCall), ms);
    result.redisStats = shared.stats();
    await shared.close();
  }
  return result;
}

async function providerStampede({ calls }) {
  const provider = createTokenProvider({ apiKey: BENCH_API_KEY, baseUrl: upstream });
  const tokens = await Promise.all(Array.from({ length: calls }, () => provider.getToken()));
  const distinct = new Set(tokens.map((t) => t.token)).size;
  const stats = provider.stats();
  await provider.close();
  return { distinct, stats };
}

serveParent({ getTokenOps, providerStampede }, {});
