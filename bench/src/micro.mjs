/**
 * Token-cache figures, in their own process: cache-hit `getToken()` operations per second, and
 * a cold stampede straight on a provider (10,000 concurrent first calls → mints).
 */
import { createTokenProvider } from '@dashscope-token/core';
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

async function getTokenOps({ ms }) {
  const provider = createTokenProvider({
    apiKey: BENCH_API_KEY,
    baseUrl: upstream,
    expireInSeconds: 1800,
  });
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
