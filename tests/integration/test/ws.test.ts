/**
 * The WebSocket proxy wired the same way everywhere — `server.on('upgrade', mw.upgrade)` — in
 * front of one emulator, through node:http (the core handler), Express 4/5 and Koa 2/3; the
 * Fastify 4/5 plugin wires itself on `app.server` (see ws-apps.ts). `authorize` reads the app's
 * session cookie through each framework's own request API.
 */
import type { AddressInfo } from 'node:net';
import { type Emulator, startEmulator } from '@dashscope-token/emulator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { connect, leaksOf, until, WS_KINDS, type WsApp } from './ws-apps.js';

const PERMANENT_KEY = 'sk-ws-matrix-permanent-key-000001';
const REALTIME = '/dashscope/api-ws/v1/realtime?model=qwen-omni-turbo-realtime';
const INFERENCE = '/dashscope/api-ws/v1/inference';

let emulator: Emulator;
beforeAll(async () => {
  emulator = await startEmulator({ apiKeys: [PERMANENT_KEY] });
});
afterAll(async () => {
  await emulator?.close();
  expect(leaksOf(PERMANENT_KEY)).toEqual([]);
});

describe.each(WS_KINDS)('WebSocket proxy through $name', (kind) => {
  let app: WsApp;
  let base: string;
  let origin: string;
  const appSockets = new WebSocketServer({ noServer: true });
  appSockets.on('connection', (ws) => ws.send('hello from the app'));

  beforeAll(async () => {
    app = await kind.start({ apiKey: PERMANENT_KEY, baseUrl: emulator.url });
    // The app's own WebSockets share the server: upgrades outside the prefix reach them.
    app.server.on('upgrade', (req, socket, head) => {
      if (req.url === '/chat') {
        appSockets.handleUpgrade(req, socket, head, (ws) => appSockets.emit('connection', ws));
      } else if (!req.url?.startsWith('/dashscope/')) {
        socket.destroy();
      }
    });
    await new Promise<void>((resolve) => app.server.listen(0, '127.0.0.1', resolve));
    const port = (app.server.address() as AddressInfo).port;
    base = `ws://127.0.0.1:${port}`;
    origin = `http://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    await app.close();
    appSockets.close();
    app.server.closeAllConnections();
    await new Promise<void>((resolve) => app.server.close(() => resolve()));
  });

  it('relays with a temporary key injected and the client credentials removed', async () => {
    emulator.clearRequests();
    const outcome = await connect(`${base}${REALTIME}&api_key=sk-from-the-browser-0000`, {
      Cookie: 'session=ok; theme=dark',
      Authorization: 'Bearer sk-from-the-browser-0000',
      Origin: origin,
    });
    if (outcome.kind !== 'open') throw new Error(`refused: ${outcome.status}`);
    const { ws, messages } = outcome;
    await until(() => messages.length === 1);
    expect(JSON.parse(messages[0]!.text).type).toBe('session.created');
    ws.send(JSON.stringify({ type: 'ping', n: 1 }));
    ws.send(Buffer.from([1, 2, 3]));
    await until(() => messages.length === 3);
    expect(messages.slice(1)).toEqual([
      { binary: false, text: '{"type":"ping","n":1}' },
      { binary: true, text: '\u0001\u0002\u0003' },
    ]);
    ws.close(4001, 'bye');
    expect(await outcome.closed).toBe(4001);

    const record = await emulator.waitForRequest((r) => r.closeCode !== undefined);
    expect(record.route).toBe('ws-realtime');
    expect(record.path).toBe('/api-ws/v1/realtime?model=qwen-omni-turbo-realtime');
    expect(record.headers.authorization).toMatch(/^Bearer st-/);
    expect(record.headers.cookie).toBeUndefined();
    expect(record.headers.origin).toBeUndefined();
    expect(record).toMatchObject({ closeCode: 4001, closeReason: 'bye', messagesReceived: 2 });
  });

  it('refuses a handshake without the session cookie, with nothing sent upstream', async () => {
    emulator.clearRequests();
    const outcome = await connect(`${base}${INFERENCE}`, { Origin: origin });
    expect(outcome).toMatchObject({
      kind: 'refused',
      status: 401,
      body: { code: 'Unauthorized', message: 'Sign in first.' },
    });
    expect(emulator.requests).toEqual([]);
  });

  it('refuses a foreign Origin with 403 even with the cookie', async () => {
    emulator.clearRequests();
    const outcome = await connect(`${base}${INFERENCE}`, {
      Cookie: 'session=ok',
      Origin: 'https://evil.example',
    });
    expect(outcome).toMatchObject({ kind: 'refused', status: 403, body: { code: 'AccessDenied' } });
    expect(emulator.requests).toEqual([]);
  });

  it("leaves the app's own WebSocket routes to the app", async () => {
    const outcome = await connect(`${base}/chat`);
    if (outcome.kind !== 'open') throw new Error('refused');
    await until(() => outcome.messages.length === 1);
    expect(outcome.messages[0]?.text).toBe('hello from the app');
    outcome.ws.close();
    await outcome.closed;
  });
});
