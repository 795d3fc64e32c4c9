/**
 * Hardening of issue 16 that the attack corpus cannot show (the corpus checks that nothing
 * reaches Model Studio; these check what does), on every front door: Express 5, Fastify 4 and
 * 5, plain node:http and the fetch handler.
 */
import net from 'node:net';
import { type Emulator, startEmulator } from '@dashscope-token/emulator';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type App,
  FRONT_DOORS,
  PERMANENT_KEYS,
  sendRaw,
  startEveryFrontDoor,
  startFetchApp,
  startNodeApp,
} from './apps.js';

let emulator: Emulator;
const apps: App[] = [];

beforeAll(async () => {
  emulator = await startEmulator({ apiKeys: [...PERMANENT_KEYS] });
  apps.push(...(await startEveryFrontDoor(emulator)));
});
beforeEach(() => {
  emulator.clearRequests();
});
afterAll(async () => {
  await Promise.all(apps.map((app) => app.close()));
  await emulator.close();
});

/** The front doors whose options a test sets itself. */
const NODE_AND_FETCH = [
  ['node:http', startNodeApp],
  ['fetch', startFetchApp],
] as const;

describe.each(FRONT_DOORS)('%s', (server) => {
  const app = () => apps.find((a) => a.name === server)!;

  it('forwards request headers on an allow-list: target rewrites, method overrides and X-Api-Key never reach Model Studio', async () => {
    const answer = await sendRaw(
      app().port,
      [
        'GET /dashscope/compatible-mode/v1/models HTTP/1.1',
        'Host: 127.0.0.1',
        'X-Original-URL: /api/v1/tokens',
        'X-Rewrite-URL: /api/v1/tokens',
        'X-HTTP-Method-Override: POST',
        'X-Api-Key: sk-client-supplied',
        'X-Internal-Secret: app-only',
        'User-Agent: OpenAI/JS 5.0.0',
        'Accept: application/json',
        'X-DashScope-DataInspection: enable',
        'OpenAI-Beta: assistants=v2',
        'X-Stainless-Lang: js',
        'Connection: close',
        '',
        '',
      ].join('\r\n'),
    );
    expect(answer.status).toBe(200);
    const models = emulator.requests.filter((r) => r.route === 'models');
    expect(models).toHaveLength(1);
    const headers = models[0]!.headers;
    for (const name of [
      'x-original-url',
      'x-rewrite-url',
      'x-http-method-override',
      'x-api-key',
      'x-internal-secret',
    ]) {
      expect(headers[name], name).toBeUndefined();
    }
    expect(headers).toMatchObject({
      'user-agent': 'OpenAI/JS 5.0.0',
      accept: 'application/json',
      'x-dashscope-datainspection': 'enable',
      'openai-beta': 'assistants=v2',
      'x-stainless-lang': 'js',
    });
    expect(headers.authorization).toMatch(/^Bearer st-/);
  });

  it('forwards a same-origin POST that carries cookies (the CSRF check lets the app itself through)', async () => {
    const body = JSON.stringify({
      model: 'qwen-plus',
      messages: [{ role: 'user', content: 'hi' }],
    });
    const port = app().port;
    const answer = await sendRaw(
      port,
      `POST /dashscope/compatible-mode/v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nOrigin: http://127.0.0.1:${port}\r\nSec-Fetch-Site: same-origin\r\nCookie: session=1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
    );
    expect(answer.status).toBe(200);
    const chat = emulator.requests.filter((r) => r.route === 'chat');
    expect(chat).toHaveLength(1);
    expect(chat[0]!.headers.cookie).toBeUndefined();
  });

  it('forwards a DELETE body with its Content-Length, never chunked', async () => {
    const body = '{"reason":"cancel"}';
    const answer = await sendRaw(
      app().port,
      `DELETE /dashscope/compatible-mode/v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`,
    );
    expect(answer.status).not.toBe('closed');
    const sent = emulator.requests.filter((r) => r.method === 'DELETE');
    expect(sent).toHaveLength(1);
    expect(sent[0]!.headers['content-length']).toBe(String(body.length));
    expect(sent[0]!.headers['transfer-encoding']).toBeUndefined();
  });
});

describe.each(NODE_AND_FETCH)('%s: hooks that never settle', (_name, start) => {
  const never = () => new Promise<boolean>(() => {});

  it('answers 504 Timeout after hookTimeoutMs and returns to idle', async () => {
    const app = await start(emulator, { authorize: never, hookTimeoutMs: 100 });
    try {
      const answer = await sendRaw(
        app.port,
        'GET /dashscope/compatible-mode/v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n',
      );
      expect(answer.status).toBe(504);
      expect(answer.text).toContain('Timeout');
      expect(app.handlers[0]!.stats().activeRequests).toBe(0);
      expect(emulator.requests).toEqual([]);
    } finally {
      await app.close();
    }
  });

  it('abandons the wait when the client leaves (no timeout), so nothing stays in progress', async () => {
    const app = await start(emulator, { apiKey: never as never, hookTimeoutMs: 0 });
    try {
      const socket = net.connect(app.port, '127.0.0.1');
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      socket.write(
        'POST /dashscope/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n',
      );
      await expect.poll(() => app.handlers[0]!.stats().activeRequests).toBe(1);
      socket.destroy();
      await expect.poll(() => app.handlers[0]!.stats().activeRequests).toBe(0);
    } finally {
      await app.close();
    }
  });
});

describe.each(NODE_AND_FETCH)('%s: a flood of upstream 401s', (_name, start) => {
  it('costs one re-mint per key per interval, not one per request, and each answers 502 InvalidApiKey', async () => {
    const app = await start(emulator);
    emulator.fault('models', { type: 'invalid-api-key' }, Number.POSITIVE_INFINITY);
    try {
      const before = emulator.stats().tokensIssued;
      for (let i = 0; i < 20; i++) {
        const answer = await sendRaw(
          app.port,
          'GET /dashscope/compatible-mode/v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n',
        );
        // The server's key failed, not the client's: never Model Studio's 401.
        expect(answer.status).toBe(502);
        expect(answer.text.toLowerCase()).toContain('x-should-retry: false');
      }
      // The first key, and one re-mint after the first 401.
      expect(emulator.stats().tokensIssued - before).toBe(2);
    } finally {
      emulator.clearFaults();
      await app.close();
    }
  });
});

describe.each(NODE_AND_FETCH)('%s: a body read for allowModels', (_name, start) => {
  it('is bounded in time: a slow upload gets 408 and reaches nobody', async () => {
    const app = await start(emulator, {
      proxy: { allowModels: ['qwen-plus'], bodyReadTimeoutMs: 150, headersTimeoutMs: 300 },
    });
    try {
      const answer = await sendRaw(
        app.port,
        'POST /dashscope/compatible-mode/v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"model":',
        2000,
      );
      expect(answer.status).toBe(408);
      expect(emulator.requests).toEqual([]);
      await expect.poll(() => app.handlers[0]!.stats().activeRequests).toBe(0);
    } finally {
      await app.close();
    }
  });
});

describe.each(NODE_AND_FETCH)('%s: a client that stops reading', (_name, start) => {
  it('is cut after proxy.sendTimeoutMs, freeing its upstream connection', async () => {
    const big = await startEmulator({
      apiKeys: [...PERMANENT_KEYS],
      reply: () => 'x'.repeat(8 * 1024 * 1024),
    });
    const app = await start(big, { proxy: { sendTimeoutMs: 200, headersTimeoutMs: 5000 } });
    const socket = net.connect(app.port, '127.0.0.1');
    try {
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      const body = JSON.stringify({
        model: 'qwen-plus',
        messages: [{ role: 'user', content: 'hi' }],
      });
      socket.write(
        `POST /dashscope/compatible-mode/v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      );
      // Never read: the answer backs up into the server.
      socket.pause();
      await expect.poll(() => big.stats().requests.chat ?? 0).toBe(1);
      await expect.poll(() => app.handlers[0]!.stats().activeRequests, { timeout: 10_000 }).toBe(0);
      await expect
        .poll(() => {
          const pool = app.handlers[0]!.stats().upstream;
          return pool === undefined ? 0 : pool.running + pool.pending;
        })
        .toBe(0);
    } finally {
      socket.destroy();
      await app.close();
      await big.close();
    }
  });
});
