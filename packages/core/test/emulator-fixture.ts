/**
 * Starts one emulator per test file and resets its faults, clock, latency and recorded
 * requests between tests.
 */
import {
  DEFAULT_EMULATOR_API_KEY,
  type Emulator,
  type EmulatorOptions,
  startEmulator,
} from '@dashscope-token/emulator';
import { afterAll, afterEach, beforeAll } from 'vitest';

export { DEFAULT_EMULATOR_API_KEY };

/** Registers the hooks; call the returned function inside a test to get the running emulator. */
export function useEmulator(options: EmulatorOptions = {}): () => Emulator {
  let emulator: Emulator | undefined;
  beforeAll(async () => {
    emulator = await startEmulator(options);
  });
  afterEach(() => {
    if (emulator === undefined) return;
    emulator.clearFaults();
    emulator.clearRequests();
    emulator.setClockOffset(options.clockOffsetSeconds ?? 0);
    emulator.setLatency(options.latencyMs ?? 0);
  });
  afterAll(async () => {
    await emulator?.close();
  });
  return () => {
    if (emulator === undefined) throw new Error('the emulator is not running');
    return emulator;
  };
}

/** Requests the emulator received on the token route. */
export function tokenRequests(emulator: Emulator): number {
  return emulator.requests.filter((r) => r.route === 'tokens').length;
}

/** Resolves once `predicate` holds, polling every 10 ms; rejects after `timeoutMs`. */
export async function until(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The rejection of `promise` (fails the test if it resolves). */
export async function rejection(
  promise: Promise<unknown>,
  label?: string,
): Promise<Error & Record<string, unknown>> {
  let value: unknown;
  try {
    value = await promise;
  } catch (error) {
    return error as Error & Record<string, unknown>;
  }
  const what = label === undefined ? '' : ` (${label})`;
  throw new Error(`expected the promise to reject${what}; it resolved ${JSON.stringify(value)}`);
}
