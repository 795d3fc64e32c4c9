/**
 * Test harness: the real emulator as Model Studio, the handler in front of it on a real
 * node:http server, and helpers that send requests (node:http or raw sockets) while recording
 * every response byte, so that a test file can assert at the end that the permanent key never
 * reached a client.
 */
import http, {
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import net from 'node:net';
import { type Emulator, type EmulatorOptions, startEmulator } from '@dashscope-token/emulator';
import {
  createDashScopeHandler,
  type DashScopeHandler,
  type DashScopeHandlerOptions,
} from '../../src/index.js';
import { closeAndCheckQuiescent } from '../reliability/quiescence.js';

/** The permanent key the tests configure; it must never appear in any response. */
export const PERMANENT_KEY = 'sk-proxy-test-permanent-key-0001';
/** A second tenant's permanent key. */
export const SECOND_KEY = 'sk-proxy-test-second-tenant-0002';

/** Every response (status line, headers, body) any helper received, as text. */
export const seenResponses: string[] = [];

/** Whether any recorded response contains a permanent key or a 12-character fragment of one. */
export function leakedKeys(): string[] {
  const leaks: string[] = [];
  for (const key of [PERMANENT_KEY, SECOND_KEY]) {
    const fragments = [key, key.slice(3, 15), key.slice(-12)];
    for (const text of seenResponses) {
      if (fragments.some((f) => text.includes(f))) leaks.push(text.slice(0, 200));
    }
  }
  return leaks;
}

export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

function record(status: number, headers: IncomingHttpHeaders, text: string): void {
  seenResponses.push(`${status}\n${JSON.stringify(headers)}\n${text}`);
}

export interface SendOptions {
  headers?: Record<string, string | string[]>;
  body?: string | Buffer;
  /** Send the body in two writes without Content-Length (Transfer-Encoding: chunked). */
  chunked?: boolean;
}

function writeBody(req: http.ClientRequest, options: SendOptions): void {
  const body = options.body;
  if (options.chunked && body !== undefined) {
    const bytes = Buffer.from(body);
    const half = Math.floor(bytes.length / 2);
    req.write(bytes.subarray(0, half));
    setTimeout(() => req.end(bytes.subarray(half)), 10);
  } else {
    req.end(body);
  }
}

/** Sends one request with node:http and reads the whole answer. */
export function send(
  base: string,
  method: string,
  path: string,
  options: SendOptions = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const url = new URL(base);
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        method,
        path,
        headers: options.headers,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          record(res.statusCode ?? 0, res.headers, text);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    writeBody(req, options);
  });
}

/** Opens a request and resolves with the response stream once headers are in. */
export function open(
  base: string,
  method: string,
  path: string,
  options: SendOptions = {},
): Promise<{ req: http.ClientRequest; res: IncomingMessage }> {
  return new Promise((resolve, reject) => {
    const url = new URL(base);
    const req = http.request(
      { host: url.hostname, port: url.port, method, path, headers: options.headers, agent: false },
      (res) => {
        res.on('data', (c: Buffer) => seenResponses.push(c.toString('utf8')));
        seenResponses.push(`${res.statusCode}\n${JSON.stringify(res.headers)}`);
        resolve({ req, res });
      },
    );
    req.on('error', reject);
    writeBody(req, options);
  });
}

/**
 * Sends raw bytes over a TCP socket (for targets an HTTP client would normalise) and resolves
 * with everything the server answered until it closed or went quiet for `quietMs`.
 */
export function sendRaw(base: string, raw: string, quietMs = 300): Promise<string> {
  return new Promise((resolve, reject) => {
    const url = new URL(base);
    const socket = net.connect(Number(url.port), url.hostname);
    const chunks: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    const finish = () => {
      if (timer) clearTimeout(timer);
      socket.destroy();
      const text = Buffer.concat(chunks).toString('utf8');
      seenResponses.push(text);
      resolve(text);
    };
    const arm = () => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(finish, quietMs);
    };
    socket.on('connect', () => {
      socket.write(raw);
      arm();
    });
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      // One complete answer is enough: `Connection: close` is sent with each raw request.
      arm();
    });
    socket.on('end', finish);
    socket.on('error', (e) => (chunks.length > 0 ? finish() : reject(e)));
  });
}

/** Status code of a raw HTTP answer (`HTTP/1.1 400 Bad Request` → 400), 0 when none. */
export function rawStatus(answer: string): number {
  const match = /^HTTP\/1\.1 (\d{3})/.exec(answer);
  return match ? Number(match[1]) : 0;
}

export interface Harness {
  emulator: Emulator;
  handler: DashScopeHandler;
  server: http.Server;
  /** Base URL of the server running the handler, `http://127.0.0.1:port`. */
  url: string;
  close(): Promise<void>;
}

export interface HarnessOptions {
  /** Handler options, or a function of the started emulator returning them. */
  handler?:
    | Partial<DashScopeHandlerOptions>
    | ((emulator: Emulator) => Partial<DashScopeHandlerOptions>);
  emulator?: EmulatorOptions;
  /** Serve requests with this instead of the handler itself (e.g. to pass `parsedBody`). */
  listener?: (
    handler: DashScopeHandler,
  ) => (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;
}

/** Starts the emulator, a handler pointed at it, and a node:http server running the handler. */
export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const emulator = await startEmulator({
    apiKeys: [PERMANENT_KEY, SECOND_KEY],
    chunkDelayMs: 5,
    ...options.emulator,
  });
  const handler = createDashScopeHandler({
    apiKey: PERMANENT_KEY,
    baseUrl: emulator.url,
    retry: false,
    ...(typeof options.handler === 'function' ? options.handler(emulator) : options.handler),
  });
  const listener = options.listener ? options.listener(handler) : handler;
  const server = http.createServer((req, res) => {
    void listener(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as net.AddressInfo;
  return {
    emulator,
    handler,
    server,
    url: `http://127.0.0.1:${address.port}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      // Once the clients are gone, everything must unwind: no request left in the handler, in
      // the upstream pool or at Model Studio, and no pool socket after close.
      const problems = await closeAndCheckQuiescent({ emulator, handler });
      await emulator.close();
      if (problems.length > 0) throw new Error(`Left open after the test: ${problems.join('; ')}`);
    },
  };
}

/** A JSON body and its headers. */
export function json(body: unknown, headers: Record<string, string> = {}): SendOptions {
  return {
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  };
}

export const NATIVE_PATH = '/dashscope/api/v1/services/aigc/text-generation/generation';
export const CHAT_PATH = '/dashscope/compatible-mode/v1/chat/completions';

export const NATIVE_BODY = { model: 'qwen-plus', input: { prompt: 'Hello there' } };
export const CHAT_BODY = {
  model: 'qwen-plus',
  messages: [{ role: 'user', content: 'Hello there' }],
};
