/**
 * Property-based fault testing over real HTTP against the emulator (fast-check).
 *
 * Each run draws a TTL, a clock skew between us and Model Studio, and a few waves of events
 * fired at random moments: callers (two tenants, random freshness floors, forced refreshes,
 * callers that give up), upstream faults on the token endpoint (429 with and without
 * `Retry-After`, 500, 503, HTML 502, truncated JSON, reset, hang), slow answers and the passing
 * of time (the provider's clock and the emulator's move together; no sleeping). After every run:
 *
 * - no token was handed out past its expiry or with less life left than asked for, measured
 *   on the emulator's clock (the one that decides);
 * - at most one mint was in flight per key, as seen on the wire;
 * - every failure is a `DashScopeError` with a documented code and status, free of the key;
 * - no unhandled rejection;
 * - once upstream is healthy again, the provider serves without help;
 * - the provider's stats add up with what upstream saw.
 *
 * A failure prints fast-check's seed and path; replay it with `FC_SEED=<seed>`, search deeper
 * with `FC_RUNS=<n>` (30 by default).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Emulator, type EmulatorFault, startEmulator } from '@dashscope-token/emulator';
import * as fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createDashScopeHandler,
  createTokenProvider,
  type DashScopeError,
  isDashScopeError,
  type RetryOptions,
  type TokenProvider,
} from '../../src/index.js';
import { type MintWatch, watchMints } from './upstream-watch.js';

/** Two tenants' permanent keys: random-looking, so that no 8-character fragment occurs by chance. */
const KEYS = ['sk-fault-tenant-a-Fq7Zx2Lm9Tw4Na1', 'sk-fault-tenant-b-Gm5Yt8Qe2Wj7Ub4'] as const;
const SEED = Number(process.env.FC_SEED ?? 20251123);
/** Runs of the provider property (the handler property does half): `FC_RUNS` for a deeper search. */
const RUNS = Number(process.env.FC_RUNS ?? 30);
/** A hanging mint gives up after this long (then retries). */
const MINT_TIMEOUT_MS = 300;
const RETRY: RetryOptions = { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 20, maxElapsedMs: 1500 };
/** Slack for the time between the provider's decision and our reading of the emulator clock. */
const CLOCK_SLACK_S = 0.05;

/** Codes a failed getToken may carry here, with their documented status. */
const DOCUMENTED: Readonly<Record<string, number>> = {
  'Throttling.RateQuota': 429,
  SystemError: 502,
  ServiceUnavailable: 503,
  BadGateway: 502,
  NetworkError: 502,
  Timeout: 504,
  Aborted: 499,
  InvalidApiKey: 401,
};

interface NamedFault {
  name: string;
  fault: EmulatorFault;
}

const faultArb: fc.Arbitrary<NamedFault> = fc.oneof(
  fc.constantFrom<number | undefined>(undefined, 0, 1, 30).map(
    (retryAfterSeconds): NamedFault =>
      retryAfterSeconds === undefined
        ? { name: '429', fault: { type: 'throttle' } }
        : {
            name: `429 Retry-After ${retryAfterSeconds}`,
            fault: { type: 'throttle', retryAfterSeconds },
          },
  ),
  fc.constantFrom<NamedFault>(
    { name: '500', fault: { type: 'system-error' } },
    {
      name: '503',
      fault: {
        type: 'status',
        status: 503,
        body: { code: 'ServiceUnavailable', message: 'Try later.', request_id: 'r-503' },
      },
    },
    { name: 'HTML 502', fault: { type: 'html-502' } },
    { name: 'truncated JSON', fault: { type: 'malformed-json' } },
    { name: 'reset', fault: { type: 'reset' } },
    { name: 'hang', fault: { type: 'hang' } },
    { name: '401 (key revoked)', fault: { type: 'invalid-api-key' } },
  ),
);

type Event =
  | {
      kind: 'call';
      at: number;
      tenant: 0 | 1;
      /** Freshness floor as a fraction of the TTL. */
      floor: number;
      forceRefresh: boolean;
      abortAfterMs: number | undefined;
    }
  | { kind: 'fault'; at: number; fault: NamedFault; times: number }
  | { kind: 'slow'; at: number; ms: number }
  | { kind: 'advance'; at: number; fraction: number };

const at = fc.integer({ min: 0, max: 40 });
const eventArb: fc.Arbitrary<Event> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('call' as const),
      at,
      tenant: fc.constantFrom<0 | 1>(0, 1),
      floor: fc.double({ min: 0, max: 0.95, noNaN: true }),
      forceRefresh: fc.boolean(),
      abortAfterMs: fc.option(fc.integer({ min: 0, max: 150 }), { freq: 5, nil: undefined }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('fault' as const),
      at,
      fault: faultArb,
      times: fc.integer({ min: 1, max: 3 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('slow' as const),
      at,
      ms: fc.integer({ min: 0, max: 100 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('advance' as const),
      at,
      fraction: fc.double({ min: 0, max: 1.2, noNaN: true }),
    }),
  },
);

const runArb = fc.record({
  ttl: fc.constantFrom(2, 3, 5, 10, 30, 60, 300, 1800),
  skewSeconds: fc.integer({ min: -600, max: 600 }),
  waves: fc.array(fc.array(eventArb, { minLength: 1, maxLength: 10 }), {
    minLength: 1,
    maxLength: 4,
  }),
});

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(5);
  }
}

function leaksKey(text: string): boolean {
  return KEYS.some((key) => {
    for (let i = 0; i + 8 <= key.length; i++) if (text.includes(key.slice(i, i + 8))) return true;
    return false;
  });
}

/** Virtual time shared by the provider's clock and the emulator's: time passes without sleeping. */
class VirtualTime {
  private shiftMs = 0;
  constructor(
    private readonly emulator: Emulator,
    private readonly skewSeconds: number,
  ) {
    emulator.setClockOffset(skewSeconds);
  }
  readonly now = (): number => Date.now() + this.shiftMs;
  advance(seconds: number): void {
    this.shiftMs += seconds * 1000;
    this.emulator.setClockOffset(this.skewSeconds + this.shiftMs / 1000);
  }
}

const totals = {
  runs: 0,
  faultsQueued: 0,
  faultsHit: 0,
  calls: 0,
  served: 0,
  failed: {} as Record<string, number>,
};
function countFailure(code: string): void {
  totals.failed[code] = (totals.failed[code] ?? 0) + 1;
}

let emulator: Emulator;
let watch: MintWatch;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};

beforeAll(async () => {
  emulator = await startEmulator({ apiKeys: [...KEYS], chunkDelayMs: 1 });
  watch = watchMints();
  process.on('unhandledRejection', onUnhandled);
});

afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  watch.stop();
  await emulator.close();
  console.info(
    `[fault-properties] seed ${SEED}: ${totals.runs} runs, ${totals.faultsQueued} faults queued, ` +
      `${totals.faultsHit} hit the token endpoint and were survived; ${totals.calls} callers, ` +
      `${totals.served} served, failures by code ${JSON.stringify(totals.failed)}`,
  );
});

/** Starts a run: fresh counters, no faults, the drawn skew. */
function beginRun(skewSeconds: number): {
  time: VirtualTime;
  before: { tokens: number; issued: number };
} {
  emulator.clearFaults();
  emulator.setLatency(0);
  emulator.clearRequests();
  watch.reset();
  unhandled.length = 0;
  const stats = emulator.stats();
  totals.runs++;
  return {
    time: new VirtualTime(emulator, skewSeconds),
    before: { tokens: stats.requests.tokens ?? 0, issued: stats.tokensIssued },
  };
}

function applyUpstreamEvent(event: Event, time: VirtualTime, ttl: number): void {
  if (event.kind === 'fault') {
    emulator.fault('tokens', event.fault.fault, event.times);
    totals.faultsQueued += event.times;
  } else if (event.kind === 'slow') {
    emulator.setLatency(event.ms);
  } else if (event.kind === 'advance') {
    time.advance(event.fraction * ttl);
  }
}

/** Upstream recovers: no more faults, no more latency. */
async function healUpstream(): Promise<void> {
  emulator.clearFaults();
  emulator.setLatency(0);
}

describe('fault matrix (property-based, real HTTP)', () => {
  it('the token provider keeps every promise under random callers, TTLs, faults and skew', async () => {
    await fc.assert(
      fc.asyncProperty(runArb, async ({ ttl, skewSeconds, waves }) => {
        const { time, before } = beginRun(skewSeconds);
        const problems: string[] = [];
        const provider: TokenProvider = createTokenProvider({
          baseUrl: emulator.url,
          apiKey: KEYS[0],
          expireInSeconds: ttl,
          retry: RETRY,
          timeoutMs: MINT_TIMEOUT_MS,
          now: time.now,
          onRefreshError: (error) => {
            if (!isDashScopeError(error)) problems.push(`onRefreshError got ${String(error)}`);
          },
        });
        let calls = 0;
        const tokensByTenant = [new Set<string>(), new Set<string>()];

        const call = async (
          tenant: 0 | 1,
          minValiditySeconds: number,
          forceRefresh: boolean,
          abortAfterMs: number | undefined,
        ): Promise<boolean> => {
          calls++;
          totals.calls++;
          const signal =
            abortAfterMs === undefined ? undefined : AbortSignal.timeout(abortAfterMs + 1);
          let serverNow = 0;
          try {
            const token = await provider
              .getToken({
                apiKey: KEYS[tenant],
                minValiditySeconds,
                forceRefresh,
                ...(signal !== undefined && { signal }),
              })
              .then((t) => {
                serverNow = emulator.now();
                return t;
              });
            totals.served++;
            tokensByTenant[tenant]!.add(token.token);
            const left = token.expiresAt - serverNow;
            if (left <= 0) problems.push(`token handed out ${-left} s past its expiry`);
            if (left < minValiditySeconds - CLOCK_SLACK_S) {
              problems.push(`token with ${left} s left, asked for ${minValiditySeconds} s`);
            }
            return true;
          } catch (error) {
            if (!isDashScopeError(error)) {
              problems.push(`not a DashScopeError: ${String(error)}`);
              return false;
            }
            const e = error as DashScopeError;
            countFailure(e.code);
            if (DOCUMENTED[e.code] !== e.status) {
              problems.push(`undocumented failure ${e.code}/${e.status}: ${e.message}`);
            }
            if (e.code === 'Aborted' && signal === undefined) {
              problems.push('Aborted without a signal');
            }
            if (leaksKey(`${e.message} ${JSON.stringify(e)} ${e.stack}`)) {
              problems.push(`key fragment in ${e.code}`);
            }
            return false;
          }
        };

        try {
          for (const wave of waves) {
            await Promise.all(
              wave.map(async (event) => {
                await sleep(event.at);
                if (event.kind === 'call') {
                  const floor = Math.round(event.floor * ttl * 100) / 100;
                  await call(event.tenant, floor, event.forceRefresh, event.abortAfterMs);
                } else applyUpstreamEvent(event, time, ttl);
              }),
            );
          }

          // Upstream heals: the provider must serve again without help (no invalidate, no new
          // provider), both tenants, also after a forced refresh that drains any refresh left.
          // The first call may still join a mint that began before upstream healed and get its
          // failure; the next one starts its own.
          await healUpstream();
          // A 401 is remembered for negativeCacheSeconds (10 s): let that pass.
          time.advance(11);
          for (const tenant of [0, 1] as const) {
            // A floor every TTL can meet (a key counts as expiring up to ~1 s early).
            const floor = Math.min(1, ttl / 4);
            const recovered =
              ((await call(tenant, floor, false, undefined)) ||
                (await call(tenant, floor, false, undefined))) &&
              (await call(tenant, floor, true, undefined));
            if (!recovered) problems.push(`tenant ${tenant} did not recover`);
          }
          await until(() => watch.inFlight() === 0, 5000, 'token requests to finish');

          const up = emulator.stats();
          const tokenRequests = (up.requests.tokens ?? 0) - before.tokens;
          const issued = up.tokensIssued - before.issued;
          totals.faultsHit += tokenRequests - issued;
          const stats = provider.stats();
          expect(problems).toEqual([]);
          expect(unhandled).toEqual([]);
          for (const [auth, max] of watch.maxInFlight) {
            expect(max, `mints in flight at once for ${auth.slice(0, 12)}…`).toBeLessThanOrEqual(1);
          }
          expect(stats.hits + stats.misses).toBe(calls);
          expect(watch.total()).toBe(tokenRequests);
          expect(stats.mints + stats.errors).toBe(tokenRequests);
          expect(stats.mints).toBeLessThanOrEqual(issued);
          expect(stats.size).toBeLessThanOrEqual(KEYS.length);
          for (const token of tokensByTenant[0]!) expect(tokensByTenant[1]!.has(token)).toBe(false);
        } finally {
          await provider.close();
        }
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
  }, 120_000);

  it('the handler answers every HTTP caller with a valid key or a documented error under the same faults', async () => {
    type Kind = 'token' | 'chat' | 'stream' | 'native';
    const callArb = fc.record({
      kind: fc.constant('http' as const),
      at,
      tenant: fc.constantFrom<0 | 1>(0, 1),
      route: fc.constantFrom<Kind>('token', 'chat', 'stream', 'native'),
    });
    const upstreamArb = eventArb.filter((e) => e.kind !== 'call');
    const handlerRunArb = fc.record({
      ttl: fc.constantFrom(700, 1200, 1800),
      skewSeconds: fc.integer({ min: -600, max: 600 }),
      waves: fc.array(
        fc.array(
          fc.oneof({ weight: 3, arbitrary: callArb }, { weight: 2, arbitrary: upstreamArb }),
          {
            minLength: 1,
            maxLength: 10,
          },
        ),
        { minLength: 1, maxLength: 3 },
      ),
    });

    await fc.assert(
      fc.asyncProperty(handlerRunArb, async ({ ttl, skewSeconds, waves }) => {
        const { time, before } = beginRun(skewSeconds);
        const provider = createTokenProvider({
          baseUrl: emulator.url,
          expireInSeconds: ttl,
          retry: RETRY,
          timeoutMs: MINT_TIMEOUT_MS,
          now: time.now,
        });
        // The token route never shares the proxy's provider: its own, on the same clock.
        const routeProvider = createTokenProvider({
          baseUrl: emulator.url,
          expireInSeconds: 60,
          retry: RETRY,
          timeoutMs: MINT_TIMEOUT_MS,
          now: time.now,
        });
        const handler = createDashScopeHandler({
          baseUrl: emulator.url,
          provider: { proxy: provider, tokenRoute: routeProvider },
          apiKey: (req) => (req.headers['x-tenant'] === 'b' ? KEYS[1] : KEYS[0]),
        });
        const server = http.createServer(handler);
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        const port = (server.address() as AddressInfo).port;
        const problems: string[] = [];
        let calls = 0;

        const httpCall = async (tenant: 0 | 1, route: Kind): Promise<boolean> => {
          calls++;
          totals.calls++;
          const answer = await exchange(port, tenant, route);
          const serverNow = emulator.now();
          if (answer.status === 200) {
            totals.served++;
            if (route === 'token') {
              const body = JSON.parse(answer.text) as { token: string; expires_at: number };
              const left = body.expires_at - serverNow;
              // The token route hands out keys with at least 30 s left (its default).
              if (left < 30 - CLOCK_SLACK_S) problems.push(`token route: ${left} s left`);
            } else if (route === 'stream' && !answer.text.trimEnd().endsWith('data: [DONE]')) {
              problems.push('stream ended early');
            }
            return true;
          }
          const dialect = route === 'chat' || route === 'stream' ? 'openai' : 'dashscope';
          const problem = checkErrorAnswer(answer, dialect);
          if (problem !== undefined) problems.push(`${route}: ${problem}`);
          if (leaksKey(answer.raw)) problems.push(`${route}: key fragment in the answer`);
          return false;
        };

        try {
          for (const wave of waves) {
            await Promise.all(
              wave.map(async (event) => {
                await sleep(event.at);
                if (event.kind === 'http') await httpCall(event.tenant, event.route);
                else applyUpstreamEvent(event, time, ttl);
              }),
            );
            const stats = handler.stats();
            expect(stats.activeRequests).toBe(0);
            expect(stats.upstream).toMatchObject({ pending: 0, running: 0, queued: 0 });
          }
          await healUpstream();
          time.advance(11);
          for (const route of ['token', 'chat', 'stream', 'native'] as const) {
            for (const tenant of [0, 1] as const) {
              // As above: one failure from a mint that began before the healing, at most.
              const recovered = (await httpCall(tenant, route)) || (await httpCall(tenant, route));
              if (!recovered) problems.push(`${route} did not recover for tenant ${tenant}`);
            }
          }
          await until(() => watch.inFlight() === 0, 5000, 'token requests to finish');

          const up = emulator.stats();
          const tokenRequests = (up.requests.tokens ?? 0) - before.tokens;
          totals.faultsHit += tokenRequests - (up.tokensIssued - before.issued);
          expect(problems).toEqual([]);
          expect(unhandled).toEqual([]);
          for (const [, max] of watch.maxInFlight) expect(max).toBeLessThanOrEqual(1);
          // Model Studio never refused an injected key: none had expired on its clock.
          const refused = emulator.requests.filter((r) => r.route !== 'tokens' && r.status === 401);
          expect(refused).toEqual([]);
          const stats = handler.stats();
          const route = stats.routeTokens!;
          expect(
            stats.proxyTokens.hits + stats.proxyTokens.misses + route.hits + route.misses,
          ).toBe(calls);
          expect(
            stats.proxyTokens.mints + stats.proxyTokens.errors + route.mints + route.errors,
          ).toBe(tokenRequests);
        } finally {
          server.closeAllConnections();
          await new Promise<void>((resolve) => server.close(() => resolve()));
          await handler.close();
          await provider.close();
          await routeProvider.close();
        }
      }),
      { numRuns: Math.ceil(RUNS / 2), seed: SEED + 1, endOnFailure: true },
    );
  }, 120_000);
});

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** Status line, headers and body, for the leak check. */
  raw: string;
}

const CHAT = { model: 'qwen-plus', messages: [{ role: 'user', content: 'Hi' }] };
const ROUTES = {
  token: { path: '/dashscope/token', body: undefined, sse: false },
  chat: { path: '/dashscope/compatible-mode/v1/chat/completions', body: CHAT, sse: false },
  stream: {
    path: '/dashscope/compatible-mode/v1/chat/completions',
    body: { ...CHAT, stream: true },
    sse: true,
  },
  native: {
    path: '/dashscope/api/v1/services/aigc/text-generation/generation',
    body: { model: 'qwen-plus', input: { prompt: 'Hi' } },
    sse: false,
  },
} as const;

function exchange(port: number, tenant: 0 | 1, route: keyof typeof ROUTES): Promise<Answer> {
  const spec = ROUTES[route];
  const body = spec.body === undefined ? '' : JSON.stringify(spec.body);
  return new Promise((resolve) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: spec.path,
        agent: false,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'x-tenant': tenant === 1 ? 'b' : 'a',
          ...(spec.sse && { accept: 'text/event-stream' }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text,
            raw: `${res.statusCode} ${JSON.stringify(res.headers)} ${text}`,
          });
        });
        res.on('error', (error) =>
          resolve({ status: 0, headers: {}, text: String(error), raw: String(error) }),
        );
      },
    );
    req.on('error', (error) =>
      resolve({ status: 0, headers: {}, text: String(error), raw: String(error) }),
    );
    req.end(body);
  });
}

/** Statuses and codes the handler documents for a failure to get a key, per dialect. */
const HANDLER_ERRORS: Readonly<Record<string, { status: number; openai: string }>> = {
  'Throttling.RateQuota': { status: 429, openai: 'rate_limit_exceeded' },
  SystemError: { status: 502, openai: 'system_error' },
  ServiceUnavailable: { status: 503, openai: 'service_unavailable' },
  BadGateway: { status: 502, openai: 'bad_gateway' },
  NetworkError: { status: 502, openai: 'network_error' },
  Timeout: { status: 504, openai: 'timeout' },
  // Model Studio refusing the server's own key is not the client's fault: 502.
  InvalidApiKey: { status: 502, openai: 'invalid_api_key' },
};

function checkErrorAnswer(answer: Answer, dialect: 'openai' | 'dashscope'): string | undefined {
  let body: { code?: string; error?: { code?: string; type?: string } };
  try {
    body = JSON.parse(answer.text) as typeof body;
  } catch {
    return `status ${answer.status} without a JSON error: ${answer.text.slice(0, 100)}`;
  }
  const code = dialect === 'openai' ? body.error?.code : body.code;
  const entry = Object.entries(HANDLER_ERRORS).find(([native, e]) =>
    dialect === 'openai' ? e.openai === code : native === code,
  );
  if (entry === undefined) return `undocumented error code ${code} (${answer.status})`;
  if (entry[1].status !== answer.status) return `${code} answered with ${answer.status}`;
  if (answer.status === 429 && answer.headers['retry-after'] === undefined) {
    return '429 without Retry-After';
  }
  if (typeof answer.headers['x-request-id'] !== 'string') return 'no X-Request-Id';
  return undefined;
}
