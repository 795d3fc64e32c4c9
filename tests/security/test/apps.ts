/**
 * The apps under attack: Express 5 with `dashscopeToken()`, Fastify 4 and 5 with the
 * `dashscopeToken` plugin and plain `node:http` with `createDashScopeHandler()`, all in front of
 * the emulator. Every byte either server writes to
 * a client socket and every line given to the handler's logger is captured, so a test can
 * search them for the permanent key.
 */
import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import net from 'node:net';
import {
  createDashScopeHandler,
  type DashScopeHandler,
  type DashScopeHandlerOptions,
  type DashScopeLogger,
  type ProxyOptions,
} from '@dashscope-token/core';
import type { Emulator } from '@dashscope-token/emulator';
import { dashscopeToken } from '@dashscope-token/express';
import { dashscopeToken as fastifyDashscope } from '@dashscope-token/fastify';
import { createFetchHandler, type FetchHandlerOptions } from '@dashscope-token/fetch';
import express, { type Request } from 'express';
import fastify5 from 'fastify';
import fastify4 from 'fastify4';
import { nodeListener } from '../../../packages/fetch/test/node-bridge.js';

/** The permanent key: random-looking, so that no 8-character fragment occurs by chance. */
export const PERMANENT_KEY = 'sk-Sx4Kv9Qd2Lr7-Tz1Wm8Bn5Hc3Fj6';
/** A second tenant's permanent key. */
export const TENANT_KEY = 'sk-Pb8Ye3Nu6Ra1-Vo4Xi9Gt2Ks7Mw5';
export const PERMANENT_KEYS = [PERMANENT_KEY, TENANT_KEY] as const;

/** Everything sent to clients and logged, across every app of a test file. */
export const captured = {
  /** Bytes written to client sockets (latin1 text). */
  sent: [] as string[],
  /** Log lines with their fields, one string each. */
  logs: [] as string[],
};

/** Every 8-character fragment of a permanent key found in `text`. */
export function keyFragments(text: string, keys: readonly string[] = PERMANENT_KEYS): string[] {
  const found: string[] = [];
  for (const key of keys) {
    for (let i = 0; i + 8 <= key.length; i++) {
      const fragment = key.slice(i, i + 8);
      if (text.includes(fragment)) found.push(fragment);
    }
  }
  return found;
}

/** A logger that records every call at every level. */
export const recordingLogger: DashScopeLogger = Object.fromEntries(
  (['debug', 'info', 'warn', 'error'] as const).map((level) => [
    level,
    (message: string, fields?: Record<string, unknown>) => {
      captured.logs.push(`${level} ${message} ${JSON.stringify(fields ?? {})}`);
    },
  ]),
);

/** Records every byte the server writes to any client socket. */
function captureSockets(server: Server): void {
  const record = (chunk: unknown, encoding?: unknown): void => {
    if (chunk === undefined || chunk === null || typeof chunk === 'function') return;
    if (typeof chunk === 'string') {
      captured.sent.push(
        Buffer.from(
          chunk,
          typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8',
        ).toString('latin1'),
      );
    } else if (chunk instanceof Uint8Array) {
      captured.sent.push(Buffer.from(chunk).toString('latin1'));
    }
  };
  server.on('connection', (socket: Socket) => {
    const write = socket.write;
    const end = socket.end;
    socket.write = function (this: Socket, chunk: unknown, ...rest: unknown[]) {
      record(chunk, rest[0]);
      return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
    } as Socket['write'];
    socket.end = function (this: Socket, ...args: unknown[]) {
      record(args[0], args[1]);
      return (end as (...args: unknown[]) => Socket).apply(this, args);
    } as Socket['end'];
  });
}

/** What an app's close() checks of a handler: requests in progress, its upstream pool. */
interface Watched {
  stats(): {
    activeRequests: number;
    upstream?: { connected: number; running: number; pending: number; queued: number } | undefined;
  };
  close(): Promise<void>;
}

export interface App {
  name: string;
  url: string;
  port: number;
  server: Server;
  /** The handlers mounted, for stats. */
  handlers: Watched[];
  close(): Promise<void>;
}

async function listen(name: string, server: Server, handlers: Watched[]) {
  captureSockets(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const app: App = {
    name,
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    handlers,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      // Once the clients are gone, nothing may be left in progress, upstream or here, and no
      // pool socket once closed.
      const busy = () =>
        handlers.filter((h) => {
          const s = h.stats();
          const pool = s.upstream;
          return (
            s.activeRequests > 0 ||
            (pool !== undefined && pool.running + pool.pending + pool.queued > 0)
          );
        });
      const deadline = Date.now() + 3000;
      while (busy().length > 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const left = busy().map((h) => JSON.stringify(h.stats()));
      await Promise.all(handlers.map((h) => h.close()));
      const sockets = handlers.reduce((n, h) => n + (h.stats().upstream?.connected ?? 0), 0);
      if (left.length > 0 || sockets > 0) {
        throw new Error(
          `${name}: left open after close: ${left.join('; ')}; ${sockets} pool sockets`,
        );
      }
    },
  };
  return app;
}

/** Options every mount shares: the emulator, the key, the recording logger, quick failures. */
export function baseOptions(emulator: Emulator): {
  apiKey: string;
  baseUrl: string;
  logger: DashScopeLogger;
  retry: false;
  timeoutMs: number;
  proxy: ProxyOptions;
} {
  return {
    apiKey: PERMANENT_KEY,
    baseUrl: emulator.url,
    logger: recordingLogger,
    retry: false,
    timeoutMs: 300,
    proxy: { headersTimeoutMs: 300 },
  };
}

/** One extra mount of the middleware: a path and its options. */
export interface Mount {
  path: `/${string}`;
  options: DashScopeHandlerOptions<Request>;
  /** Put `express.json()` in front of it. */
  parseBody?: boolean;
}

/** Express 5: the middleware at the root (routes under /dashscope), plus `mounts`. */
export async function startExpressApp(emulator: Emulator, mounts: Mount[] = []): Promise<App> {
  const app = express();
  const handlers: Watched[] = [];
  for (const mount of mounts) {
    const mw = dashscopeToken({ ...baseOptions(emulator), ...mount.options });
    handlers.push(mw.handler as DashScopeHandler<unknown>);
    if (mount.parseBody) app.use(mount.path, express.json(), mw);
    else app.use(mount.path, mw);
  }
  const root = dashscopeToken(baseOptions(emulator));
  handlers.push(root.handler as DashScopeHandler<unknown>);
  app.use(root);
  app.get('/app/hello', (_req, res) => {
    res.send('hello');
  });
  return listen('express', http.createServer(app), handlers);
}

/** The Fastify majors under attack, by app name. */
export const FASTIFY_APPS = { 'fastify 4': fastify4, 'fastify 5': fastify5 } as const;

/** Fastify 4 or 5 with the plugin registered on the root (routes under /dashscope). */
export async function startFastifyApp(
  emulator: Emulator,
  name: keyof typeof FASTIFY_APPS,
): Promise<App> {
  const app = (FASTIFY_APPS[name] as typeof fastify5)();
  await app.register(fastifyDashscope, baseOptions(emulator));
  app.get('/app/hello', async () => 'hello');
  await app.ready();
  return listen(name, app.server, [app.dashscope as DashScopeHandler<unknown>]);
}

/** Plain node:http with the core handler (routes under /dashscope). */
export async function startNodeApp(
  emulator: Emulator,
  options: DashScopeHandlerOptions<IncomingMessage> = {},
): Promise<App> {
  const handler = createDashScopeHandler({ ...baseOptions(emulator), ...options });
  const server = http.createServer((req: IncomingMessage, res: ServerResponse) =>
    handler(req, res),
  );
  return listen('node:http', server, [handler as DashScopeHandler<unknown>]);
}

/** The Fetch API's `Request` (not Express's). */
type WebRequest = globalThis.Request;

/** The fetch handler behind node:http, through the smallest Request/Response bridge. */
export async function startFetchApp(
  emulator: Emulator,
  options: FetchHandlerOptions<WebRequest> = {},
): Promise<App> {
  const handler = createFetchHandler({ ...baseOptions(emulator), ...options });
  const server = http.createServer(nodeListener(handler.fetch));
  return listen('fetch', server, [handler]);
}

/** What a raw exchange produced. */
export interface RawAnswer {
  /** The status of the first answer, or `'closed'` when the connection closed without one. */
  status: number | 'closed';
  text: string;
}

/** Whether `data` holds one complete answer with a `Content-Length` (or a HEAD-like empty one). */
function completeAnswer(data: Buffer): boolean {
  const end = data.indexOf('\r\n\r\n');
  if (end < 0) return false;
  const head = data.subarray(0, end).toString('latin1');
  const length = /\r\ncontent-length: *(\d+)/i.exec(head);
  if (length === null) return /^HTTP\/1\.[01] (1\d\d|204|304)/.test(head);
  return data.length - end - 4 >= Number(length[1]);
}

/**
 * Sends `raw` (one byte per character) over a new TCP connection and resolves with what came
 * back once the server closed the connection, sent one complete answer with a
 * `Content-Length`, or went quiet for `quietMs`.
 */
export function sendRaw(port: number, raw: string, quietMs = 400): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      socket.destroy();
      const text = Buffer.concat(chunks).toString('latin1');
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      resolve({ status: match ? Number(match[1]) : 'closed', text });
    };
    const arm = (): void => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(finish, quietMs);
    };
    socket.on('connect', () => {
      socket.write(Buffer.from(raw, 'latin1'));
      arm();
    });
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (completeAnswer(Buffer.concat(chunks))) finish();
      else arm();
    });
    socket.on('end', finish);
    socket.on('close', finish);
    socket.on('error', finish);
  });
}

/** The names of the front doors {@link startEveryFrontDoor} starts, in order. */
export const FRONT_DOORS = ['express', 'node:http', 'fetch', ...Object.keys(FASTIFY_APPS)];

/** Every front door, in front of `emulator`: Express 5, node:http, fetch, Fastify 4 and 5. */
export async function startEveryFrontDoor(emulator: Emulator): Promise<App[]> {
  const apps = [
    await startExpressApp(emulator),
    await startNodeApp(emulator),
    await startFetchApp(emulator),
  ];
  for (const name of Object.keys(FASTIFY_APPS) as (keyof typeof FASTIFY_APPS)[]) {
    apps.push(await startFastifyApp(emulator, name));
  }
  return apps;
}
