import type { IncomingMessage } from 'node:http';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { useEmulator } from '../emulator-fixture.js';
import {
  connect,
  HANDSHAKE,
  INFERENCE,
  leaks,
  open,
  PERMANENT_KEY,
  REALTIME,
  type RunningProxy,
  rawUpgrade,
  refusal,
  startProxy,
} from './harness.js';

const emulator = useEmulator({ apiKeys: [PERMANENT_KEY] });
let proxy: RunningProxy | undefined;

async function start(options: Parameters<typeof startProxy>[0] = {}): Promise<RunningProxy> {
  proxy = await startProxy({ baseUrl: emulator().url, ...options });
  return proxy;
}

afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
});

afterAll(() => {
  expect(leaks()).toEqual([]);
});

/** Nothing reached Model Studio: no WebSocket handshake, no mint. */
function nothingUpstream(): void {
  // Neither a mint (`tokens`) nor a WebSocket handshake reached the emulator.
  expect(emulator().requests).toEqual([]);
}

function expectErrorBody(json: Record<string, unknown>, code: string, requestId: unknown): void {
  expect(json).toEqual({ code, message: expect.any(String), request_id: requestId });
}

describe('WebSocket proxy: authorize', () => {
  it('runs authorize on the handshake; a refusal is an HTTP answer and nothing goes upstream', async () => {
    const seen: string[] = [];
    const { wsBase } = await start({
      authorize: (req) => {
        seen.push(String(req.url));
        const cookie = req.headers.cookie ?? '';
        if (cookie.includes('session=good')) return true;
        if (cookie.includes('session=expired')) return { status: 401, message: 'Sign in again.' };
        return false;
      },
    });
    const forbidden = await refusal(`${wsBase}${REALTIME}`, {
      headers: { Cookie: 'session=bad' },
    });
    expect(forbidden.status).toBe(403);
    expect(forbidden.headers['content-type']).toBe('application/json; charset=utf-8');
    expectErrorBody(forbidden.json, 'AccessDenied', forbidden.headers['x-request-id']);

    const unauthorized = await refusal(`${wsBase}${INFERENCE}`, {
      headers: { Cookie: 'session=expired' },
    });
    expect(unauthorized.status).toBe(401);
    expect(unauthorized.headers['www-authenticate']).toBe('Bearer');
    expect(unauthorized.json).toMatchObject({ code: 'Unauthorized', message: 'Sign in again.' });
    nothingUpstream();

    const conn = await open(`${wsBase}${REALTIME}`, { headers: { Cookie: 'session=good' } });
    expect(((await conn.next()).json as { type: string }).type).toBe('session.created');
    conn.ws.close();
    await conn.closed;
    expect(seen).toEqual([REALTIME, INFERENCE, REALTIME]);
  });

  it('answers 500 without details when authorize throws', async () => {
    const { wsBase } = await start({
      authorize: () => {
        throw new Error(`database down ${PERMANENT_KEY}`);
      },
    });
    const answer = await refusal(`${wsBase}${REALTIME}`);
    expect(answer.status).toBe(500);
    expect(answer.json.code).toBe('InternalError');
    expect(answer.body).not.toContain('database');
    nothingUpstream();
  });

  it('gives authorize and apiKey the context of websocket.context', async () => {
    const contexts: unknown[] = [];
    const { wsBase } = await start({
      apiKey: (ctx) => {
        contexts.push(ctx);
        return (ctx as unknown as { tenant: string }).tenant === 'a' ? PERMANENT_KEY : undefined;
      },
      authorize: (ctx) => {
        contexts.push(ctx);
        return (ctx as unknown as { user?: string }).user !== undefined;
      },
      websocket: {
        context: async (req: IncomingMessage) => {
          const tenant = new URL(req.url ?? '/', 'http://x').searchParams.get('tenant');
          return { tenant, user: tenant ? 'alice' : undefined } as unknown as IncomingMessage;
        },
      },
    });
    const conn = await open(`${wsBase}${REALTIME}&tenant=a`);
    conn.ws.close();
    await conn.closed;
    expect(contexts).toEqual([
      { tenant: 'a', user: 'alice' },
      { tenant: 'a', user: 'alice' },
    ]);
    expect((await refusal(`${wsBase}${REALTIME}`)).status).toBe(403);
    const missing = await refusal(`${wsBase}${REALTIME}&tenant=b`);
    expect(missing.status).toBe(500);
    expect(missing.json.code).toBe('MissingApiKey');
  });
});

describe('WebSocket proxy: origins (cross-site WebSocket hijacking)', () => {
  it('allows the same origin as Host by default and refuses others with 403', async () => {
    const { wsBase, port } = await start();
    for (const origin of [`http://127.0.0.1:${port}`, `https://127.0.0.1:${port}`]) {
      const conn = await open(`${wsBase}${INFERENCE}`, { origin });
      conn.ws.close();
      await conn.closed;
    }
    for (const origin of [
      'https://evil.example',
      `http://127.0.0.1:${port + 1}`,
      `http://127.0.0.1.evil.example:${port}`,
      'null',
    ]) {
      const answer = await refusal(`${wsBase}${INFERENCE}`, { origin });
      expect(answer.status).toBe(403);
      expect(answer.json.code).toBe('AccessDenied');
    }
    // Non-browser clients send no Origin and carry no ambient credentials.
    const conn = await open(`${wsBase}${INFERENCE}`);
    conn.ws.close();
    await conn.closed;
    expect(emulator().requests.filter((r) => r.route === 'ws-inference')).toHaveLength(3);
  });

  it('normalises default ports against Host', async () => {
    const { port } = await start();
    const ok = await rawUpgrade(port, INFERENCE, {
      ...HANDSHAKE,
      Host: 'app.example:443',
      Origin: 'https://app.example',
    });
    expect(ok.status).toBe(101);
    const refused = await rawUpgrade(port, INFERENCE, {
      ...HANDSHAKE,
      Host: 'app.example:443',
      Origin: 'http://app.example',
    });
    expect(refused.status).toBe(403);
  });

  it('allows exactly the listed origins with allowedOrigins', async () => {
    const { wsBase, port } = await start({
      websocket: { allowedOrigins: ['https://app.example', 'http://localhost:5173/'] },
    });
    for (const origin of ['https://app.example', 'HTTPS://APP.EXAMPLE', 'http://localhost:5173']) {
      const conn = await open(`${wsBase}${INFERENCE}`, { origin });
      conn.ws.close();
      await conn.closed;
    }
    for (const origin of [`http://127.0.0.1:${port}`, 'https://app.example.evil', 'null']) {
      expect((await refusal(`${wsBase}${INFERENCE}`, { origin })).status).toBe(403);
    }
  });

  it('asks an allowedOrigins predicate with the origin and the request', async () => {
    const calls: [string, string | undefined][] = [];
    const { wsBase } = await start({
      websocket: {
        allowedOrigins: (origin, req) => {
          calls.push([origin, req.url]);
          return origin.endsWith('.trusted.example');
        },
      },
    });
    const conn = await open(`${wsBase}${INFERENCE}`, { origin: 'https://a.trusted.example' });
    conn.ws.close();
    await conn.closed;
    expect((await refusal(`${wsBase}${INFERENCE}`, { origin: 'https://b.other' })).status).toBe(
      403,
    );
    expect(calls).toEqual([
      ['https://a.trusted.example', INFERENCE],
      ['https://b.other', INFERENCE],
    ]);
  });
});

describe('WebSocket proxy: limits and refusals', () => {
  it('answers 503 over maxSessions, and frees a slot when a session ends', async () => {
    const { wsBase, handler } = await start({ websocket: { maxSessions: 2 } });
    const a = await open(`${wsBase}${INFERENCE}`);
    const b = await open(`${wsBase}${INFERENCE}`);
    const full = await refusal(`${wsBase}${INFERENCE}`);
    expect(full.status).toBe(503);
    expect(full.headers['retry-after']).toBe('1');
    expect(full.json.code).toBe('TooManySessions');
    expect(handler.websocketStats()).toMatchObject({ open: 2, connecting: 0, refused: 1 });
    a.ws.close();
    await a.closed;
    await new Promise((resolve) => setTimeout(resolve, 20));
    const deadline = Date.now() + 5000;
    while (handler.websocketStats().open > 1 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const c = await open(`${wsBase}${INFERENCE}`);
    b.ws.close();
    c.ws.close();
    await Promise.all([b.closed, c.closed]);
    expect(emulator().requests.filter((r) => r.route === 'ws-inference')).toHaveLength(3);
  });

  it('refuses malformed handshakes before anything else', async () => {
    const { port } = await start({
      authorize: () => {
        throw new Error('authorize must not run');
      },
    });
    const post = await rawUpgrade(port, INFERENCE, HANDSHAKE, 'POST');
    expect(post.status).toBe(405);
    expect(post.text).toMatch(/\r\nallow: GET\r\n/i);
    const noKey = await rawUpgrade(port, INFERENCE, { ...HANDSHAKE, 'Sec-WebSocket-Key': 'x' });
    expect(noKey.status).toBe(400);
    const oldVersion = await rawUpgrade(port, INFERENCE, {
      ...HANDSHAKE,
      'Sec-WebSocket-Version': '8',
    });
    expect(oldVersion.status).toBe(426);
    expect(oldVersion.text).toMatch(/\r\nsec-websocket-version: 13\r\n/i);
    const badProtocol = await rawUpgrade(port, INFERENCE, {
      ...HANDSHAKE,
      'Sec-WebSocket-Protocol': 'a, a',
    });
    expect(badProtocol.status).toBe(400);
    const h2c = await rawUpgrade(port, INFERENCE, { ...HANDSHAKE, Upgrade: 'h2c' });
    expect(h2c.status).toBe(400);
    nothingUpstream();
  });

  it('answers 400 for unsafe targets and 404 for other paths under the prefix', async () => {
    const { wsBase, port } = await start();
    const unsafe = await rawUpgrade(port, '/dashscope/api-ws/v1/%2e%2e/realtime', HANDSHAKE);
    expect(unsafe.status).toBe(400);
    expect(unsafe.text).toContain('"code":"InvalidPath"');
    for (const path of [
      '/dashscope/api-ws/v1/other',
      '/dashscope/api-ws/v2/inference',
      '/dashscope/api/v1/services/aigc/text-generation/generation',
      '/dashscope/token',
    ]) {
      expect((await refusal(`${wsBase}${path}`)).status).toBe(404);
    }
    nothingUpstream();
  });

  it('leaves upgrades outside the prefix to other listeners', async () => {
    const running = await start();
    const other = new WebSocketServer({ noServer: true });
    other.on('connection', (ws, req) => ws.send(`other listener: ${req.url}`));
    // Another part of the app serves its own WebSockets on the same server.
    running.server.on('upgrade', (req, socket, head) => {
      if (req.url?.startsWith('/dashscope/')) return; // ours
      other.handleUpgrade(req, socket, head, (ws) => other.emit('connection', ws, req));
    });
    for (const path of ['/other/socket', '/dashscope-other', '/']) {
      const conn = await open(`${running.wsBase}${path}`);
      expect((await conn.next()).data.toString()).toBe(`other listener: ${path}`);
      conn.ws.close();
      await conn.closed;
    }
    // And the proxy still serves its own next to it.
    const conn = await open(`${running.wsBase}${INFERENCE}`);
    conn.ws.close();
    await conn.closed;
    expect(running.handler.websocketStats()).toMatchObject({ opened: 1, refused: 0 });
    other.close();
  });

  it('returns whether it took the socket', async () => {
    const running = await start();
    const taken: [string | undefined, boolean][] = [];
    running.server.removeAllListeners('upgrade');
    running.server.on('upgrade', (req, socket, head) => {
      const took = running.handler.upgrade(req, socket, head);
      taken.push([req.url, took]);
      if (!took) socket.destroy(); // the app's policy for upgrades nobody serves
    });
    const conn = await open(`${running.wsBase}${INFERENCE}`);
    conn.ws.close();
    await conn.closed;
    await expect(connect(`${running.wsBase}/elsewhere`)).rejects.toThrow();
    expect(taken).toEqual([
      [INFERENCE, true],
      ['/elsewhere', false],
    ]);
  });

  it('leaves every upgrade alone with websocket: false', async () => {
    const running = await start({ websocket: false });
    const socket = { on() {}, destroy() {} } as unknown as import('node:stream').Duplex;
    const req = { url: INFERENCE, headers: {} } as IncomingMessage;
    expect(running.handler.upgrade(req, socket, Buffer.alloc(0))).toBe(false);
    expect(running.handler.websocketStats().refused).toBe(0);
  });

  it('validates the websocket options when the handler is created', async () => {
    const { createDashScopeHandler } = await import('../../src/index.js');
    for (const websocket of [
      { maxSessions: 0 },
      { maxMessageBytes: 1.5 },
      { pingIntervalMs: -1 },
      { baseUrl: 'ftp://example.com' },
      { baseUrl: 'wss://user:pw@example.com' },
      { minValiditySeconds: 1800 },
      { allowedOrigins: 'https://a.example' as unknown as string[] },
    ]) {
      expect(() =>
        createDashScopeHandler({ apiKey: PERMANENT_KEY, baseUrl: 'http://127.0.0.1:9', websocket }),
      ).toThrow(expect.objectContaining({ code: 'InvalidParameter' }));
    }
  });
});

describe('WebSocket proxy: plain HTTP on the WebSocket routes', () => {
  it('answers 426 to a plain request', async () => {
    const { base } = await start();
    const res = await fetch(`${base}${INFERENCE}`);
    expect(res.status).toBe(426);
    expect(res.headers.get('upgrade')).toBe('websocket');
    await res.text();
  });
});
