import { afterEach, describe, expect, it } from 'vitest';
import { createTokenProvider, type TokenProvider } from '../src/index.js';
import { DEFAULT_EMULATOR_API_KEY as KEY, tokenRequests, useEmulator } from './emulator-fixture.js';

const emulator = useEmulator();
const providers: TokenProvider[] = [];

afterEach(async () => {
  await Promise.all(providers.splice(0).map((p) => p.close()));
});

describe('clock skew', () => {
  for (const offsetSeconds of [120, -120]) {
    it(`places expiry at local request start + TTL (within ~2 s) when the server clock is ${offsetSeconds > 0 ? 'ahead' : 'behind'} by ${Math.abs(offsetSeconds)} s`, async () => {
      emulator().setClockOffset(offsetSeconds);
      let shift = 0;
      const tokens = createTokenProvider({
        apiKey: KEY,
        baseUrl: emulator().url,
        expireInSeconds: 60,
        refreshAheadSeconds: 0,
        minValiditySeconds: 0,
        now: () => Date.now() + shift,
      });
      providers.push(tokens);
      const started = Date.now();
      const first = await tokens.getToken();
      // expires_at is on the server's clock, `offsetSeconds` away from ours.
      expect(Math.abs(first.expiresAt - (started / 1000 + offsetSeconds + 60))).toBeLessThan(3);

      // Still valid ~57.5 s after the request started: the expiry is not placed too early...
      shift = started + 57_500 - Date.now();
      expect(await tokens.getToken()).toBe(first);
      expect(tokenRequests(emulator())).toBe(1);

      // ...and it is over once request start + TTL has passed: never later.
      shift = started + 60_001 - Date.now();
      const second = await tokens.getToken();
      expect(second.token).not.toBe(first.token);
      expect(tokenRequests(emulator())).toBe(2);
    });
  }
});
