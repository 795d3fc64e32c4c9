import { describe, expect, it } from 'vitest';
import { DashScopeError } from '../src/index.js';
import { backoffDelay, DEFAULT_RETRY, resolveRetryOptions, retrying, sleep } from '../src/retry.js';

function retryable(extra: { retryAfterSeconds?: number } = {}): DashScopeError {
  return new DashScopeError({
    code: 'SystemError',
    status: 502,
    retryable: true,
    message: 'x',
    ...extra,
  });
}

describe('backoff', () => {
  it('draws full-jitter delays under an exponential ceiling capped by maxDelayMs', () => {
    const policy = resolveRetryOptions({ baseDelayMs: 100, maxDelayMs: 1000 });
    expect(backoffDelay(1, retryable(), policy, () => 0.999)).toBe(99);
    expect(backoffDelay(3, retryable(), policy, () => 0.5)).toBe(200);
    expect(backoffDelay(10, retryable(), policy, () => 0.999)).toBe(999);
    expect(backoffDelay(2, retryable(), policy, () => 0)).toBe(0);
  });

  it('uses Retry-After instead of the backoff when the error carries one', () => {
    expect(backoffDelay(1, retryable({ retryAfterSeconds: 2 }), DEFAULT_RETRY)).toBe(2000);
  });

  it('defaults to 3 attempts, 200 ms base, 5 s cap, 15 s in all; false means one attempt', () => {
    expect(resolveRetryOptions(undefined)).toEqual({
      maxAttempts: 3,
      baseDelayMs: 200,
      maxDelayMs: 5000,
      maxElapsedMs: 15000,
    });
    expect(resolveRetryOptions(false).maxAttempts).toBe(1);
  });

  it('stops at the first error that is not retryable', async () => {
    let calls = 0;
    const failure = new DashScopeError({
      code: 'InvalidApiKey',
      status: 401,
      retryable: false,
      message: 'no',
    });
    await expect(
      retrying(async () => {
        calls++;
        throw failure;
      }, DEFAULT_RETRY),
    ).rejects.toBe(failure);
    expect(calls).toBe(1);
  });

  it('aborts a sleep when its signal fires', async () => {
    const controller = new AbortController();
    const sleeping = sleep(60_000, controller.signal);
    controller.abort();
    await expect(sleeping).rejects.toMatchObject({ code: 'Aborted' });
  });
});
