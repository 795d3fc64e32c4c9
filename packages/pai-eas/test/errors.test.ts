import { DashScopeError } from '@dashscope-token/core/neutral';
import { DEFAULT_EMULATOR_STS_CREDENTIALS } from '@dashscope-token/emulator';
import { describe, expect, it } from 'vitest';
import { createServiceInstanceToken, describeService } from '../src/index.js';
import { INSTANCE, KEY, on, openApiCalls, SERVICE, start } from './fixture.js';

const target = { service: SERVICE, instance: INSTANCE };

function nonces(emulator: Awaited<ReturnType<typeof start>>): string[] {
  return openApiCalls(emulator).map((r) => String(r.headers['x-acs-signature-nonce']));
}

describe('EAS errors', () => {
  const refusals: [string, Record<string, unknown>, string, number][] = [
    [
      'a wrong secret',
      { credentials: { ...KEY, accessKeySecret: 'not-the-secret-at-all' } },
      'SignatureDoesNotMatch',
      502,
    ],
    [
      'an unknown AccessKey',
      { credentials: { accessKeyId: 'LTAI-nobody', accessKeySecret: 'whatever-secret' } },
      'InvalidAccessKeyId.NotFound',
      502,
    ],
    [
      'a wrong security token',
      {
        credentials: {
          ...DEFAULT_EMULATOR_STS_CREDENTIALS,
          securityToken: 'forged-security-token',
        },
      },
      'InvalidSecurityToken.MismatchWithAccessKey',
      502,
    ],
  ];
  for (const [what, options, code, status] of refusals) {
    it(`keeps ${code} and the request id for ${what}, without retrying`, async () => {
      const emulator = await start();
      const error = await createServiceInstanceToken({
        ...on(emulator),
        ...options,
        ...target,
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DashScopeError);
      expect(error).toMatchObject({ code, status, retryable: false });
      expect((error as DashScopeError).requestId).toMatch(/^[0-9A-F-]{36}$/);
      expect(openApiCalls(emulator)).toHaveLength(1);
    });
  }

  it('answers 403 Forbidden.RAM when the RAM policy does not allow the operation', async () => {
    const emulator = await start({
      paiEas: { accessKeys: [{ ...KEY, allow: ['DescribeService'] }] },
    });
    await expect(createServiceInstanceToken({ ...on(emulator), ...target })).rejects.toMatchObject({
      code: 'Forbidden.RAM',
      status: 403,
      retryable: false,
      upstreamStatus: 403,
    });
  });

  it('answers 404 for a service that does not exist', async () => {
    const emulator = await start();
    await expect(describeService({ ...on(emulator), service: 'missing' })).rejects.toMatchObject({
      code: 'InvalidService.NotFound',
      status: 404,
      retryable: false,
    });
  });

  it('retries throttling, each attempt signed anew with a fresh nonce', async () => {
    const emulator = await start();
    emulator.fault('pai-eas', { type: 'throttle', retryAfterSeconds: 0.01 }, 2);
    const result = await createServiceInstanceToken({ ...on(emulator), ...target });
    expect(result.workbenchUrl).toContain('/ecs-workbench/');
    const seen = nonces(emulator);
    expect(seen).toHaveLength(3);
    expect(new Set(seen).size).toBe(3);
    const signatures = openApiCalls(emulator).map((r) => String(r.headers.authorization));
    expect(new Set(signatures).size).toBe(3);
  });

  it('gives up on throttling after maxAttempts with 429 Throttling.User', async () => {
    const emulator = await start();
    emulator.fault('pai-eas', { type: 'throttle' }, Number.POSITIVE_INFINITY);
    await expect(createServiceInstanceToken({ ...on(emulator), ...target })).rejects.toMatchObject({
      code: 'Throttling.User',
      status: 429,
      retryable: true,
    });
    expect(openApiCalls(emulator)).toHaveLength(3);
  });

  it('retries a 5xx and answers 502 InternalError when it persists', async () => {
    const emulator = await start();
    emulator.fault('pai-eas', { type: 'system-error' });
    await expect(createServiceInstanceToken({ ...on(emulator), ...target })).resolves.toBeDefined();
    emulator.fault('pai-eas', { type: 'system-error' }, Number.POSITIVE_INFINITY);
    await expect(
      createServiceInstanceToken({ ...on(emulator), ...target, retry: false }),
    ).rejects.toMatchObject({ code: 'InternalError', status: 502, retryable: true });
  });

  it('retries SignatureNonceUsed with a new nonce', async () => {
    const emulator = await start();
    emulator.fault('pai-eas', {
      type: 'status',
      status: 400,
      body: {
        RequestId: 'R-1',
        Code: 'SignatureNonceUsed',
        Message: 'Specified signature nonce was used already.',
      },
    });
    await createServiceInstanceToken({ ...on(emulator), ...target });
    expect(new Set(nonces(emulator)).size).toBe(2);
  });

  it('corrects clock skew from the gateway Date after InvalidTimeStamp.Expired', async () => {
    const emulator = await start({ clockOffsetSeconds: 30 * 60 });
    const result = await createServiceInstanceToken({ ...on(emulator), ...target });
    expect(result.workbenchUrl).toBeTruthy();
    const dates = openApiCalls(emulator).map((r) => Date.parse(String(r.headers['x-acs-date'])));
    expect(dates).toHaveLength(2);
    expect(dates[1]! - dates[0]!).toBeGreaterThan(29 * 60_000);
  });

  it('maps a refused connection to a retryable NetworkError', async () => {
    const emulator = await start();
    const url = emulator.url;
    await emulator.close();
    await expect(
      createServiceInstanceToken({ ...on(emulator), endpoint: url, ...target, retry: false }),
    ).rejects.toMatchObject({ code: 'NetworkError', status: 502, retryable: true });
  });

  it('maps an answer that never comes to a retryable Timeout', async () => {
    const emulator = await start();
    emulator.fault('pai-eas', { type: 'hang' });
    await expect(
      createServiceInstanceToken({ ...on(emulator), ...target, timeoutMs: 200, retry: false }),
    ).rejects.toMatchObject({ code: 'Timeout', status: 504, retryable: true });
  });

  it("stops with Aborted when the caller's signal fires", async () => {
    const emulator = await start();
    emulator.fault('pai-eas', { type: 'hang' });
    const controller = new AbortController();
    const pending = createServiceInstanceToken({
      ...on(emulator),
      ...target,
      signal: controller.signal,
    });
    await emulator.waitForRequest((r) => r.route === 'pai-eas');
    controller.abort();
    const error = await pending.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DashScopeError);
    expect(error).toMatchObject({ code: 'Aborted', status: 499, retryable: false });
    expect(openApiCalls(emulator)).toHaveLength(1);
  });

  it('maps an HTML 502 and a malformed 200 to BadGateway', async () => {
    const emulator = await start();
    emulator.fault('pai-eas', { type: 'html-502' });
    await expect(
      createServiceInstanceToken({ ...on(emulator), ...target, retry: false }),
    ).rejects.toMatchObject({ code: 'BadGateway', status: 502, retryable: true });
    emulator.fault('pai-eas', { type: 'status', status: 200, body: { RequestId: 'R-2' } });
    await expect(
      createServiceInstanceToken({ ...on(emulator), ...target, retry: false }),
    ).rejects.toMatchObject({
      code: 'BadGateway',
      status: 502,
      retryable: false,
      requestId: 'R-2',
    });
  });

  it('refuses invalid options with InvalidParameter before any request', async () => {
    const emulator = await start();
    for (const bad of [
      { retry: { maxAttempts: 0 } },
      { region: 'Shanghai' },
      { endpoint: 'ftp://x' },
      { timeoutMs: -1 },
    ]) {
      const error = await createServiceInstanceToken({
        ...on(emulator),
        ...target,
        ...bad,
      } as never).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DashScopeError);
      expect(error).toMatchObject({ code: 'InvalidParameter', status: 400 });
    }
    expect(openApiCalls(emulator)).toHaveLength(0);
  });

  it('is refused a replayed request by the emulator, then succeeds re-signed with a fresh nonce', async () => {
    const emulator = await start();
    let captured: RequestInit['headers'];
    const capture: typeof fetch = (input, init) => {
      captured = init?.headers;
      return fetch(input, init);
    };
    await createServiceInstanceToken({ ...on(emulator), ...target, fetch: capture });
    let replayed = false;
    const replayOnce: typeof fetch = (input, init) => {
      if (replayed) return fetch(input, init);
      replayed = true;
      return fetch(input, { ...init, headers: captured });
    };
    await createServiceInstanceToken({ ...on(emulator), ...target, fetch: replayOnce });
    const calls = openApiCalls(emulator);
    expect(calls.map((r) => r.status)).toEqual([200, 400, 200]);
    expect(calls[1]!.headers['x-acs-signature-nonce']).toBe(
      calls[0]!.headers['x-acs-signature-nonce'],
    );
    expect(new Set(nonces(emulator)).size).toBe(2);
  });

  const mapping: [number, string, Record<string, string>, number, boolean][] = [
    [400, 'SignatureDoesNotMatch', {}, 502, false],
    [400, 'IncompleteSignature', {}, 502, false],
    [404, 'InvalidAccessKeyId.NotFound', {}, 502, false],
    [400, 'InvalidSecurityToken.Expired', {}, 502, false],
    [400, 'InvalidTimeStamp.Expired', {}, 502, true],
    [400, 'SignatureNonceUsed', {}, 502, true],
    [403, 'Forbidden.RAM', {}, 403, false],
    [400, 'Throttling.User', {}, 429, true],
    [503, 'Throttling', {}, 429, true],
    [400, 'QuotaExceeded', { 'x-acs-retry-after': '1000' }, 429, true],
    [404, 'InvalidApi.NotFound', {}, 404, false],
    [400, 'InvalidParameter', {}, 400, false],
    [500, 'InternalError', {}, 502, true],
    [503, 'ServiceUnavailable', {}, 503, true],
  ];
  for (const [httpStatus, code, headers, status, retryable] of mapping) {
    it(`maps HTTP ${httpStatus} ${code} to ${status}, ${retryable ? '' : 'not '}retryable, keeping code and request id`, async () => {
      const emulator = await start();
      emulator.fault('pai-eas', {
        type: 'status',
        status: httpStatus,
        body: { RequestId: 'REQ-1', Code: code, Message: 'm' },
        headers,
      });
      await expect(
        createServiceInstanceToken({ ...on(emulator), ...target, retry: false }),
      ).rejects.toMatchObject({
        code,
        status,
        retryable,
        requestId: 'REQ-1',
        upstreamStatus: httpStatus,
      });
    });
  }

  it('carries the wait of x-acs-retry-after (milliseconds) and Retry-After (seconds)', async () => {
    const emulator = await start();
    emulator.fault('pai-eas', { type: 'throttle', retryAfterSeconds: 1.5 });
    emulator.fault('pai-eas', {
      type: 'status',
      status: 503,
      body: { RequestId: 'R', Code: 'ServiceUnavailable', Message: 'm' },
      headers: { 'Retry-After': '2' },
    });
    for (const seconds of [1.5, 2]) {
      await expect(
        createServiceInstanceToken({ ...on(emulator), ...target, retry: false }),
      ).rejects.toMatchObject({ retryAfterSeconds: seconds });
    }
  });
});
