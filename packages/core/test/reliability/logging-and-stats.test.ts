/**
 * The handler's `logger` option (one line per answered request, warnings for failed
 * background refreshes, never a header value, query, body or key) and `stats()`.
 */
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { DashScopeLogger } from '../../src/index.js';
import {
  CHAT_BODY,
  CHAT_PATH,
  type Harness,
  json,
  leakedKeys,
  PERMANENT_KEY,
  send,
  startHarness,
} from '../proxy/harness.js';

interface Line {
  level: string;
  message: string;
  fields: Record<string, unknown>;
}

function recorder(): { logger: DashScopeLogger; lines: Line[] } {
  const lines: Line[] = [];
  const at =
    (level: string) =>
    (message: string, fields?: Record<string, unknown>): void => {
      lines.push({ level, message, fields: fields ?? {} });
    };
  return { logger: { info: at('info'), warn: at('warn'), error: at('error') }, lines };
}

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
  expect(leakedKeys()).toEqual([]);
});

describe('logger', () => {
  it('logs one info line per answered request: method, path without query, status, duration, request id', async () => {
    const { logger, lines } = recorder();
    h = await startHarness({ handler: { logger } });
    const secretQuery = 'api_key=st-query-secret-123456';
    const token = await send(h.url, 'POST', '/dashscope/token');
    const chat = await send(h.url, 'POST', `${CHAT_PATH}?${secretQuery}`, {
      ...json(CHAT_BODY),
      headers: {
        'content-type': 'application/json',
        authorization: 'Bearer client-bearer-value-777',
        cookie: 'sid=client-cookie-value-888',
      },
    });
    const missing = await send(h.url, 'GET', '/dashscope/nowhere');
    await send(h.url, 'GET', '/not-ours');
    await expect.poll(() => lines.length).toBe(3);

    expect(lines.map((l) => [l.level, l.fields.method, l.fields.path, l.fields.status])).toEqual([
      ['info', 'POST', '/dashscope/token', 200],
      ['info', 'POST', CHAT_PATH, 200],
      ['info', 'GET', '/dashscope/nowhere', 404],
    ]);
    expect(lines[0]!.fields.requestId).toBe(token.headers['x-request-id']);
    // A proxied answer carries Model Studio's request id.
    expect(lines[1]!.fields.requestId).toBe(chat.headers['x-request-id']);
    expect(lines[1]!.fields.requestId).toBe(
      h.emulator.requests.find((r) => r.route === 'chat')?.id,
    );
    expect(lines[2]!.fields.requestId).toBe(missing.headers['x-request-id']);
    for (const line of lines) {
      expect(typeof line.fields.durationMs).toBe('number');
      expect(line.fields.clientClosed).toBe(false);
      expect(line.message).toContain(String(line.fields.status));
    }
    const all = JSON.stringify(lines);
    for (const secret of [
      'query-secret',
      'client-bearer-value',
      'client-cookie-value',
      'Hello there',
      PERMANENT_KEY.slice(3, 11),
    ]) {
      expect(all).not.toContain(secret);
    }
    expect(all).not.toMatch(/\bst-[A-Za-z0-9]{8,}/);
  });

  it('marks a request whose client left before the answer ended', async () => {
    const { logger, lines } = recorder();
    h = await startHarness({ handler: { logger }, emulator: { chunkDelayMs: 50 } });
    const req = http.request(`${h.url}${CHAT_PATH}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
    });
    req.on('error', () => {});
    req.end(JSON.stringify({ ...CHAT_BODY, stream: true }));
    await new Promise<void>((resolve) =>
      req.on('response', (res) => res.once('data', () => resolve())),
    );
    req.destroy();
    await expect.poll(() => lines.length).toBe(1);
    expect(lines[0]!.fields).toMatchObject({ status: 200, clientClosed: true });
    expect(lines[0]!.message).toContain('(client closed)');
  });

  it('warns, without the key, when a background refresh fails', async () => {
    const { logger, lines } = recorder();
    h = await startHarness({
      handler: { logger, tokenRoute: { expireInSeconds: 4, minValiditySeconds: 1 } },
    });
    expect((await send(h.url, 'POST', '/dashscope/token')).status).toBe(200);
    // Past half of the key's life and within the refresh window: the next call refreshes in
    // the background and is served the cached key.
    await new Promise((resolve) => setTimeout(resolve, 1600));
    h.emulator.fault(
      'tokens',
      {
        type: 'status',
        status: 500,
        body: { code: 'SystemError', message: `down: ${PERMANENT_KEY}` },
      },
      Number.POSITIVE_INFINITY,
    );
    expect((await send(h.url, 'POST', '/dashscope/token')).status).toBe(200);
    await expect.poll(() => lines.filter((l) => l.level === 'warn').length).toBe(1);
    const warning = lines.find((l) => l.level === 'warn')!;
    expect(warning.message).toMatch(/^Refreshing a temporary key failed: SystemError/);
    expect(warning.fields).toMatchObject({ code: 'SystemError', status: 502 });
    expect(JSON.stringify(warning)).not.toContain(PERMANENT_KEY.slice(3, 11));
    h.emulator.clearFaults();
  });

  it('keeps serving when the logger throws, and logs nothing without a logger', async () => {
    h = await startHarness({
      handler: {
        logger: {
          info: () => {
            throw new Error('logger broke');
          },
        },
      },
    });
    expect((await send(h.url, 'POST', '/dashscope/token')).status).toBe(200);
    expect((await send(h.url, 'POST', CHAT_PATH, json(CHAT_BODY))).status).toBe(200);
  });
});

describe('stats()', () => {
  it('reports requests in progress, the upstream pool and the token caches', async () => {
    h = await startHarness();
    const idle = h.handler.stats();
    expect(idle).toMatchObject({
      activeRequests: 0,
      upstream: { connected: 0, pending: 0, running: 0, queued: 0 },
      proxyTokens: { mints: 0 },
      routeTokens: { mints: 0 },
    });

    h.emulator.fault('chat', { type: 'hang' });
    const req = http.request(`${h.url}${CHAT_PATH}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
    });
    req.on('error', () => {});
    req.end(JSON.stringify(CHAT_BODY));
    await h.emulator.waitForRequest((r) => r.route === 'chat');
    const busy = h.handler.stats();
    expect(busy.activeRequests).toBe(1);
    expect(busy.upstream).toMatchObject({ connected: 1, running: 1 });
    expect(busy.proxyTokens).toMatchObject({ misses: 1, mints: 1 });

    req.destroy();
    await expect.poll(() => h!.handler.stats().activeRequests).toBe(0);
    // undici frees the pool slot a moment after the handler has finished with the request.
    await expect.poll(() => h!.handler.stats().upstream).toMatchObject({ running: 0, pending: 0 });
    await send(h.url, 'POST', '/dashscope/token');
    expect(h.handler.stats().routeTokens).toMatchObject({ misses: 1, mints: 1 });
  });
});
