/**
 * Backoff: retrying a failed attempt with exponential backoff and full jitter, honouring
 * `Retry-After`, bounded in attempts and in total elapsed time.
 */
import { DashScopeError, isDashScopeError } from './errors.js';
import { unrefTimer } from './timer.js';
import type { RetryOptions } from './types.js';

/** The defaults of {@link RetryOptions}. */
export const DEFAULT_RETRY: Readonly<Required<RetryOptions>> = Object.freeze({
  maxAttempts: 3,
  baseDelayMs: 200,
  maxDelayMs: 5000,
  maxElapsedMs: 15000,
});

/** A single attempt: what `retry: false` means. */
export const NO_RETRY: Readonly<Required<RetryOptions>> = Object.freeze({
  ...DEFAULT_RETRY,
  maxAttempts: 1,
});

function invalid(message: string): DashScopeError {
  return new DashScopeError({ code: 'InvalidParameter', status: 400, retryable: false, message });
}

/**
 * Fills in and checks a retry policy.
 * @throws DashScopeError `InvalidParameter`
 *
 * @internal Shared with the sibling packages through `@dashscope-token/core/neutral`.
 */
export function resolveRetryOptions(
  retry: RetryOptions | false | undefined,
): Readonly<Required<RetryOptions>> {
  if (retry === false) return NO_RETRY;
  if (retry === undefined) return DEFAULT_RETRY;
  if (retry === null || typeof retry !== 'object') {
    throw invalid('Invalid retry: expected an object of retry options or false.');
  }
  const resolved = { ...DEFAULT_RETRY };
  for (const name of Object.keys(DEFAULT_RETRY) as (keyof RetryOptions)[]) {
    const value = retry[name];
    if (value === undefined) continue;
    const ok =
      typeof value === 'number' &&
      Number.isFinite(value) &&
      (name === 'maxAttempts' ? Number.isInteger(value) && value >= 1 : value >= 0);
    if (!ok) {
      throw invalid(
        `Invalid retry.${name} ${String(value)}: expected ${name === 'maxAttempts' ? 'an integer >= 1' : 'a number of milliseconds >= 0'}.`,
      );
    }
    resolved[name] = value;
  }
  return Object.freeze(resolved);
}

/**
 * Milliseconds to wait before attempt `attempt + 1` after attempt `attempt` (1-based) failed:
 * `Retry-After` when the error carries one, else a random delay in
 * `[0, min(maxDelayMs, baseDelayMs * 2^(attempt-1))]` (full jitter).
 */
export function backoffDelay(
  attempt: number,
  error: unknown,
  policy: Readonly<Required<RetryOptions>>,
  random: () => number = Math.random,
): number {
  const retryAfter = isDashScopeError(error) ? error.retryAfterSeconds : undefined;
  if (retryAfter !== undefined && retryAfter >= 0) return retryAfter * 1000;
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.floor(random() * ceiling);
}

/**
 * Resolves after `ms`, or rejects with `signal.reason` (or an `Aborted` DashScopeError) when the
 * signal fires. The timer is unref'd: a pending sleep does not keep the process alive.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortReason(signal));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortReason(signal as AbortSignal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    unrefTimer(timer);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function abortReason(signal: AbortSignal): unknown {
  return isDashScopeError(signal.reason)
    ? signal.reason
    : new DashScopeError({
        code: 'Aborted',
        status: 499,
        retryable: false,
        message: 'Aborted while waiting to retry.',
      });
}

/** Hooks and environment of {@link retrying}. */
export interface RetryContext {
  /** Stops waiting between attempts (and is checked before each attempt). */
  signal?: AbortSignal;
  /** Called after each failed attempt (1-based), retried or not. */
  onAttemptError?: (error: unknown, attempt: number) => void;
  /** Random number in [0, 1) for the jitter. @default Math.random */
  random?: () => number;
  /** Monotonic millisecond clock for the elapsed-time bound. @default performance.now */
  clock?: () => number;
}

/**
 * Runs `attempt` until it succeeds, fails with an error that is not `retryable`, runs out of
 * attempts, or the next wait would end past `maxElapsedMs`; then rejects with the last error.
 *
 * @internal Shared with the sibling packages through `@dashscope-token/core/neutral`.
 */
export async function retrying<T>(
  attempt: (attemptNumber: number) => Promise<T>,
  policy: Readonly<Required<RetryOptions>>,
  context: RetryContext = {},
): Promise<T> {
  const clock = context.clock ?? (() => performance.now());
  const started = clock();
  for (let n = 1; ; n++) {
    if (context.signal?.aborted) throw abortReason(context.signal);
    try {
      return await attempt(n);
    } catch (error) {
      context.onAttemptError?.(error, n);
      const retryable = isDashScopeError(error) && error.retryable;
      if (!retryable || n >= policy.maxAttempts) throw error;
      const delay = backoffDelay(n, error, policy, context.random);
      if (clock() - started + delay > policy.maxElapsedMs) throw error;
      await sleep(delay, context.signal);
    }
  }
}
