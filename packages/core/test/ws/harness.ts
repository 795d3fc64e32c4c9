/**
 * WebSocket test harness: the handler on a real node:http server wired with
 * `server.on('upgrade', handler.upgrade)`, in front of the emulator, and a client that records
 * every byte it receives from the proxy (refusals, messages, close reasons) so a test file can
 * assert that the permanent key never reached a client.
 */
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import WebSocket, { type ClientOptions } from 'ws';
import {
  createDashScopeHandler,
  type DashScopeHandler,
  type DashScopeHandlerOptions,
} from '../../src/index.js';

/** The permanent key the tests configure; it must never appear in anything a client receives. */
export const PERMANENT_KEY = 'sk-ws-test-permanent-key-0000001';

/** Everything clients received from the proxy, as text. */
export const received: string[] = [];

/** Texts in {@link received} that contain the permanent key or a 12-character fragment of it. */
export function leaks(): string[] {
  const fragments = [PERMANENT_KEY, PERMANENT_KEY.slice(3, 15), PERMANENT_KEY.slice(-12)];
  return received.filter((text) => fragments.some((f) => text.includes(f)));
}

export interface RunningProxy {
  /** `http://127.0.0.1:PORT` */
  base: string;
  /** `ws://127.0.0.1:PORT` */
  wsBase: string;
  port: number;
  server: http.Server;
  handler: DashScopeHandler;
  close(): Promise<void>;
}

/** Starts the handler on node:http with `server.on('upgrade', handler.upgrade)`. */
export async function startProxy(options: DashScopeHandlerOptions): Promise<RunningProxy> {
  const handler = createDashScopeHandler({
    apiKey: PERMANENT_KEY,
    ...options,
    // These tests proxy sessions without `authorize` unless they set one: they opt in.
    websocket:
      options.websocket === false
        ? false
        : { allowUnauthenticated: options.authorize === undefined, ...options.websocket },
  });
  const server = http.createServer(handler);
  server.on('upgrade', handler.upgrade);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    base: `http://127.0.0.1:${port}`,
    wsBase: `ws://127.0.0.1:${port}`,
    port,
    server,
    handler,
    async close() {
      await handler.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A message as received. */
export interface Received {
  binary: boolean;
  data: Buffer;
  /** Text messages parsed as JSON, when they are. */
  json?: unknown;
}

/** An open client connection with a queue of received messages. */
export interface Connection {
  ws: WebSocket;
  next(timeoutMs?: number): Promise<Received>;
  take(n: number, timeoutMs?: number): Promise<Received[]>;
  /** Resolves with the close code and reason (and when it happened, `Date.now()`). */
  closed: Promise<{ code: number; reason: string; at: number }>;
}

/** The HTTP answer that refused a handshake. */
export interface Refusal {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  json: Record<string, unknown>;
}

function track(ws: WebSocket): Connection {
  const queue: Received[] = [];
  const waiters: ((r: Received) => void)[] = [];
  ws.on('message', (data, isBinary) => {
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer);
    received.push(buf.toString('latin1'));
    let json: unknown;
    if (!isBinary) {
      try {
        json = JSON.parse(buf.toString('utf8'));
      } catch {
        json = undefined;
      }
    }
    const r: Received = { binary: isBinary, data: buf, ...(json !== undefined && { json }) };
    const waiter = waiters.shift();
    if (waiter) waiter(r);
    else queue.push(r);
  });
  const closed = new Promise<{ code: number; reason: string; at: number }>((resolve) => {
    ws.on('close', (code, reason) => {
      received.push(reason.toString('latin1'));
      resolve({ code, reason: reason.toString('utf8'), at: Date.now() });
    });
  });
  const next = (timeoutMs = 5000) =>
    new Promise<Received>((resolve, reject) => {
      const queued = queue.shift();
      if (queued) {
        resolve(queued);
        return;
      }
      const done = (r: Received) => {
        clearTimeout(timer);
        resolve(r);
      };
      const timer = setTimeout(() => {
        const i = waiters.indexOf(done);
        if (i >= 0) waiters.splice(i, 1);
        reject(new Error(`no message within ${timeoutMs} ms`));
      }, timeoutMs);
      waiters.push(done);
    });
  return {
    ws,
    next,
    async take(n, timeoutMs) {
      const out: Received[] = [];
      for (let i = 0; i < n; i++) out.push(await next(timeoutMs));
      return out;
    },
    closed,
  };
}

export type ConnectOptions = ClientOptions & { protocols?: string[] };

/** Connects; resolves with the open connection or the HTTP refusal. */
export function connect(
  url: string,
  options: ConnectOptions = {},
): Promise<{ kind: 'open'; conn: Connection } | { kind: 'refused'; refusal: Refusal }> {
  const { protocols, ...rest } = options;
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols ?? [], { perMessageDeflate: false, ...rest });
    const conn = track(ws);
    ws.once('open', () => resolve({ kind: 'open', conn }));
    ws.once('unexpected-response', (req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        received.push(JSON.stringify(res.headers), body);
        let json: Record<string, unknown> = {};
        try {
          json = JSON.parse(body) as Record<string, unknown>;
        } catch {
          json = {};
        }
        resolve({
          kind: 'refused',
          refusal: { status: res.statusCode ?? 0, headers: res.headers, body, json },
        });
        req.destroy();
      });
    });
    ws.on('error', reject);
  });
}

/** Connects and expects a 101. */
export async function open(url: string, options?: ConnectOptions): Promise<Connection> {
  const outcome = await connect(url, options);
  if (outcome.kind !== 'open') {
    throw new Error(`expected 101, got ${outcome.refusal.status} ${outcome.refusal.body}`);
  }
  return outcome.conn;
}

/** Connects and expects an HTTP refusal. */
export async function refusal(url: string, options?: ConnectOptions): Promise<Refusal> {
  const outcome = await connect(url, options);
  if (outcome.kind !== 'refused') {
    outcome.conn.ws.terminate();
    throw new Error('expected the handshake to be refused, but it opened');
  }
  return outcome.refusal;
}

/**
 * Sends a raw upgrade request (for handshakes no client library sends) and resolves with the
 * status and the whole answer once the server closes the connection.
 */
export function rawUpgrade(
  port: number,
  path: string,
  headers: Record<string, string>,
  method = 'GET',
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(), 5000);
    socket.on('data', (c) => {
      chunks.push(c);
      // A 101 keeps the connection open: the status line is all that is needed.
      if (
        /^HTTP\/1\.1 101 [^\r]*\r\n[\s\S]*\r\n\r\n/.test(Buffer.concat(chunks).toString('latin1'))
      ) {
        socket.destroy();
      }
    });
    socket.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      received.push(text);
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text });
    });
    socket.on('error', reject);
    const lines = [`${method} ${path} HTTP/1.1`];
    if (!Object.keys(headers).some((h) => h.toLowerCase() === 'host')) {
      lines.push(`Host: 127.0.0.1:${port}`);
    }
    for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
  });
}

/** Headers of a valid handshake, for {@link rawUpgrade}. */
export const HANDSHAKE = {
  Connection: 'Upgrade',
  Upgrade: 'websocket',
  'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
  'Sec-WebSocket-Version': '13',
};

/** Resolves once `predicate` holds, polling every 10 ms. */
export async function until(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export const INFERENCE = '/dashscope/api-ws/v1/inference';
export const REALTIME = '/dashscope/api-ws/v1/realtime?model=qwen-omni-turbo-realtime';

/** A `run-task` message of the speech protocol. */
export function runTask(taskId: string, task: 'asr' | 'tts'): string {
  return JSON.stringify({
    header: { action: 'run-task', task_id: taskId, streaming: 'duplex' },
    payload: {
      task_group: 'audio',
      task,
      function: task === 'asr' ? 'recognition' : 'SpeechSynthesizer',
      model: task === 'asr' ? 'paraformer-realtime-v2' : 'cosyvoice-v2',
      // CosyVoice requires a voice on run-task.
      parameters: task === 'tts' ? { voice: 'longxiaochun_v2' } : {},
      input: {},
    },
  });
}

/** A `continue-task` / `finish-task` message. */
export function taskAction(
  action: 'continue-task' | 'finish-task',
  taskId: string,
  input: unknown = {},
): string {
  return JSON.stringify({
    header: { action, task_id: taskId, streaming: 'duplex' },
    payload: { input },
  });
}
