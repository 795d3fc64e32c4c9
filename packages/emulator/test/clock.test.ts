import { describe, expect, it } from 'vitest';
import { bearer, mint, PATHS, start } from './helpers.js';

describe("the emulator's clock", () => {
  it('puts the offset clock in the Date header and in expires_at', async () => {
    const emulator = await start({ clockOffsetSeconds: 3600 });
    const local = Date.now() / 1000;
    const res = await fetch(emulator.url + PATHS.tokens, { method: 'POST', headers: bearer() });
    const date = Date.parse(res.headers.get('date') ?? '') / 1000;
    // Generous bounds: only the hour of skew matters.
    expect(date - local).toBeGreaterThan(3600 - 30);
    expect(date - local).toBeLessThan(3600 + 30);
    const { expires_at } = (await res.json()) as { expires_at: number };
    expect(expires_at - local).toBeGreaterThan(3660 - 30);
    expect(expires_at - local).toBeLessThan(3660 + 30);
  });

  it('moves with setClockOffset, also backwards', async () => {
    const emulator = await start();
    const t0 = emulator.now();
    emulator.setClockOffset(-7200);
    expect(emulator.now()).toBeLessThan(t0 - 7100);
    const { expires_at } = await mint(emulator, 60);
    expect(expires_at).toBeLessThan(Date.now() / 1000 - 7000);
    expect(() => emulator.setClockOffset(Number.NaN)).toThrow(RangeError);
  });

  it('sends a Date header on every answer, 404s included', async () => {
    const emulator = await start({ clockOffsetSeconds: -86_400 });
    const res = await fetch(`${emulator.url}/nope`);
    expect(res.status).toBe(404);
    const date = Date.parse(res.headers.get('date') ?? '') / 1000;
    expect(Date.now() / 1000 - date).toBeGreaterThan(86_400 - 30);
  });
});
