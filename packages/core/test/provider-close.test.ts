import { afterEach, describe, expect, it } from 'vitest';
import { createTokenProvider, type TokenProvider } from '../src/index.js';
import {
  DEFAULT_EMULATOR_API_KEY as KEY,
  rejection,
  until,
  useEmulator,
} from './emulator-fixture.js';

const OTHER = 'sk-second-tenant-for-close-0001';
const emulator = useEmulator({ apiKeys: [KEY, OTHER] });
const providers: TokenProvider[] = [];

afterEach(async () => {
  await Promise.all(providers.splice(0).map((p) => p.close()));
});

/** Ref'd timers, and ref'd client sockets connected to the emulator (what keeps a process alive). */
function liveResources(port: number): { timers: number; clientSockets: number } {
  const timers = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  const clientSockets = handles.filter(
    (h) => (h as { remotePort?: number }).remotePort === port,
  ).length;
  return { timers, clientSockets };
}

describe('close', () => {
  it('rejects getToken after close with a clear error', async () => {
    const tokens = createTokenProvider({ apiKey: KEY, baseUrl: emulator().url });
    await tokens.getToken();
    await tokens.close();
    const error = await rejection(tokens.getToken());
    expect(error).toMatchObject({ code: 'ProviderClosed', retryable: false });
    expect(error.message).toMatch(/closed/);
    expect(tokens.stats().size).toBe(0);
    await tokens.close(); // idempotent
  });

  it('leaves no timer or connection keeping the process alive, even with mints in flight', async () => {
    const port = emulator().port;
    const baseline = liveResources(port);
    const tokens = createTokenProvider({
      apiKey: KEY,
      baseUrl: emulator().url,
      retry: { maxAttempts: 5, maxElapsedMs: 60_000 },
    });
    providers.push(tokens);
    await tokens.getToken();

    // One mint waits 30 s to retry after a throttle, another hangs on the wire.
    emulator().fault('tokens', { type: 'throttle', retryAfterSeconds: 30 });
    const retrying = tokens.getToken({ forceRefresh: true });
    await until(() => emulator().requests.length === 2);
    emulator().fault('tokens', { type: 'hang' });
    const hanging = tokens.getToken({ apiKey: OTHER });
    await until(() => emulator().requests.length === 3);

    await tokens.close();
    expect(await rejection(retrying)).toMatchObject({ code: 'ProviderClosed' });
    expect(await rejection(hanging)).toMatchObject({ code: 'ProviderClosed' });

    await until(() => {
      const now = liveResources(port);
      return now.timers <= baseline.timers && now.clientSockets === 0;
    });
  });
});
