/**
 * The promise of the README: a key handed to a browser is never the key injected into proxied
 * calls, also when the app brings its own providers; and the options have one place each.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  createDashScopeHandler,
  createTokenProvider,
  type TokenProvider,
} from '../../src/index.js';
import {
  CHAT_BODY,
  CHAT_PATH,
  type Harness,
  json,
  leakedKeys,
  PERMANENT_KEY,
  send,
  startHarness,
} from './harness.js';

let h: Harness | undefined;
const providers: TokenProvider[] = [];
afterEach(async () => {
  await h?.close();
  h = undefined;
  await Promise.all(providers.splice(0).map((p) => p.close()));
});
afterAll(() => {
  expect(leakedKeys()).toEqual([]);
});

function injected(harness: Harness): string | undefined {
  const chat = harness.emulator.requests.find((r) => r.route === 'chat');
  const auth = chat?.headers.authorization;
  return typeof auth === 'string' ? auth.replace(/^Bearer /, '') : undefined;
}

describe('token route and proxy keys', () => {
  it('vends browsers a key that is not the proxy key, with its own TTL', async () => {
    h = await startHarness();
    expect((await send(h.url, 'POST', CHAT_PATH, json(CHAT_BODY))).status).toBe(200);
    const vended = JSON.parse((await send(h.url, 'POST', '/dashscope/token')).text).token;
    expect(vended).toMatch(/^st-/);
    expect(vended).not.toBe(injected(h));
    expect(
      h.emulator.requests
        .filter((r) => r.route === 'tokens')
        .map((r) => r.path)
        .sort(),
    ).toEqual(['/api/v1/tokens?expire_in_seconds=1800', '/api/v1/tokens?expire_in_seconds=60']);
  });

  it('with provider: { proxy } the token route still mints its own keys', async () => {
    h = await startHarness({
      handler: (emulator) => {
        const proxy = createTokenProvider({
          apiKey: PERMANENT_KEY,
          baseUrl: emulator.url,
          expireInSeconds: 1800,
          retry: false,
        });
        providers.push(proxy);
        return { provider: { proxy } };
      },
    });
    expect((await send(h.url, 'POST', CHAT_PATH, json(CHAT_BODY))).status).toBe(200);
    const vended = JSON.parse((await send(h.url, 'POST', '/dashscope/token')).text).token;
    expect(vended).not.toBe(injected(h));
    expect(h.handler.provider).toBe(providers[0]);
    expect(h.handler.stats().routeTokens?.mints).toBe(1);
  });

  it('refuses one provider for both, and a bare provider, with InvalidParameter', () => {
    const shared = createTokenProvider({ apiKey: PERMANENT_KEY, baseUrl: 'http://127.0.0.1:9' });
    providers.push(shared);
    expect(() =>
      createDashScopeHandler({ provider: { proxy: shared, tokenRoute: shared } }),
    ).toThrow(expect.objectContaining({ code: 'InvalidParameter', status: 400 }));
    expect(() =>
      createDashScopeHandler({ provider: shared as unknown as { proxy: TokenProvider } }),
    ).toThrow(expect.objectContaining({ code: 'InvalidParameter' }));
  });
});

describe('options in their place', () => {
  it('takes proxy.expireInSeconds and the deprecated top-level expireInSeconds alike', async () => {
    h = await startHarness({ handler: { proxy: { expireInSeconds: 900 } } });
    await send(h.url, 'POST', CHAT_PATH, json(CHAT_BODY));
    await h.close();
    const first = h.emulator.requests.find((r) => r.route === 'tokens');
    expect(first?.path).toBe('/api/v1/tokens?expire_in_seconds=900');
    h = await startHarness({ handler: { expireInSeconds: 600 } });
    await send(h.url, 'POST', CHAT_PATH, json(CHAT_BODY));
    const second = h.emulator.requests.find((r) => r.route === 'tokens');
    expect(second?.path).toBe('/api/v1/tokens?expire_in_seconds=600');
  });

  it('refuses a deprecated top-level option that contradicts its new place', () => {
    expect(() =>
      createDashScopeHandler({
        apiKey: PERMANENT_KEY,
        expireInSeconds: 600,
        proxy: { expireInSeconds: 900 },
      }),
    ).toThrow(expect.objectContaining({ code: 'InvalidParameter' }));
    expect(() =>
      createDashScopeHandler({
        apiKey: PERMANENT_KEY,
        allowModels: ['qwen-plus'],
        proxy: { allowModels: ['qwen-max'] },
      }),
    ).toThrow(expect.objectContaining({ code: 'InvalidParameter' }));
  });

  it('checks proxy.allowModels', async () => {
    h = await startHarness({ handler: { proxy: { allowModels: ['qwen-plus'] } } });
    const refused = await send(h.url, 'POST', CHAT_PATH, json({ ...CHAT_BODY, model: 'qwen-max' }));
    expect(refused.status).toBe(403);
    expect((await send(h.url, 'POST', CHAT_PATH, json(CHAT_BODY))).status).toBe(200);
  });
});
