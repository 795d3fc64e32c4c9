/**
 * Backpressure: a side that does not read must not make the proxy buffer what the other side
 * produces. Model Studio is replaced here by a local WebSocket server that floods (or stops
 * reading) on command; keys still come from the emulator.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type WebSocket, WebSocketServer } from 'ws';
import { useEmulator } from '../emulator-fixture.js';
import { INFERENCE, open, PERMANENT_KEY, type RunningProxy, startProxy, until } from './harness.js';

const emulator = useEmulator({ apiKeys: [PERMANENT_KEY] });

const MESSAGE = 1024 * 1024;
const COUNT = 48;
const MAX_BUFFERED = 1024 * 1024;

interface Upstream {
  url: string;
  connected: Promise<WebSocket>;
  close(): Promise<void>;
}

async function startUpstream(): Promise<Upstream> {
  const server = http.createServer();
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * MESSAGE });
  let resolveConnected: (ws: WebSocket) => void = () => {};
  const connected = new Promise<WebSocket>((resolve) => {
    resolveConnected = resolve;
  });
  server.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => resolveConnected(ws));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    connected,
    async close() {
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

let proxy: RunningProxy | undefined;
let upstream: Upstream | undefined;

afterEach(async () => {
  await proxy?.close();
  await upstream?.close();
  proxy = undefined;
  upstream = undefined;
});

/** Samples `read()` every 5 ms until `stop` resolves; returns the largest value seen. */
async function peak(read: () => number, stop: Promise<unknown>): Promise<number> {
  let max = read();
  let done = false;
  void stop.then(() => {
    done = true;
  });
  while (!done) {
    max = Math.max(max, read());
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return Math.max(max, read());
}

/** Resolves once `read()` has not changed for `quietMs`. */
async function settled(read: () => number, quietMs = 300, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = read();
  let since = Date.now();
  while (Date.now() - since < quietMs) {
    if (Date.now() > deadline) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
    const now = read();
    if (now !== last) {
      last = now;
      since = Date.now();
    }
  }
}

describe('WebSocket proxy: backpressure', () => {
  it('stops reading Model Studio while the client does not read, then delivers everything in order', async () => {
    upstream = await startUpstream();
    proxy = await startProxy({
      baseUrl: emulator().url,
      websocket: { baseUrl: upstream.url, maxBufferedBytes: MAX_BUFFERED, pingIntervalMs: 0 },
    });
    const conn = await open(`${proxy.wsBase}${INFERENCE}`);
    const server = await upstream.connected;
    conn.ws.pause(); // the client stops reading

    for (let i = 0; i < COUNT; i++) server.send(Buffer.alloc(MESSAGE, i));
    const stats = () => proxy!.handler.websocketStats().bufferedBytes;
    const stop = settled(() => server.bufferedAmount);
    const held = await peak(stats, stop);

    // The proxy held at most its high-water mark plus one message per direction...
    expect(held).toBeLessThanOrEqual(MAX_BUFFERED + MESSAGE + 64 * 1024);
    // ...and most of the flood is still waiting at the producer (the rest fills kernel buffers).
    expect(server.bufferedAmount).toBeGreaterThan(8 * MESSAGE);

    conn.ws.resume();
    const all = await conn.take(COUNT, 10_000);
    all.forEach((m, i) => {
      expect(m.binary).toBe(true);
      expect(m.data.length).toBe(MESSAGE);
      expect(m.data[0]).toBe(i);
      expect(m.data[MESSAGE - 1]).toBe(i);
    });
    expect(stats()).toBe(0);
    conn.ws.close();
    await conn.closed;
  });

  it('stops reading the client while Model Studio does not read', async () => {
    upstream = await startUpstream();
    proxy = await startProxy({
      baseUrl: emulator().url,
      websocket: { baseUrl: upstream.url, maxBufferedBytes: MAX_BUFFERED, pingIntervalMs: 0 },
    });
    const conn = await open(`${proxy.wsBase}${INFERENCE}`);
    const server = await upstream.connected;
    server.pause(); // Model Studio stops reading
    const got: Buffer[] = [];
    server.on('message', (data) => got.push(data as Buffer));

    for (let i = 0; i < COUNT; i++) conn.ws.send(Buffer.alloc(MESSAGE, i));
    const stats = () => proxy!.handler.websocketStats().bufferedBytes;
    const held = await peak(
      stats,
      settled(() => conn.ws.bufferedAmount),
    );
    expect(held).toBeLessThanOrEqual(MAX_BUFFERED + MESSAGE + 64 * 1024);
    expect(conn.ws.bufferedAmount).toBeGreaterThan(8 * MESSAGE);

    server.resume();
    await until(() => got.length === COUNT, 10_000);
    got.forEach((data, i) => {
      expect(data.length).toBe(MESSAGE);
      expect(data[0]).toBe(i);
    });
    conn.ws.close();
    await conn.closed;
  });
});
