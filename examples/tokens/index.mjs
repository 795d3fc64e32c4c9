// mintToken and createTokenProvider, end to end. Without DASHSCOPE_API_KEY it
// runs against the local emulator, so it works offline.
import { createTokenProvider, DashScopeError, mintToken } from '@dashscope-token/core';
import { DEFAULT_EMULATOR_API_KEY, startEmulator } from '@dashscope-token/emulator';

const emulator = process.env.DASHSCOPE_API_KEY ? undefined : await startEmulator();
// With the emulator, point at it; otherwise DASHSCOPE_API_KEY / DASHSCOPE_REGION /
// DASHSCOPE_BASE_URL from the environment choose the key and the host.
const where = emulator ? { apiKey: DEFAULT_EMULATOR_API_KEY, baseUrl: emulator.url } : {};
const apiKey = where.apiKey ?? process.env.DASHSCOPE_API_KEY;

// 1. One temporary key, straight from the token endpoint.
const minted = await mintToken({ ...where, apiKey, expireInSeconds: 300 });
console.log(`mintToken: ${minted.token.slice(0, 6)}… expires at ${minted.expiresAt}`);

// 2. A provider caches keys: 1,000 concurrent callers cause one mint.
const provider = createTokenProvider({ ...where, expireInSeconds: 600 });
const tokens = await Promise.all(Array.from({ length: 1000 }, () => provider.getToken()));
console.log(`createTokenProvider: ${new Set(tokens.map((t) => t.token)).size} distinct key(s)`);
console.log('stats:', provider.stats());

// 3. Every failure is a DashScopeError with a stable code, and never the key.
try {
  await mintToken({ ...where, apiKey: 'sk-this-key-does-not-exist-0000000000' });
} catch (error) {
  if (!(error instanceof DashScopeError)) throw error;
  console.log(`error: ${error.code} (HTTP ${error.status}, retryable: ${error.retryable})`);
}

await provider.close();
await emulator?.close();
