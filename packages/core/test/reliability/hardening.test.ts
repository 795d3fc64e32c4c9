/**
 * The hardening of issue 16 that lives in the node:http executor's wiring: each test is named
 * for the attack it pins (the request-level ones are in the attack corpus and
 * tests/security/test/hardening.test.ts, on every front door).
 */
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createDashScopeHandler, WS_CLOSE_IDLE, WS_CLOSE_POLICY } from '../../src/index.js';
import { DEFAULT_WS_MAX_MESSAGE_BYTES } from '../../src/policy/websocket-config.js';
import { useEmulator } from '../emulator-fixture.js';
import {
  HANDSHAKE,
  INFERENCE,
  open,
  PERMANENT_KEY,
  type RunningProxy,
  rawUpgrade,
  runTask,
  startProxy,
  until,
} from '../ws/harness.js';

const emulator = useEmulator({ apiKeys: [PERMANENT_KEY] });

const running: RunningProxy[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.close()));
});

async function connections(server: http.Server): Promise<number> {
  return new Promise((resolve, reject) =>
    server.getConnections((error, n) => (error ? reject(error) : resolve(n))),
  );
}

async function untilNoConnections(server: http.Server): Promise<number> {
  for (let i = 0; i < 200 && (await connections(server)) > 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return connections(server);
}

describe('stray upgrades (issue 16, item 1)', () => {
  it('answers 404 and closes an upgrade outside the prefix when the handler is the only upgrade listener, so none holds a socket', async () => {
    const proxy = await startProxy({ baseUrl: 'http://127.0.0.1:9' });
    running.push(proxy);
    for (const path of ['/elsewhere', '/', '/dashscope-other/socket']) {
      const answer = await rawUpgrade(proxy.port, path, HANDSHAKE);
      expect(answer.status, path).toBe(404);
      expect(answer.text).toContain('connection: close');
    }
    expect(await untilNoConnections(proxy.server)).toBe(0);
  });

  it('lets the last of several handlers on one server answer the upgrades none of them owns', async () => {
    const first = createDashScopeHandler({ apiKey: PERMANENT_KEY, baseUrl: 'http://127.0.0.1:9' });
    const second = createDashScopeHandler({
      apiKey: PERMANENT_KEY,
      baseUrl: 'http://127.0.0.1:9',
      prefix: '/other-ai',
    });
    const server = http.createServer();
    server.on('upgrade', first.upgrade);
    server.on('upgrade', second.upgrade);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      // The second handler's route is refused by the second handler (no such WebSocket path),
      // not as a stray by the first.
      const theirs = await rawUpgrade(port, '/other-ai/api-ws/v1/nothing', HANDSHAKE);
      expect(theirs.status).toBe(404);
      const stray = await rawUpgrade(port, '/nobody', HANDSHAKE);
      expect(stray.status).toBe(404);
      expect(await untilNoConnections(server)).toBe(0);
      expect(first.websocketStats().refused + second.websocketStats().refused).toBe(1);
    } finally {
      await Promise.all([first.close(), second.close()]);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('leaves a stray upgrade to a listener attached after it', async () => {
    const proxy = await startProxy({ baseUrl: 'http://127.0.0.1:9' });
    running.push(proxy);
    const seen: string[] = [];
    proxy.server.on('upgrade', (req, socket) => {
      seen.push(req.url ?? '');
      socket.end('HTTP/1.1 418 I am a teapot\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    });
    expect((await rawUpgrade(proxy.port, '/app/socket', HANDSHAKE)).status).toBe(418);
    expect(seen).toEqual(['/app/socket']);
  });
});

describe('WebSocket memory (issue 16, item 3)', () => {
  async function start(websocket: Record<string, number>): Promise<RunningProxy> {
    const proxy = await startProxy({ baseUrl: emulator().url, websocket });
    running.push(proxy);
    return proxy;
  }

  it('defaults to a maximum message of 1 MiB, enough for speech and realtime, not 16 MiB', () => {
    expect(DEFAULT_WS_MAX_MESSAGE_BYTES).toBe(1024 * 1024);
  });

  it('closes a client that never finishes a fragmented message with 1008, and frees the session', async () => {
    const proxy = await start({ messageTimeoutMs: 200 });
    const conn = await open(`${proxy.wsBase}${INFERENCE}`);
    conn.ws.send(Buffer.alloc(64 * 1024, 1), { binary: true, fin: false });
    await until(() => proxy.handler.websocketStats().open === 1);
    // Pings keep flowing (the client library answers them); the message never ends.
    const closed = await conn.closed;
    expect(closed.code).toBe(WS_CLOSE_POLICY);
    await until(() => proxy.handler.websocketStats().open === 0);
    expect(proxy.handler.websocketStats().connecting).toBe(0);
  });

  it('keeps a session whose fragmented messages complete', async () => {
    const proxy = await start({ messageTimeoutMs: 200 });
    const conn = await open(`${proxy.wsBase}${INFERENCE}`);
    const task = runTask('t-fragments', 'asr');
    conn.ws.send(task.slice(0, 10), { fin: false });
    conn.ws.send(task.slice(10), { fin: true });
    expect((await conn.next()).json).toMatchObject({ header: { event: 'task-started' } });
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(conn.ws.readyState).toBe(conn.ws.OPEN);
    conn.ws.close();
    await conn.closed;
  });

  it('closes an idle session (no message either way) with 4001', async () => {
    const proxy = await start({ idleTimeoutMs: 200 });
    const conn = await open(`${proxy.wsBase}${INFERENCE}`);
    expect((await conn.closed).code).toBe(WS_CLOSE_IDLE);
    await until(() => proxy.handler.websocketStats().open === 0);
  });

  it('bounds the bytes of unfinished messages over all sessions (maxPendingBytes)', async () => {
    const proxy = await start({ maxPendingBytes: 100_000, messageTimeoutMs: 60_000 });
    const conns = await Promise.all([1, 2, 3].map(() => open(`${proxy.wsBase}${INFERENCE}`)));
    for (const conn of conns) conn.ws.send(Buffer.alloc(60_000, 2), { binary: true, fin: false });
    const codes: number[] = [];
    for (const conn of conns) void conn.closed.then((c) => codes.push(c.code));
    await until(() => codes.length === 2);
    expect(codes).toEqual([WS_CLOSE_POLICY, WS_CLOSE_POLICY]);
    await until(() => proxy.handler.websocketStats().open === 1);
    for (const conn of conns) conn.ws.terminate();
    await until(() => proxy.handler.websocketStats().open === 0);
  });
});

describe('cross-site WebSocket handshakes (issue 16, item 7)', () => {
  it('refuses a cookie-carrying handshake the browser marks cross-site, even without Origin', async () => {
    const proxy = await startProxy({ baseUrl: emulator().url });
    running.push(proxy);
    const refused = await rawUpgrade(proxy.port, INFERENCE, {
      ...HANDSHAKE,
      Cookie: 'session=victim',
      'Sec-Fetch-Site': 'cross-site',
    });
    expect(refused.status).toBe(403);
    const foreign = await rawUpgrade(proxy.port, INFERENCE, {
      ...HANDSHAKE,
      Cookie: 'session=victim',
      Origin: 'https://evil.example',
    });
    expect(foreign.status).toBe(403);
    expect(emulator().requests).toEqual([]);
  });
});

describe('hooks that never settle on WebSocket handshakes (issue 16, item 9)', () => {
  it('frees the session slot when the client leaves, and answers 504 after hookTimeoutMs', async () => {
    const proxy = await startProxy({
      baseUrl: emulator().url,
      authorize: () => new Promise<boolean>(() => {}),
      hookTimeoutMs: 150,
      websocket: { maxSessions: 1 },
    });
    running.push(proxy);
    const timedOut = await rawUpgrade(proxy.port, INFERENCE, HANDSHAKE);
    expect(timedOut.status).toBe(504);
    await until(() => proxy.handler.websocketStats().connecting === 0);
    // No timeout this time: a client that leaves is not waited for.
    const patient = createDashScopeHandler({
      apiKey: PERMANENT_KEY,
      baseUrl: emulator().url,
      authorize: () => new Promise<boolean>(() => {}),
      hookTimeoutMs: 0,
    });
    const server = http.createServer();
    server.on('upgrade', patient.upgrade);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const socket = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
      socket.write(
        `GET ${INFERENCE} HTTP/1.1\r\nHost: 127.0.0.1\r\n${Object.entries(HANDSHAKE)
          .map(([k, v]) => `${k}: ${v}`)
          .join('\r\n')}\r\n\r\n`,
      );
      await until(() => patient.websocketStats().connecting === 1);
      socket.destroy();
      await until(() => patient.websocketStats().connecting === 0);
    } finally {
      await patient.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('allowModels on WebSocket sessions (issue 16, item 6)', () => {
  async function start(): Promise<RunningProxy> {
    const proxy = await startProxy({
      baseUrl: emulator().url,
      proxy: { allowModels: ['qwen-omni-turbo-realtime', 'paraformer-realtime-v2'] },
    });
    running.push(proxy);
    return proxy;
  }
  const realtime = (model?: string) =>
    `/dashscope/api-ws/v1/realtime${model === undefined ? '' : `?model=${model}`}`;

  it('refuses a realtime session for a model not listed, or without a model, before anything is minted', async () => {
    const proxy = await start();
    expect((await rawUpgrade(proxy.port, realtime('qwen-max-realtime'), HANDSHAKE)).status).toBe(
      403,
    );
    expect((await rawUpgrade(proxy.port, realtime(), HANDSHAKE)).status).toBe(403);
    // The encoded parameter name that used to escape the check is refused as a bad target.
    expect(
      (await rawUpgrade(proxy.port, '/dashscope/api-ws/v1/realtime?mod%65l=qwen-max', HANDSHAKE))
        .status,
    ).toBe(400);
    expect(emulator().requests).toEqual([]);
    const allowed = await open(`${proxy.wsBase}${realtime('qwen-omni-turbo-realtime')}`);
    allowed.ws.close();
    await allowed.closed;
  });

  it('closes a speech session whose run-task names a model not listed (1008), without forwarding it', async () => {
    const proxy = await start();
    const conn = await open(`${proxy.wsBase}${INFERENCE}`);
    const task = JSON.parse(runTask('t-model', 'asr')) as { payload: { model: string } };
    task.payload.model = 'qwen-max';
    conn.ws.send(JSON.stringify(task));
    const closed = await conn.closed;
    expect(closed.code).toBe(WS_CLOSE_POLICY);
    expect(closed.reason).toBe('Model not allowed');
    const sessions = emulator().requests.filter((r) => r.route === 'ws-inference');
    expect(sessions.map((r) => r.messagesReceived ?? 0)).toEqual([0]);
  });

  it('closes a realtime session whose session.update names a model not listed, even with \\u escapes', async () => {
    const proxy = await start();
    const conn = await open(`${proxy.wsBase}${realtime('qwen-omni-turbo-realtime')}`);
    conn.ws.send('{"type":"session.update","session":{"mod\\u0065l":"qwen-max"}}');
    expect((await conn.closed).code).toBe(WS_CLOSE_POLICY);
  });

  it('closes a session whose message names model twice (upstream might read the other), without forwarding it', async () => {
    const proxy = await start();
    for (const message of [
      '{"type":"session.update","session":{"model":"qwen-omni-turbo-realtime","mod\\u0065l":"qwen-max"}}',
      '{"type":"session.update","model":"qwen-max","model":"qwen-omni-turbo-realtime"}',
    ]) {
      const conn = await open(`${proxy.wsBase}${realtime('qwen-omni-turbo-realtime')}`);
      conn.ws.send(message);
      const closed = await conn.closed;
      expect(closed.code).toBe(WS_CLOSE_POLICY);
      expect(closed.reason).toBe('Model named more than once');
    }
    const sessions = emulator().requests.filter((r) => r.route === 'ws-realtime');
    expect(sessions.map((r) => r.messagesReceived ?? 0)).toEqual([0, 0]);
  });
});

describe('WebSocket sessions need authorize (issue 16, item 5)', () => {
  it('refuses every handshake with 403 when there is no authorize and no explicit opt-in', async () => {
    const handler = createDashScopeHandler({ apiKey: PERMANENT_KEY, baseUrl: emulator().url });
    const server = http.createServer(handler);
    server.on('upgrade', handler.upgrade);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const refused = await rawUpgrade(
        (server.address() as AddressInfo).port,
        INFERENCE,
        HANDSHAKE,
      );
      expect(refused.status).toBe(403);
      expect(refused.text).toContain('WebSocketUnauthenticated');
      expect(emulator().requests).toEqual([]);
    } finally {
      await handler.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('proxies sessions once authorize is set, and with allowUnauthenticated: true', async () => {
    for (const options of [
      { authorize: () => true },
      { websocket: { allowUnauthenticated: true } },
    ]) {
      const proxy = await startProxy({ baseUrl: emulator().url, ...options });
      running.push(proxy);
      const conn = await open(`${proxy.wsBase}${INFERENCE}`);
      conn.ws.close();
      await conn.closed;
    }
  });
});
