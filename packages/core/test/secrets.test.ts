import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  createTokenProvider,
  DashScopeError,
  type MintTokenOptions,
  mintToken,
  type TokenProviderOptions,
} from '../src/index.js';
import { rejection, until, useEmulator } from './emulator-fixture.js';

/** A permanent key we can recognise anywhere, also by any 8-character fragment. */
const SECRET = 'sk-Zq7-Recognisable-PermanentKey-0042';
const emulator = useEmulator({ apiKeys: [SECRET] });

/** Every 8+ character fragment of `SECRET` that is found in `text`. */
function leaks(text: string): string[] {
  const found: string[] = [];
  for (let i = 0; i + 8 <= SECRET.length; i++) {
    const fragment = SECRET.slice(i, i + 8);
    if (text.includes(fragment)) found.push(fragment);
  }
  return found;
}

function expectNoKey(label: string, error: unknown): void {
  expect(error, label).toBeInstanceOf(DashScopeError);
  const err = error as DashScopeError;
  const views: Record<string, string> = {
    message: err.message,
    string: String(err),
    json: JSON.stringify(err),
    stack: err.stack ?? '',
    inspect: inspect(err, { depth: 5 }),
  };
  for (const [view, text] of Object.entries(views)) {
    expect(leaks(text), `${label} (${err.code}): key fragment in ${view}`).toEqual([]);
  }
}

function mint(opts: Partial<MintTokenOptions> = {}): Promise<unknown> {
  return mintToken({ apiKey: SECRET, baseUrl: emulator().url, ...opts });
}

describe('the permanent key never appears in an error', () => {
  it('on every error path of mintToken', async () => {
    const paths: [string, () => Promise<unknown>][] = [
      ['invalid expireInSeconds', () => mint({ expireInSeconds: 0 })],
      ['key with a newline', () => mint({ apiKey: `${SECRET}\n` })],
      [
        'key inside a malformed baseUrl',
        () => mint({ baseUrl: `https://gw.example/?key=${SECRET}` }),
      ],
      ['key inside baseUrl credentials', () => mint({ baseUrl: `https://u:${SECRET}@gw.example` })],
      ['unknown region', () => mint({ baseUrl: undefined, region: SECRET as 'cn-beijing' })],
      ['invalid timeoutMs', () => mint({ timeoutMs: -1 })],
      ['pre-aborted signal', () => mint({ signal: AbortSignal.abort() })],
      [
        'aborted mid-request',
        async () => {
          emulator().fault('tokens', { type: 'hang' });
          emulator().clearRequests();
          const controller = new AbortController();
          // Abort once the request has arrived: a request aborted on a timer can still reach
          // the emulator later and take the next path's fault.
          const minting = mint({ signal: controller.signal });
          await emulator().waitForRequest((r) => r.route === 'tokens');
          controller.abort();
          return minting;
        },
      ],
      [
        'timeout',
        () => {
          emulator().fault('tokens', { type: 'hang' });
          return mint({ timeoutMs: 200 });
        },
      ],
      ['connection refused', () => mint({ baseUrl: 'http://127.0.0.1:1' })],
    ];
    const faults = [
      { type: 'invalid-api-key' },
      { type: 'throttle', retryAfterSeconds: 3 },
      { type: 'system-error' },
      { type: 'html-502' },
      { type: 'malformed-json' },
      { type: 'reset' },
      {
        type: 'status',
        status: 401,
        body: {
          code: 'InvalidApiKey',
          message: `Invalid API-key provided: ${SECRET}`,
          request_id: SECRET,
        },
      },
      {
        type: 'status',
        status: 400,
        body: { code: SECRET, message: `bad key ${SECRET.slice(3)}` },
      },
      {
        type: 'status',
        status: 500,
        body: `<html>${SECRET}</html>`,
        headers: { 'content-type': 'text/html', 'x-request-id': SECRET },
      },
      { type: 'status', status: 200, body: { token: '', message: SECRET, request_id: SECRET } },
      { type: 'status', status: 200, body: { token: 'st-x', expires_at: 1, request_id: SECRET } },
      { type: 'status', status: 200, body: `{"token":"${SECRET}` },
      { type: 'status', status: 200, body: SECRET.repeat(3000) },
    ] as const;
    for (const fault of faults) {
      paths.push([
        `fault ${JSON.stringify(fault).slice(0, 60)}`,
        () => {
          emulator().fault('tokens', fault as never);
          return mint();
        },
      ]);
    }
    for (const [label, run] of paths) {
      const error = await rejection(run(), label);
      expectNoKey(label, error);
      emulator().clearFaults();
    }
  });

  it('on every error path of the token provider', async () => {
    const errors: [string, unknown][] = [];
    const reported: DashScopeError[] = [];
    const base: TokenProviderOptions = {
      apiKey: SECRET,
      baseUrl: emulator().url,
      retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 1 },
      onRefreshError: (e) => reported.push(e),
    };
    const capture = async (label: string, run: () => Promise<unknown>): Promise<void> => {
      errors.push([label, await rejection(run(), label)]);
    };
    const construct = (label: string, opts: TokenProviderOptions): void => {
      try {
        createTokenProvider(opts);
      } catch (error) {
        errors.push([label, error]);
        return;
      }
      throw new Error(`${label}: expected createTokenProvider to throw`);
    };

    construct('baseUrl carrying the key', { ...base, baseUrl: `https://gw.example/?k=${SECRET}` });
    construct('TTL out of range', { ...base, expireInSeconds: 5000 });

    const tokens = createTokenProvider(base);
    await capture('minValiditySeconds too large', () =>
      tokens.getToken({ minValiditySeconds: 999 }),
    );
    await capture('aborted wait', () => tokens.getToken({ signal: AbortSignal.abort() }));
    emulator().fault('tokens', { type: 'system-error' }, 2);
    await capture('retries exhausted', () => tokens.getToken());
    emulator().fault('tokens', { type: 'hang' });
    const aborting = createTokenProvider({ ...base, retry: false });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    await capture('aborted while a mint is in flight', () =>
      aborting.getToken({ signal: controller.signal }),
    );
    await aborting.close();
    emulator().clearFaults();
    emulator().fault('tokens', {
      type: 'status',
      status: 401,
      body: { code: 'InvalidApiKey', message: `revoked: ${SECRET}`, request_id: SECRET },
    });
    await capture('invalid key', () => tokens.getToken({ forceRefresh: true }));
    await capture('invalid key, negative cache', () => tokens.getToken());
    await capture('key with bad characters', () => tokens.getToken({ apiKey: `${SECRET} x` }));

    // A background refresh that fails is reported, not thrown.
    let shift = 0;
    const refreshing = createTokenProvider({
      ...base,
      expireInSeconds: 10,
      refreshAheadSeconds: 5,
      minValiditySeconds: 1,
      now: () => Date.now() + shift,
    });
    await refreshing.getToken();
    emulator().fault(
      'tokens',
      { type: 'status', status: 500, body: { code: 'SystemError', message: SECRET } },
      2,
    );
    shift = 6000;
    await refreshing.getToken();
    await until(() => reported.length >= 1);
    await refreshing.close();
    await capture('closed', () => refreshing.getToken());

    const customThrows = createTokenProvider({
      ...base,
      mint: async () => {
        throw new Error(`custom mint failed for ${SECRET}`);
      },
    });
    await capture('custom mint throws', () => customThrows.getToken());
    const customBad = createTokenProvider({
      ...base,
      mint: async () => ({ token: '', expiresAt: 0 }),
    });
    await capture('custom mint returns junk', () => customBad.getToken());
    const tooShort = createTokenProvider({ ...base, expireInSeconds: 2, minValiditySeconds: 1.9 });
    await capture('fresh token too short', () => tooShort.getToken());

    await Promise.all([tokens, customThrows, customBad, tooShort].map((p) => p.close()));
    for (const error of reported) errors.push(['reported to onRefreshError', error]);
    expect(errors.length).toBeGreaterThanOrEqual(14);
    for (const [label, error] of errors) expectNoKey(label, error);
  });
});
