/**
 * The WebSocket proxy wired the same way everywhere — `server.on('upgrade', mw.upgrade)` — in
 * front of one emulator, through node:http (the core handler), Express 4/5 and Koa 2/3; the
 * Fastify 4/5 plugin wires itself on `app.server`. `authorize` reads the app's session cookie
 * through each framework's own request API.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createDashScopeHandler } from '@dashscope-token/core';
import { type Emulator, startEmulator } from '@dashscope-token/emulator';
import { dashscopeToken as expressDashscope } from '@dashscope-token/express';
import { dashscopeToken as fastifyDashscope } from '@dashscope-token/fastify';
import { dashscopeToken as koaDashscope } from '@dashscope-token/koa';
import type { Request } from 'express';
import express5 from 'express';
import express4 from 'express4';
import fastify5, { type FastifyRequest } from 'fastify';
import fastify4 from 'fastify4';
import type { Context } from 'koa';
import Koa3 from 'koa';
import Koa2 from 'koa2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';

const PERMANENT_KEY = 'sk-ws-matrix-permanent-key-000001';
const REALTIME = '/dashscope/api-ws/v1/realtime?model=qwen-omni-turbo-realtime';
const INFERENCE = '/dashscope/api-ws/v1/inference';

/** Every byte the WebSocket clients below received from the servers, as text. */
const transcript: string[] = [];

let emulator: Emulator;
beforeAll(async () => {
  emulator = await startEmulator({ apiKeys: [PERMANENT_KEY] });
});
afterAll(async () => {
  await emulator?.close();
  const fragments = [PERMANENT_KEY, PERMANENT_KEY.slice(3, 15), PERMANENT_KEY.slice(-12)];
  expect(transcript.filter((t) => fragments.some((f) => t.includes(f)))).toEqual([]);
});

/** `authorize`'s rule: the app's session cookie. */
function decide(cookie: string | undefined) {
  if (cookie?.includes('session=ok')) return true;
  return { status: 401 as const, message: 'Sign in first.' };
}

interface App {
  server: Server;
  close(): Promise<void>;
}

/** Each kind: the middleware at the root, its `upgrade` wired, and the app's own WebSocket. */
const KINDS: { name: string; start(): Promise<App> }[] = [
  {
    name: 'node:http',
    async start() {
      const handler = createDashScopeHandler({
        apiKey: PERMANENT_KEY,
        baseUrl: emulator.url,
        authorize: (req: IncomingMessage) => decide(req.headers.cookie),
      });
      const server = createServer(handler);
      server.on('upgrade', handler.upgrade);
      return { server, close: () => handler.close() };
    },
  },
  ...[
    ['express 4', express4],
    ['express 5', express5],
  ].map(([name, express]) => ({
    name: name as string,
    async start() {
      const app = (express as typeof express5)();
      const mw = expressDashscope({
        apiKey: PERMANENT_KEY,
        baseUrl: emulator.url,
        authorize: (req: Request) => decide(req.get('cookie')),
      });
      app.use(mw);
      const server = createServer(app);
      server.on('upgrade', mw.upgrade);
      return { server, close: () => mw.close() };
    },
  })),
  ...[
    ['koa 2', Koa2],
    ['koa 3', Koa3],
  ].map(([name, Koa]) => ({
    name: name as string,
    async start() {
      const app = new (Koa as typeof Koa3)();
      const mw = koaDashscope({
        apiKey: PERMANENT_KEY,
        baseUrl: emulator.url,
        // `ctx.state` exists (empty) on upgrades; the cookie is read through `ctx.get`.
        authorize: (ctx: Context) =>
          ctx.state.user === undefined ? decide(ctx.get('cookie')) : true,
      });
      app.use(mw);
      const server = createServer(app.callback());
      server.on('upgrade', mw.upgrade);
      return { server, close: () => mw.close() };
    },
  })),
  ...[
    ['fastify 4', fastify4],
    ['fastify 5', fastify5],
  ].map(([name, Fastify]) => ({
    name: name as string,
    async start() {
      const app = (Fastify as typeof fastify5)();
      // No `server.on('upgrade', …)`: the plugin wires its listener on `app.server` itself.
      await app.register(fastifyDashscope, {
        apiKey: PERMANENT_KEY,
        baseUrl: emulator.url,
        authorize: (request: FastifyRequest) => decide(request.headers.cookie),
      });
      await app.ready();
      return { server: app.server, close: () => app.close() };
    },
  })),
];

interface Received {
  binary: boolean;
  text: string;
}

type Outcome =
  | { kind: 'open'; ws: WebSocket; messages: Received[]; closed: Promise<number> }
  | { kind: 'refused'; status: number; body: Record<string, unknown> };

function connect(url: string, headers: Record<string, string> = {}): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    const messages: Received[] = [];
    ws.on('message', (data, binary) => {
      const text = Buffer.from(data as Buffer).toString('latin1');
      transcript.push(text);
      messages.push({ binary, text });
    });
    const closed = new Promise<number>((r) => ws.on('close', (code) => r(code)));
    ws.once('open', () => resolve({ kind: 'open', ws, messages, closed }));
    ws.once('unexpected-response', (req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        transcript.push(JSON.stringify(res.headers), text);
        resolve({ kind: 'refused', status: res.statusCode ?? 0, body: JSON.parse(text) });
        req.destroy();
      });
    });
    ws.on('error', reject);
  });
}

async function until(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe.each(KINDS)('WebSocket proxy through $name', (kind) => {
  let app: App;
  let base: string;
  let origin: string;
  const appSockets = new WebSocketServer({ noServer: true });
  appSockets.on('connection', (ws) => ws.send('hello from the app'));

  beforeAll(async () => {
    app = await kind.start();
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
