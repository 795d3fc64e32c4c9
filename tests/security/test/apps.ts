/**
 * The apps under attack: Express 5 with `dashscopeToken()`, Fastify 4 and 5 with the
 * `dashscopeToken` plugin, plain `node:http` with `createDashScopeHandler()`, the fetch handler
 * behind a node:http bridge and Hono on `@hono/node-server` with `dashscopeToken()` from
 * `@dashscope-token/hono`, all in front of the emulator. Every byte either server writes to
 * a client socket and every line given to the handler's logger is captured, so a test can
 * search them for the permanent key.
 */
import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import {
  createDashScopeHandler,
  type DashScopeHandler,
  type DashScopeHandlerOptions,
  type DashScopeLogger,
  type LimitRule,
  type LimitsOptions,
  type ProxyOptions,
} from '@dashscope-token/core';
import {
  DEFAULT_EMULATOR_EAS_SERVICE,
  type Emulator,
  type EmulatorPaiEasOptions,
} from '@dashscope-token/emulator';
import { dashscopeToken } from '@dashscope-token/express';
import { dashscopeToken as fastifyDashscope } from '@dashscope-token/fastify';
import { createFetchHandler, type FetchHandlerOptions } from '@dashscope-token/fetch';
import { type DashScopeHonoOptions, dashscopeToken as honoDashscope } from '@dashscope-token/hono';
import { createPaiEas } from '@dashscope-token/pai-eas';
import { createAdaptorServer } from '@hono/node-server';
import express, { type Request } from 'express';
import fastify5 from 'fastify';
import fastify4 from 'fastify4';
import { Hono } from 'hono';
import { nodeListener } from '../../../packages/fetch/test/node-bridge.js';
import { type Runtime, startRuntimeServer } from '../../integration/test/runtimes.js';

/** The permanent key: random-looking, so that no 8-character fragment occurs by chance. */
export const PERMANENT_KEY = 'sk-Sx4Kv9Qd2Lr7-Tz1Wm8Bn5Hc3Fj6';
/** A second tenant's permanent key. */
export const TENANT_KEY = 'sk-Pb8Ye3Nu6Ra1-Vo4Xi9Gt2Ks7Mw5';
export const PERMANENT_KEYS = [PERMANENT_KEY, TENANT_KEY] as const;

/** The STS triple the PAI-EAS routes sign with: random-looking, like the permanent keys. */
export const EAS_CREDENTIALS = Object.freeze({
  accessKeyId: 'STS.Nq3Wd8Ls1Kp6Zr4Tm',
  accessKeySecret: 'Gh7Ux2Mb9Ce4-Vy6Jo1Fs3Pl8Rk5',
  securityToken: 'CAIS-Yt5Qa2Xn7Eb9-Wd4Lk1Hj8Mr3Uc6Zp0',
});
/** The service token of the emulated EAS service. */
export const EAS_SERVICE_TOKEN = 'Mzk0Vn2Rp7Qd5-Lx8Tb3Wc6Hs1Ga9';
/** The secrets the PAI-EAS routes hold: neither may appear in an answer or a log line. */
export const EAS_SECRETS = [
  EAS_CREDENTIALS.accessKeySecret,
  EAS_CREDENTIALS.securityToken,
  EAS_SERVICE_TOKEN,
] as const;
export const EAS_SERVICE = DEFAULT_EMULATOR_EAS_SERVICE;

/** `paiEas` of `startEmulator` for the apps: the triple above and the service's token. */
export const EMULATOR_PAI_EAS: EmulatorPaiEasOptions = {
  accessKeys: [EAS_CREDENTIALS],
  services: [{ name: EAS_SERVICE, token: EAS_SERVICE_TOKEN }],
};

/** Workbench URLs go to requests with `X-Operator: yes` (any front door's context). */
function isOperator(ctx: unknown): boolean {
  const headers = (ctx as { headers?: unknown }).headers;
  if (headers instanceof Headers) return headers.get('x-operator') === 'yes';
  return (headers as Record<string, unknown> | undefined)?.['x-operator'] === 'yes';
}

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

/** `proxy.allowModels` of every front door (the fixture served by Bun and Deno lists the same). */
export const ALLOWED_MODELS = ['qwen-plus', 'qwen-max', 'text-embedding-v4'] as const;

/** Options every mount shares: the emulator, the key, the recording logger, quick failures. */
const NEVER: LimitRule = { points: 1_000_000_000, durationSeconds: 60 };
export const UNTRIPPED_LIMITS: LimitsOptions<unknown> = {
  tokenRoute: NEVER,
  proxy: NEVER,
  websocket: NEVER,
};

export function baseOptions(emulator: Emulator): {
  apiKey: string;
  baseUrl: string;
  logger: DashScopeLogger;
  retry: false;
  timeoutMs: number;
  proxy: ProxyOptions;
  limits: LimitsOptions<unknown>;
  paiEas: ReturnType<typeof createPaiEas<unknown>>;
} {
  return {
    paiEas: createPaiEas<unknown>({
      region: 'cn-shanghai',
      endpoint: emulator.url,
      credentials: EAS_CREDENTIALS,
      retry: false,
      timeoutMs: 300,
      services: [EAS_SERVICE],
      authorizeWorkbench: isOperator,
    }),
    apiKey: PERMANENT_KEY,
    baseUrl: emulator.url,
    logger: recordingLogger,
    retry: false,
    timeoutMs: 300,
    // allowModels on, so the corpus goes through its body checks (the models the suites use).
    proxy: { headersTimeoutMs: 300, allowModels: [...ALLOWED_MODELS] },
    // Limits stay on (the corpus goes through them) but never trip: the whole corpus comes
    // from one client.
    limits: UNTRIPPED_LIMITS,
  };
}

/** One extra mount of the middleware: a path and its options. */
export interface Mount {
  path: `/${string}`;
  options: DashScopeHandlerOptions<Request>;
  /** Put `express.json()` in front of it. */
  parseBody?: boolean;
}

/**
 * Express 5: the middleware at the root (routes under /dashscope, with `options` over the base
 * ones), plus `mounts`.
 */
export async function startExpressApp(
  emulator: Emulator,
  mounts: Mount[] = [],
  options: DashScopeHandlerOptions<Request> = {},
): Promise<App> {
  const app = express();
  const handlers: Watched[] = [];
  for (const mount of mounts) {
    const mw = dashscopeToken({ ...baseOptions(emulator), ...mount.options });
    handlers.push(mw.handler as DashScopeHandler<unknown>);
    if (mount.parseBody) app.use(mount.path, express.json(), mw);
    else app.use(mount.path, mw);
  }
  const root = dashscopeToken({ ...baseOptions(emulator), ...options });
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
  options: DashScopeHandlerOptions<unknown> = {},
): Promise<App> {
  const app = (FASTIFY_APPS[name] as typeof fastify5)();
  await app.register(fastifyDashscope, { ...baseOptions(emulator), ...options } as never);
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

/** Hono 4 on `@hono/node-server` with `app.use(dashscopeToken())` (routes under /dashscope). */
export async function startHonoApp(
  emulator: Emulator,
  options: DashScopeHonoOptions = {},
): Promise<App> {
  const mw = honoDashscope({ ...baseOptions(emulator), ...options });
  const app = new Hono().use(mw).get('/app/hello', (c) => c.text('hello'));
  const server = createAdaptorServer({ fetch: app.fetch }) as Server;
  return listen('hono', server, [mw.handler]);
}

/**
 * The fetch handler served by real Bun or real Deno (`fixtures/fetch-handler.mjs`, through the
 * integration suite's harness). Its process is out of reach of the socket capture and of
 * `stats()`: what it sent is what the client received (a test adds it to `captured.sent`), its
 * log lines are its stderr (added to `captured.logs` on close).
 */
export async function startRuntimeApp(emulator: Emulator, runtime: Runtime): Promise<App> {
  const server = await startRuntimeServer(runtime, FETCH_HANDLER_SCRIPT, {
    env: { SECURITY_API_KEY: PERMANENT_KEY, SECURITY_BASE_URL: emulator.url },
  });
  return {
    name: runtime,
    url: server.base,
    port: server.port,
    handlers: [],
    async close() {
      captured.logs.push(...server.stderr().split('\n').filter(Boolean));
      await server.close();
    },
  };
}

const FETCH_HANDLER_SCRIPT = fileURLToPath(
  new URL('../fixtures/fetch-handler.mjs', import.meta.url),
);

/** The runtimes whose real binaries serve the fetch handler in these suites. */
export const RUNTIME_APPS: readonly Runtime[] = ['bun', 'deno'];

/**
 * The apps that hand the handler a Fetch `Request`, whose URL parser normalises (or refuses)
 * some request targets before any handler sees them.
 */
export const VIA_REQUEST: readonly string[] = ['fetch', 'hono', 'bun', 'deno'];

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
export const FRONT_DOORS = ['express', 'node:http', 'fetch', 'hono', ...Object.keys(FASTIFY_APPS)];

/**
 * Every in-process front door, in front of `emulator`: Express 5, node:http, fetch, Hono,
 * Fastify 4 and 5 (the attack corpus adds real Bun and Deno).
 */
export async function startEveryFrontDoor(emulator: Emulator): Promise<App[]> {
  const apps = [
    await startExpressApp(emulator),
    await startNodeApp(emulator),
    await startFetchApp(emulator),
    await startHonoApp(emulator),
  ];
  for (const name of Object.keys(FASTIFY_APPS) as (keyof typeof FASTIFY_APPS)[]) {
    apps.push(await startFastifyApp(emulator, name));
  }
  return apps;
}

/** Options every front door takes (its context is what `limits.key` and the hooks receive). */
export type FrontDoorOptions = DashScopeHandlerOptions<unknown> & FetchHandlerOptions<unknown>;

/** The front door `name` of {@link FRONT_DOORS}, with `options` over the base ones. */
export function startFrontDoor(
  name: string,
  emulator: Emulator,
  options: FrontDoorOptions,
): Promise<App> {
  switch (name) {
    case 'express':
      return startExpressApp(emulator, [], options as DashScopeHandlerOptions<Request>);
    case 'node:http':
      return startNodeApp(emulator, options as DashScopeHandlerOptions<IncomingMessage>);
    case 'fetch':
      return startFetchApp(emulator, options as FetchHandlerOptions<WebRequest>);
    case 'hono':
      return startHonoApp(emulator, options as DashScopeHonoOptions);
    default:
      return startFastifyApp(emulator, name as keyof typeof FASTIFY_APPS, options);
  }
}

/**
 * A request header in any front door's context: Express, Fastify and node:http requests,
 * the Fetch `Request`, Hono's `Context`.
 */
export function headerIn(ctx: unknown, name: string): string | undefined {
  const c = ctx as { headers?: unknown; req?: { raw?: { headers?: unknown } } };
  const headers = c.req?.raw?.headers ?? c.headers;
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  const value = (headers as Record<string, unknown> | undefined)?.[name];
  return typeof value === 'string' ? value : undefined;
}
