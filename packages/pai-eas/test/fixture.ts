import {
  DEFAULT_EMULATOR_ACCESS_KEY,
  DEFAULT_EMULATOR_EAS_SERVICE,
  type Emulator,
  type EmulatorOptions,
  startEmulator,
} from '@dashscope-token/emulator';
import { afterEach } from 'vitest';

export const SERVICE = DEFAULT_EMULATOR_EAS_SERVICE;
export const INSTANCE = 'emulator-llm-7b56869574-44nq9';
export const KEY = {
  accessKeyId: DEFAULT_EMULATOR_ACCESS_KEY.accessKeyId,
  accessKeySecret: DEFAULT_EMULATOR_ACCESS_KEY.accessKeySecret,
};
/** Fast retries, so tests that retry stay short. */
export const FAST_RETRY = { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5, maxElapsedMs: 5000 };

const running = new Set<Emulator>();

export async function start(options: EmulatorOptions = {}): Promise<Emulator> {
  const emulator = await startEmulator({ chunkDelayMs: 1, ...options });
  running.add(emulator);
  return emulator;
}

afterEach(async () => {
  await Promise.all([...running].map((e) => e.close()));
  running.clear();
});

/** Client options for `emulator` with the default AccessKey. */
export function on(emulator: Emulator) {
  return { region: 'cn-shanghai', endpoint: emulator.url, credentials: KEY, retry: FAST_RETRY };
}

/** The EAS OpenAPI requests the emulator received. */
export function openApiCalls(emulator: Emulator) {
  return emulator.requests.filter((r) => r.route === 'pai-eas');
}
