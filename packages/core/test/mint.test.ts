import { Agent, type Dispatcher } from 'undici';
import { describe, expect, it } from 'vitest';
import { DashScopeError, mintToken, mintTokenWithTiming } from '../src/index.js';
import {
  DEFAULT_EMULATOR_API_KEY as KEY,
  rejection,
  tokenRequests,
  useEmulator,
} from './emulator-fixture.js';
import { closedPort } from './free-port.js';

const emulator = useEmulator();

async function mintError(
  opts: Partial<Parameters<typeof mintToken>[0]> = {},
): Promise<DashScopeError> {
  const error = await rejection(mintToken({ apiKey: KEY, baseUrl: emulator().url, ...opts }));
  expect(error).toBeInstanceOf(DashScopeError);
  return error as unknown as DashScopeError;
}

describe('mintToken', () => {
  it('mints a temporary key with POST /api/v1/tokens and the permanent key as bearer', async () => {
    const before = emulator().now();
    const token = await mintToken({ apiKey: KEY, baseUrl: emulator().url });
    expect(token.token).toMatch(/^st-/);
    expect(token.expiresAt).toBeGreaterThanOrEqual(Math.floor(before) + 59);
    expect(token.expiresAt).toBeLessThanOrEqual(Math.ceil(emulator().now()) + 61);
    expect(Object.keys(token).sort()).toEqual(['expiresAt', 'token']);
    const [request] = emulator().requests;
    expect(request?.method).toBe('POST');
    expect(request?.path).toBe('/api/v1/tokens?expire_in_seconds=60');
    expect(request?.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(request?.headers['user-agent']).toMatch(
      /^dashscope-token\/\d+\.\d+\.\d+\S* node\/\d+\./,
    );
  });

  it('asks for the requested lifetime', async () => {
    const token = await mintToken({ apiKey: KEY, baseUrl: emulator().url, expireInSeconds: 1800 });
    expect(emulator().requests[0]?.path).toBe('/api/v1/tokens?expire_in_seconds=1800');
    expect(token.expiresAt - emulator().now()).toBeGreaterThan(1790);
  });

  it('returns the server Date and local timings for skew correction', async () => {
    emulator().setClockOffset(300);
    const timed = await mintTokenWithTiming({ apiKey: KEY, baseUrl: emulator().url });
    expect(timed.serverDate).toBeDefined();
    expect(timed.requestStartedAt).toBeLessThanOrEqual(timed.responseReceivedAt);
    const offsetMs = (timed.serverDate ?? 0) - timed.requestStartedAt;
    expect(offsetMs).toBeGreaterThan(298_000);
    expect(offsetMs).toBeLessThan(302_000);
  });

  it('rejects every invalid expireInSeconds before any request', async () => {
    for (const expireInSeconds of [
      0,
      -1,
      1801,
      1.5,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      '60',
      null,
    ]) {
      const error = await mintError({ expireInSeconds: expireInSeconds as number });
      expect(error.code).toBe('InvalidParameter');
      expect(error.status).toBe(400);
      expect(error.retryable).toBe(false);
      expect(error.message).toMatch(/1 to 1800/);
    }
    expect(emulator().requests).toHaveLength(0);
  });

  it('rejects a missing or malformed API key before any request', async () => {
    for (const apiKey of ['', undefined, 42]) {
      const error = await mintError({ apiKey: apiKey as string });
      expect(error.code).toBe('MissingApiKey');
      expect(error.status).toBe(500);
      expect(error.message).toMatch(/DASHSCOPE_API_KEY/);
    }
    const withNewline = await mintError({ apiKey: `${KEY}\n` });
    expect(withNewline.code).toBe('InvalidParameter');
    expect(emulator().requests).toHaveLength(0);
  });

  it('maps an invalid key to InvalidApiKey 401 with the request id', async () => {
    const error = await mintError({ apiKey: 'sk-not-a-key-the-emulator-knows' });
    expect(error.code).toBe('InvalidApiKey');
    expect(error.status).toBe(401);
    expect(error.upstreamStatus).toBe(401);
    expect(error.retryable).toBe(false);
    expect(error.requestId).toBe(emulator().requests[0]?.id);
    expect(error.toJSON()).toEqual({
      code: 'InvalidApiKey',
      message: error.message,
      request_id: error.requestId,
    });
  });

  it('maps throttling to 429 with retryAfterSeconds from Retry-After seconds', async () => {
    emulator().fault('tokens', { type: 'throttle', retryAfterSeconds: 7 });
    const error = await mintError();
    expect(error.code).toBe('Throttling.RateQuota');
    expect(error.status).toBe(429);
    expect(error.retryable).toBe(true);
    expect(error.retryAfterSeconds).toBe(7);
    expect(error.requestId).toBeTruthy();
  });

  it('reads a Retry-After HTTP-date against the server clock', async () => {
    emulator().setClockOffset(-3600);
    const at = new Date((Math.floor(emulator().now()) + 30) * 1000).toUTCString();
    emulator().fault('tokens', {
      type: 'status',
      status: 429,
      body: { code: 'Throttling.RateQuota', message: 'Too many requests.' },
      headers: { 'retry-after': at },
    });
    const error = await mintError();
    expect(error.retryAfterSeconds).toBeGreaterThanOrEqual(28);
    expect(error.retryAfterSeconds).toBeLessThanOrEqual(31);
  });

  it('maps a 500 SystemError to a retryable 502', async () => {
    emulator().fault('tokens', { type: 'system-error' });
    const error = await mintError();
    expect(error.code).toBe('SystemError');
    expect(error.status).toBe(502);
    expect(error.upstreamStatus).toBe(500);
    expect(error.retryable).toBe(true);
  });

  it('keeps 503 for an upstream 503 with a code', async () => {
    emulator().fault('tokens', {
      type: 'status',
      status: 503,
      body: { code: 'ServiceUnavailable', message: 'Busy.', request_id: 'r-503' },
    });
    const error = await mintError();
    expect(error).toMatchObject({
      code: 'ServiceUnavailable',
      status: 503,
      retryable: true,
      requestId: 'r-503',
    });
  });

  it('keeps the upstream code for 400, 403 and 404 answers', async () => {
    const cases = [
      [400, 'InvalidParameter'],
      [403, 'AccessDenied'],
      [404, 'NotFound'],
    ] as const;
    for (const [status, code] of cases) {
      emulator().fault('tokens', {
        type: 'status',
        status,
        body: { code, message: 'no', request_id: 'r' },
      });
      const error = await mintError();
      expect(error).toMatchObject({ code, status, retryable: false, upstreamStatus: status });
    }
  });

  it('maps an HTML 502 page to BadGateway', async () => {
    emulator().fault('tokens', { type: 'html-502' });
    const error = await mintError();
    expect(error.code).toBe('BadGateway');
    expect(error.status).toBe(502);
    expect(error.retryable).toBe(true);
    expect(error.message).toMatch(/HTML/);
  });

  it('maps a truncated JSON answer to BadGateway', async () => {
    emulator().fault('tokens', { type: 'malformed-json' });
    const error = await mintError();
    expect(error.code).toBe('BadGateway');
    expect(error.status).toBe(502);
    expect(error.upstreamStatus).toBe(200);
  });

  it('maps a 2xx without a usable token or expires_at to a non-retryable BadGateway', async () => {
    const now = Math.floor(emulator().now());
    const bodies: unknown[] = [
      { expires_at: now + 60 },
      { token: '', expires_at: now + 60 },
      { token: 42, expires_at: now + 60 },
      { token: 'st-has space', expires_at: now + 60 },
      { token: 'st-ok' },
      { token: 'st-ok', expires_at: 'soon' },
      { token: 'st-ok', expires_at: null },
      [{ token: 'st-ok', expires_at: now + 60 }],
    ];
    for (const body of bodies) {
      emulator().fault('tokens', { type: 'status', status: 200, body });
      const error = await mintError();
      expect(error.code).toBe('BadGateway');
      expect(error.status).toBe(502);
      expect(error.retryable).toBe(false);
    }
  });

  it('accepts a token without the st- prefix', async () => {
    const expiresAt = Math.floor(emulator().now()) + 60;
    emulator().fault('tokens', {
      type: 'status',
      status: 200,
      body: { token: 'tmp-abc', expires_at: expiresAt },
    });
    await expect(mintToken({ apiKey: KEY, baseUrl: emulator().url })).resolves.toEqual({
      token: 'tmp-abc',
      expiresAt,
    });
  });

  it('refuses an expires_at that is already past on the server clock', async () => {
    emulator().setClockOffset(-7200);
    emulator().fault('tokens', {
      type: 'status',
      status: 200,
      body: { token: 'st-stale', expires_at: Math.floor(emulator().now()) - 5 },
    });
    const error = await mintError();
    expect(error.code).toBe('BadGateway');
    expect(error.message).toMatch(/already past/);
  });

  it('refuses an answer larger than 64 KiB', async () => {
    emulator().fault('tokens', {
      type: 'status',
      status: 200,
      body: 'x'.repeat(100 * 1024),
      headers: { 'content-type': 'application/json' },
    });
    const error = await mintError();
    expect(error.code).toBe('BadGateway');
    expect(error.message).toMatch(/larger than/);
  });

  it('maps a connection reset to a retryable NetworkError', async () => {
    emulator().fault('tokens', { type: 'reset' });
    const error = await mintError();
    expect(error.code).toBe('NetworkError');
    expect(error.status).toBe(502);
    expect(error.retryable).toBe(true);
  });

  it('maps a refused connection to a retryable NetworkError', async () => {
    const port = await closedPort();
    const error = await mintError({ baseUrl: `http://127.0.0.1:${port}` });
    expect(error.code).toBe('NetworkError');
    expect(error.status).toBe(502);
    expect(error.retryable).toBe(true);
    expect(error.message).toMatch(/refused/);
  });

  it('maps a hanging answer to Timeout after timeoutMs', async () => {
    emulator().fault('tokens', { type: 'hang' });
    const started = Date.now();
    const error = await mintError({ timeoutMs: 300 });
    expect(error.code).toBe('Timeout');
    expect(error.status).toBe(504);
    expect(error.retryable).toBe(true);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it("maps the caller's abort to Aborted 499, not retryable", async () => {
    emulator().fault('tokens', { type: 'hang' });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const error = await mintError({ signal: controller.signal });
    expect(error.code).toBe('Aborted');
    expect(error.status).toBe(499);
    expect(error.retryable).toBe(false);
  });

  it('sends nothing when the signal is already aborted', async () => {
    const error = await mintError({ signal: AbortSignal.abort() });
    expect(error.code).toBe('Aborted');
    expect(tokenRequests(emulator())).toBe(0);
  });

  it('uses an injected dispatcher', async () => {
    let dispatched = 0;
    class CountingAgent extends Agent {
      override dispatch(
        options: Dispatcher.DispatchOptions,
        handler: Dispatcher.DispatchHandler,
      ): boolean {
        dispatched++;
        return super.dispatch(options, handler);
      }
    }
    const dispatcher = new CountingAgent();
    try {
      await mintToken({ apiKey: KEY, baseUrl: emulator().url, dispatcher });
      expect(dispatched).toBe(1);
    } finally {
      await dispatcher.close();
    }
  });
});
