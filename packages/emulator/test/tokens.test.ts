import { describe, expect, it } from 'vitest';
import { bearer, KEY, mint, PATHS, postJson, start } from './helpers.js';

describe('POST /api/v1/tokens', () => {
  it('mints an st- key that expires 60 s from the emulator clock by default', async () => {
    const emulator = await start();
    const before = Math.floor(emulator.now());
    const res = await fetch(emulator.url + PATHS.tokens, { method: 'POST', headers: bearer() });
    const after = Math.floor(emulator.now());
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const body = (await res.json()) as { token: string; expires_at: number };
    expect(Object.keys(body).sort()).toEqual(['expires_at', 'token']);
    expect(body.token).toMatch(/^st-[A-Za-z0-9]{32,}$/);
    expect(Number.isInteger(body.expires_at)).toBe(true);
    expect(body.expires_at).toBeGreaterThanOrEqual(before + 60);
    expect(body.expires_at).toBeLessThanOrEqual(after + 60);
    expect(emulator.stats().tokensIssued).toBe(1);
  });

  it.each([
    ['1', 1],
    ['1800', 1800],
    ['300', 300],
  ])('accepts expire_in_seconds=%s', async (raw, ttl) => {
    const emulator = await start();
    const before = Math.floor(emulator.now());
    const res = await fetch(`${emulator.url}${PATHS.tokens}?expire_in_seconds=${raw}`, {
      method: 'POST',
      headers: bearer(),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { expires_at: number };
    expect(body.expires_at - before).toBeGreaterThanOrEqual(ttl);
    expect(body.expires_at - before).toBeLessThanOrEqual(ttl + 2);
  });

  it.each([
    ['0', 'expire_in_seconds=0'],
    ['1801', 'expire_in_seconds=1801'],
    ['1.5', 'expire_in_seconds=1.5'],
    ['abc', 'expire_in_seconds=abc'],
    ['empty', 'expire_in_seconds='],
    ['negative', 'expire_in_seconds=-5'],
    ['exponent', 'expire_in_seconds=1e3'],
    ['padded', 'expire_in_seconds=%2060'],
    ['huge', 'expire_in_seconds=99999999999999999999'],
    ['repeated', 'expire_in_seconds=60&expire_in_seconds=60'],
  ])('rejects a %s expire_in_seconds with 400 InvalidParameter', async (_name, query) => {
    const emulator = await start();
    const res = await fetch(`${emulator.url}${PATHS.tokens}?${query}`, {
      method: 'POST',
      headers: bearer(),
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body.code).toBe('InvalidParameter');
    expect(body.message).toMatch(/expire_in_seconds/);
    expect(body.request_id).toBe(res.headers.get('x-request-id'));
    expect(emulator.stats().tokensIssued).toBe(0);
  });

  it.each([
    ['no Authorization header', {}],
    ['an unknown key', bearer('sk-unknown-key-000000000000000')],
    ['a non-Bearer scheme', { authorization: `Basic ${KEY}` }],
    ['an empty Bearer', { authorization: 'Bearer ' }],
  ])('answers 401 InvalidApiKey for %s', async (_name, headers) => {
    const emulator = await start();
    const res = await fetch(emulator.url + PATHS.tokens, { method: 'POST', headers });
    expect(res.status).toBe(401);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toEqual({
      code: 'InvalidApiKey',
      message: 'Invalid API-key provided.',
      request_id: res.headers.get('x-request-id'),
    });
  });

  it('answers 401 for a revoked key and accepts an added one', async () => {
    const emulator = await start();
    const other = 'sk-other-key-1111111111111111';
    emulator.addApiKey(other);
    expect(emulator.apiKeys).toEqual([KEY, other]);
    const ok = await fetch(emulator.url + PATHS.tokens, { method: 'POST', headers: bearer(other) });
    expect(ok.status).toBe(200);
    emulator.revokeApiKey(other);
    const revoked = await fetch(emulator.url + PATHS.tokens, {
      method: 'POST',
      headers: bearer(other),
    });
    expect(revoked.status).toBe(401);
    expect(((await revoked.json()) as { code: string }).code).toBe('InvalidApiKey');
  });

  it('accepts only the configured apiKeys', async () => {
    const emulator = await start({ apiKeys: ['sk-listed-key-222222222222222'] });
    const res = await fetch(emulator.url + PATHS.tokens, { method: 'POST', headers: bearer() });
    expect(res.status).toBe(401);
    const ok = await fetch(emulator.url + PATHS.tokens, {
      method: 'POST',
      headers: bearer('sk-listed-key-222222222222222'),
    });
    expect(ok.status).toBe(200);
  });

  it('refuses to mint with a temporary key by default', async () => {
    const emulator = await start();
    const { token } = await mint(emulator);
    const res = await fetch(emulator.url + PATHS.tokens, {
      method: 'POST',
      headers: bearer(token),
    });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { code: string }).code).toBe('InvalidApiKey');
  });

  it('mints with a temporary key when allowTemporaryKeyMinting is set', async () => {
    const emulator = await start({ allowTemporaryKeyMinting: true });
    const { token } = await mint(emulator);
    const res = await fetch(emulator.url + PATHS.tokens, {
      method: 'POST',
      headers: bearer(token),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { token: string }).token).toMatch(/^st-/);
  });

  it('mints distinct tokens', async () => {
    const emulator = await start();
    const tokens = await Promise.all([mint(emulator), mint(emulator), mint(emulator)]);
    expect(new Set(tokens.map((t) => t.token)).size).toBe(3);
    expect(emulator.stats().tokensIssued).toBe(3);
  });

  it('ignores a request body on the token route', async () => {
    const emulator = await start();
    const res = await postJson(emulator, `${PATHS.tokens}?expire_in_seconds=10`, {
      anything: true,
    });
    expect(res.status).toBe(200);
  });
});
