/**
 * Load: 10,000 concurrent client connections held open against the Express proxy (run in a
 * child process, as a real server would be), one request on each while all of them are open
 * (half token route, half proxied chat completions), every one answered 200, then all closed
 * and the server back to zero connections and zero requests in progress.
 *
 * `HELD_CONNECTIONS=<n>` changes the count (the default is the 10,000).
 */
import { type ChildProcess, fork } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import type { DashScopeHandlerStats } from '@dashscope-token/core';
import { type Emulator, startEmulator } from '@dashscope-token/emulator';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PERMANENT_KEY } from './apps.js';

const CONNECTIONS = Number(process.env.HELD_CONNECTIONS ?? 10_000);
const BATCH = 500;

interface ChildStats {
  connections: number;
  handler: DashScopeHandlerStats;
  rssBytes: number;
}

let emulator: Emulator;
let child: ChildProcess;
let port: number;

function ask(): Promise<ChildStats> {
  return new Promise((resolve) => {
    const onMessage = (message: { type: string } & ChildStats) => {
      if (message.type !== 'stats') return;
      child.off('message', onMessage);
      resolve(message);
    };
    child.on('message', onMessage);
    child.send({ type: 'stats' });
  });
}

beforeAll(async () => {
  emulator = await startEmulator({ apiKeys: [PERMANENT_KEY] });
  child = fork(fileURLToPath(new URL('../fixtures/express-server.mjs', import.meta.url)), {
    env: { ...process.env, UPSTREAM: emulator.url, API_KEY: PERMANENT_KEY },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  port = await new Promise<number>((resolve, reject) => {
    child.once('message', (message: { type: string; port: number }) => resolve(message.port));
    child.once('exit', (code) => reject(new Error(`the server exited with ${code}`)));
  });
});

afterAll(async () => {
  if (child.exitCode === null) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.send({ type: 'close' });
    await exited;
  }
  await emulator.close();
});

function connect(): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Sends one keep-alive request on `socket` and resolves with the answer's status once complete. */
function requestOn(socket: net.Socket, raw: string): Promise<number> {
  return new Promise((resolve) => {
    let data = Buffer.alloc(0);
    const done = (status: number) => {
      socket.off('data', onData);
      socket.off('close', onClose);
      resolve(status);
    };
    const onData = (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = data.subarray(0, end).toString('latin1');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? -1);
      const length = /\r\ncontent-length: *(\d+)/i.exec(head);
      const complete = length
        ? data.length - end - 4 >= Number(length[1])
        : data.subarray(-5).toString('latin1') === '0\r\n\r\n';
      if (complete) done(status);
    };
    const onClose = () => done(-1);
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.write(raw);
  });
}

const TOKEN = 'POST /dashscope/token HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n';
const CHAT_BODY = JSON.stringify({
  model: 'qwen-plus',
  messages: [{ role: 'user', content: 'Hello' }],
});
const CHAT = `POST /dashscope/compatible-mode/v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(CHAT_BODY)}\r\n\r\n${CHAT_BODY}`;

it(`holds ${CONNECTIONS.toLocaleString('en')} concurrent connections open against the Express proxy and serves every one`, async () => {
  const started = performance.now();
  const sockets: net.Socket[] = [];
  const errors: unknown[] = [];
  for (let i = 0; i < CONNECTIONS; i += BATCH) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(BATCH, CONNECTIONS - i) }, () => connect()),
    );
    for (const socket of batch) {
      socket.on('error', (error) => errors.push(error));
      sockets.push(socket);
    }
  }
  const connectedAt = performance.now();
  // A connection is up on our side before the server has accepted it from its queue.
  await expect.poll(async () => (await ask()).connections, { timeout: 10_000 }).toBe(CONNECTIONS);

  // One request on each connection, all in flight together, every connection still held.
  const statuses = await Promise.all(
    sockets.map((socket, i) => requestOn(socket, i % 2 === 0 ? TOKEN : CHAT)),
  );
  const servedAt = performance.now();
  const counts = statuses.reduce<Record<number, number>>((n, s) => {
    n[s] = (n[s] ?? 0) + 1;
    return n;
  }, {});
  expect(counts).toEqual({ 200: CONNECTIONS });
  expect(sockets.filter((s) => s.destroyed)).toHaveLength(0);
  const held = await ask();
  expect(held.connections).toBe(CONNECTIONS);
  expect(held.handler.activeRequests).toBe(0);
  expect(held.handler.upstream).toMatchObject({ pending: 0, running: 0, queued: 0 });
  // One mint per provider (token route, proxy) for all of them; every chat reached upstream.
  expect(emulator.stats().tokensIssued).toBe(2);
  expect(emulator.stats().requests.chat).toBe(CONNECTIONS / 2);
  expect(errors).toEqual([]);

  console.info(
    `[held-connections] ${CONNECTIONS} connections held open: connected in ${Math.round(connectedAt - started)} ms, ` +
      `${CONNECTIONS} requests (half token route, half proxied chat) all 200 in ${Math.round(servedAt - connectedAt)} ms; ` +
      `server RSS ${Math.round(held.rssBytes / 2 ** 20)} MiB, upstream pool ${held.handler.upstream?.connected} sockets`,
  );

  for (const socket of sockets) socket.destroy();
  await expect.poll(async () => (await ask()).connections, { timeout: 10_000 }).toBe(0);
}, 120_000);
