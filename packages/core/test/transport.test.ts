/**
 * The token engine through each HTTP transport: the fetch transport (the default of the neutral
 * entry) and the undici transport (the Node default) mint the same way and fail the same way.
 */
import type { EmulatorFault } from '@dashscope-token/emulator';
import { describe, expect, it } from 'vitest';
import {
  DashScopeError,
  type HttpTransport,
  mintToken,
  createTokenProvider as nodeProvider,
  undiciTransport,
} from '../src/index.js';
import {
  fetchTransport,
  mintToken as neutralMintToken,
  createTokenProvider as neutralProvider,
} from '../src/neutral.js';
import {
  DEFAULT_EMULATOR_API_KEY as KEY,
  rejection,
  tokenRequests,
  useEmulator,
} from './emulator-fixture.js';
import { closedPort } from './free-port.js';

const emulator = useEmulator();

describe('the neutral entry mints through the global fetch by default', () => {
  it('a provider from @dashscope-token/core/neutral mints once for concurrent cold calls', async () => {
    const tokens = neutralProvider({ apiKey: KEY, baseUrl: emulator().url });
    const calls = await Promise.all(Array.from({ length: 50 }, () => tokens.getToken()));
    expect(calls[0]?.token).toMatch(/^st-/);
    expect(new Set(calls.map((t) => t.token)).size).toBe(1);
    expect(tokenRequests(emulator())).toBe(1);
    expect(tokens.stats().mints).toBe(1);
    const [request] = emulator().requests;
    expect(request?.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(request?.headers['user-agent']).toMatch(/^dashscope-token\/\S+ node\/\d+\./);
    await tokens.close();
  });

  it('neutral mintToken ignores the undici-only dispatcher option and still mints', async () => {
    const token = await neutralMintToken({
      apiKey: KEY,
      baseUrl: emulator().url,
      connectTimeoutMs: 1000,
    });
    expect(token.token).toMatch(/^st-/);
  });
});

describe('an injected transport', () => {
  it('carries every mint of a provider, with method, URL and headers', async () => {
    const seen: string[] = [];
    const inner = fetchTransport();
    const transport: HttpTransport = {
      request(request) {
        seen.push(
          `${request.method} ${new URL(request.url).pathname}${new URL(request.url).search}`,
        );
        return inner.request(request);
      },
    };
    const tokens = nodeProvider({ apiKey: KEY, baseUrl: emulator().url, transport });
    await tokens.getToken();
    await tokens.getToken({ forceRefresh: true });
    expect(seen).toEqual([
      'POST /api/v1/tokens?expire_in_seconds=60',
      'POST /api/v1/tokens?expire_in_seconds=60',
    ]);
    await tokens.close();
  });

  it("a transport's own failure becomes a NetworkError without the key", async () => {
    const transport: HttpTransport = {
      request: () => Promise.reject(new TypeError(`boom Bearer ${KEY}`)),
    };
    const error = await rejection(mintToken({ apiKey: KEY, baseUrl: emulator().url, transport }));
    expect(error).toBeInstanceOf(DashScopeError);
    expect(error.code).toBe('NetworkError');
    expect(JSON.stringify({ message: error.message, cause: String(error.cause) })).not.toContain(
      KEY,
    );
  });
});

describe.each([
  ['fetch', () => fetchTransport()],
  ['undici', () => undiciTransport()],
] as const)('the %s transport', (_name, make) => {
  const mint = (opts: Partial<Parameters<typeof mintToken>[0]> = {}) =>
    rejection(mintToken({ apiKey: KEY, baseUrl: emulator().url, transport: make(), ...opts }));

  it('mints a key and reports the server Date for skew correction', async () => {
    emulator().setClockOffset(120);
    const tokens = nodeProvider({ apiKey: KEY, baseUrl: emulator().url, transport: make() });
    const token = await tokens.getToken();
    expect(token.token).toMatch(/^st-/);
    expect(token.expiresAt - Date.now() / 1000).toBeGreaterThan(170);
    await tokens.close();
  });

  const faults: [string, EmulatorFault, Partial<Record<string, unknown>>][] = [
    ['a revoked key', { type: 'invalid-api-key' }, { code: 'InvalidApiKey', status: 401 }],
    [
      'throttling with Retry-After',
      { type: 'throttle', retryAfterSeconds: 7 },
      { status: 429, retryable: true, retryAfterSeconds: 7 },
    ],
    [
      'an answer over 64 KiB',
      { type: 'status', status: 200, body: 'x'.repeat(100 * 1024) },
      { code: 'BadGateway', retryable: true },
    ],
    ['a reset connection', { type: 'reset' }, { code: 'NetworkError', retryable: true }],
  ];
  it.each(faults)('maps %s as the other transport does', async (_what, fault, expected) => {
    emulator().fault('tokens', fault);
    const error = await mint();
    expect(error).toMatchObject(expected);
  });

  it('maps a refused connection to a retryable NetworkError', async () => {
    const error = await mint({ baseUrl: `http://127.0.0.1:${await closedPort()}` });
    expect([error.code, error.status, error.retryable]).toEqual(['NetworkError', 502, true]);
    expect(error.message).toMatch(/refused/);
  });

  it('maps a hanging answer to Timeout after timeoutMs', async () => {
    emulator().fault('tokens', { type: 'hang' });
    const error = await mint({ timeoutMs: 300 });
    expect([error.code, error.status, error.retryable]).toEqual(['Timeout', 504, true]);
  });

  it("maps the caller's abort to Aborted 499", async () => {
    emulator().fault('tokens', { type: 'hang' });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const error = await mint({ signal: controller.signal });
    expect(error.code).toBe('Aborted');
  });
});
