/**
 * The WebSocket-capable front doors, wired the same way everywhere —
 * `server.on('upgrade', mw.upgrade)` — through node:http (the core handler), Express 4/5 and
 * Koa 2/3; the Fastify 4/5 plugin wires itself on `app.server`. `authorize` reads the app's
 * session cookie through each framework's own request API. And a client that records every
 * byte it receives, for the key-leak checks.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createDashScopeHandler, type UsageEvent } from '@dashscope-token/core';
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
import WebSocket from 'ws';

/** `authorize`'s rule: the app's session cookie (`session=<user>`; `session=ok` is user `ok`). */
function decide(cookie: string | undefined) {
  const user = /(?:^|;\s*)session=([\w-]+)/.exec(cookie ?? '')?.[1];
  if (user !== undefined) return { id: user };
  return { status: 401 as const, message: 'Sign in first.' };
}

export interface WsApp {
  server: Server;
  close(): Promise<void>;
}

/** What every kind's middleware is given. */
export interface WsAppOptions {
  apiKey: string;
  baseUrl: string;
  /** Passed on as the front door's `onUsage` (absent: no metering). */
  onUsage?: (event: UsageEvent) => void;
}

export interface WsKind {
  name: string;
  start(options: WsAppOptions): Promise<WsApp>;
}

function usageOption(options: WsAppOptions) {
  const onUsage = options.onUsage;
  return onUsage === undefined ? {} : { onUsage: (event: UsageEvent) => onUsage(event) };
}

/** Each kind: the middleware at the root, its `upgrade` wired. */
export const WS_KINDS: WsKind[] = [
  {
    name: 'node:http',
    async start(options) {
      const handler = createDashScopeHandler({
        apiKey: options.apiKey,
        baseUrl: options.baseUrl,
        authorize: (req: IncomingMessage) => decide(req.headers.cookie),
        ...usageOption(options),
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
    async start(options: WsAppOptions) {
      const app = (express as typeof express5)();
      const mw = expressDashscope({
        apiKey: options.apiKey,
        baseUrl: options.baseUrl,
        authorize: (req: Request) => decide(req.get('cookie')),
        ...usageOption(options),
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
    async start(options: WsAppOptions) {
      const app = new (Koa as typeof Koa3)();
      const mw = koaDashscope({
        apiKey: options.apiKey,
        baseUrl: options.baseUrl,
        // `ctx.state` exists (empty) on upgrades; the cookie is read through `ctx.get`.
        authorize: (ctx: Context) =>
          ctx.state.user === undefined ? decide(ctx.get('cookie')) : true,
        ...usageOption(options),
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
    async start(options: WsAppOptions) {
      const app = (Fastify as typeof fastify5)();
      // No `server.on('upgrade', …)`: the plugin wires its listener on `app.server` itself.
      await app.register(fastifyDashscope, {
        apiKey: options.apiKey,
        baseUrl: options.baseUrl,
        authorize: (request: FastifyRequest) => decide(request.headers.cookie),
        ...usageOption(options),
      });
      await app.ready();
      return { server: app.server, close: () => app.close() };
    },
  })),
];

/** Every byte the WebSocket clients of {@link connect} received from the servers, as text. */
export const transcript: string[] = [];

/** Texts of {@link transcript} that hold `key` or a 12-character fragment of it. */
export function leaksOf(key: string): string[] {
  const fragments = [key, key.slice(3, 15), key.slice(-12)];
  return transcript.filter((t) => fragments.some((f) => t.includes(f)));
}

export interface Received {
  binary: boolean;
  text: string;
}

export type Outcome =
  | { kind: 'open'; ws: WebSocket; messages: Received[]; closed: Promise<number> }
  | { kind: 'refused'; status: number; body: Record<string, unknown> };

/** Connects; every message is kept (as latin1 text, so binary frames compare byte for byte). */
export function connect(url: string, headers: Record<string, string> = {}): Promise<Outcome> {
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

/** Resolves once `predicate` holds, polling every 10 ms. */
export async function until(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
