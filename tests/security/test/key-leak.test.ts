/**
 * The key-leak sweep: drive every route, every error path and every upstream fault through
 * Express (several mounts: guarded, multi-tenant, allowModels, CORS, body parser, short TTLs,
 * an unreachable upstream), Fastify 4 and 5, plain node:http, the fetch handler (behind a
 * node:http → Request bridge, and served by real Bun and real Deno: what their clients received
 * and their log lines on stderr) and Hono on `@hono/node-server`, capture every byte written to a client socket, every line
 * given to the logger and every diagnostics-channel message, and search them for the permanent keys and every 8-character fragment
 * of them. Expected matches: 0. Log lines must also carry no
 * `Authorization` or `Cookie` value: not the client's, not an injected or vended `st-` key.
 */

import diagnostics from 'node:diagnostics_channel';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CHANNELS } from '@dashscope-token/core';
import {
  type Emulator,
  type EmulatorFault,
  type EmulatorRoute,
  startEmulator,
} from '@dashscope-token/emulator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Runtime } from '../../integration/test/runtimes.js';
import {
  type App,
  captured,
  EAS_CREDENTIALS,
  EAS_SECRETS,
  EAS_SERVICE,
  EMULATOR_PAI_EAS,
  FASTIFY_APPS,
  keyFragments,
  PERMANENT_KEY,
  PERMANENT_KEYS,
  type RawAnswer,
  RUNTIME_APPS,
  sendRaw,
  startExpressApp,
  startFastifyApp,
  startFetchApp,
  startHonoApp,
  startNodeApp,
  startRuntimeApp,
  TENANT_KEY,
} from './apps.js';

const CLIENT_BEARER = 'client-own-bearer-Jx93kQ0wPz';
const CLIENT_COOKIE = 'session=client-cookie-Ve62nB8sLt';
const KEY = PERMANENT_KEY;

let emulator: Emulator;
let deadOrigin: string;
const statuses = new Map<number | 'closed', number>();
let exchanges = 0;

function raw(
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
): string {
  const lines = [`${method} ${path} HTTP/1.1`, 'Host: 127.0.0.1'];
  const all: Record<string, string> = {
    Authorization: `Bearer ${CLIENT_BEARER}`,
    Cookie: CLIENT_COOKIE,
    ...headers,
  };
  if (body !== undefined && all['Transfer-Encoding'] === undefined) {
    all['Content-Length'] = String(Buffer.byteLength(body));
  }
  for (const [name, value] of Object.entries(all)) lines.push(`${name}: ${value}`);
  lines.push('Connection: close');
  return `${lines.join('\r\n')}\r\n\r\n${body ?? ''}`;
}

async function exchange(app: App, request: string): Promise<RawAnswer> {
  const answer = await sendRaw(app.port, request, 1500);
  // A runtime's own process is out of reach of the socket capture: record what came back.
  if (app.handlers.length === 0) captured.sent.push(answer.text);
  exchanges++;
  statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
  return answer;
}

const JSON_TYPE = { 'Content-Type': 'application/json' };
const CHAT = { model: 'qwen-plus', messages: [{ role: 'user', content: 'Hi' }] };
const NATIVE = { model: 'qwen-plus', input: { prompt: 'Hi' } };

/** The requests every mount gets: each route, each method class, streaming and not. */
function routeRequests(prefix: string): string[] {
  const p = `${prefix}/dashscope`;
  return [
    raw('POST', `${p}/token`, {}, ''),
    raw('GET', `${p}/token`),
    raw('OPTIONS', `${p}/token`),
    raw('OPTIONS', `${p}/token`, {
      Origin: 'https://app.example',
      'Access-Control-Request-Method': 'POST',
    }),
    raw('OPTIONS', `${p}/compatible-mode/v1/chat/completions`, {
      Origin: 'https://evil.example',
      'Access-Control-Request-Method': 'POST',
    }),
    raw('POST', `${p}/compatible-mode/v1/chat/completions`, JSON_TYPE, JSON.stringify(CHAT)),
    raw(
      'POST',
      `${p}/compatible-mode/v1/chat/completions`,
      { ...JSON_TYPE, Origin: 'https://app.example' },
      JSON.stringify({ ...CHAT, stream: true, stream_options: { include_usage: true } }),
    ),
    raw(
      'POST',
      `${p}/api/v1/services/aigc/text-generation/generation`,
      JSON_TYPE,
      JSON.stringify(NATIVE),
    ),
    raw(
      'POST',
      `${p}/api/v1/services/aigc/text-generation/generation`,
      { ...JSON_TYPE, 'X-DashScope-SSE': 'enable' },
      JSON.stringify({ ...NATIVE, parameters: { incremental_output: true } }),
    ),
    raw(
      'POST',
      `${p}/api/v1/services/embeddings/text-embedding/text-embedding`,
      JSON_TYPE,
      JSON.stringify({ model: 'text-embedding-v4', input: { texts: ['a'] } }),
    ),
    raw(
      'POST',
      `${p}/compatible-mode/v1/embeddings`,
      JSON_TYPE,
      JSON.stringify({ model: 'text-embedding-v4', input: 'a' }),
    ),
    raw('GET', `${p}/compatible-mode/v1/models`),
    raw('GET', `${p}/compatible-mode/v1/models?model=qwen-max`),
    raw('GET', `${p}/api/v1/tasks/unknown-task`),
    raw('DELETE', `${p}/compatible-mode/v1/nothing-here`),
    raw('TRACE', `${p}/compatible-mode/v1/models`),
    raw('GET', `${p}/api/v1/tokens`),
    raw('GET', `${p}/nowhere`),
    raw('GET', `${p}/api-ws/v1/inference`),
    raw('POST', `${p}/compatible-mode/v1/chat/completions`, JSON_TYPE, '{"model":'),
    raw('POST', `${p}/compatible-mode/v1/chat/completions`, { 'Content-Type': 'text/plain' }, 'hi'),
    raw(
      'POST',
      `${p}/compatible-mode/v1/chat/completions`,
      { ...JSON_TYPE, 'Content-Length': '11534336' },
      '',
    ),
    raw(
      'POST',
      `${p}/compatible-mode/v1/chat/completions`,
      { ...JSON_TYPE, 'Transfer-Encoding': 'chunked' },
      `${(5000).toString(16)}\r\n${'x'.repeat(5000)}\r\n0\r\n\r\n`,
    ),
    raw(
      'POST',
      `${p}/compatible-mode/v1/chat/completions`,
      { ...JSON_TYPE, 'X-User': 'alice' },
      JSON.stringify({ ...CHAT, model: 'qwen-max' }),
    ),
    raw('POST', `${p}/token`, { 'X-User': 'alice', 'X-Tenant': 'b' }, ''),
    raw('POST', `${p}/token`, { 'X-User': 'throw' }, ''),
    raw('POST', `${p}/token`, { 'X-User': 'alice', 'X-Tenant': 'none' }, ''),
    ...paiEasRequests(p),
  ];
}

const EAS_INSTANCE = 'emulator-llm-7b56869574-44nq9';
const OPERATOR = { ...JSON_TYPE, 'X-Operator': 'yes' };

/** The PAI-EAS routes: Workbench URLs (allowed, refused, malformed) and service calls. */
function paiEasRequests(p: string): string[] {
  const eas = `${p}/pai-eas`;
  const workbench = JSON.stringify({ service: EAS_SERVICE, instance: EAS_INSTANCE });
  const chat = { model: EAS_SERVICE, messages: [{ role: 'user', content: 'Hi' }] };
  return [
    raw('POST', `${eas}/workbench`, OPERATOR, workbench),
    raw('POST', `${eas}/workbench`, JSON_TYPE, workbench),
    raw('POST', `${eas}/workbench`, OPERATOR, '{"service":'),
    raw('POST', `${eas}/workbench`, OPERATOR, JSON.stringify({ service: EAS_SERVICE })),
    raw('POST', `${eas}/workbench`, OPERATOR, JSON.stringify({ service: 'other', instance: 'x' })),
    raw(
      'POST',
      `${eas}/workbench`,
      OPERATOR,
      JSON.stringify({ service: EAS_SERVICE, instance: 'none' }),
    ),
    raw('POST', `${eas}/workbench`, OPERATOR, 'x'.repeat(5000)),
    raw('GET', `${eas}/workbench`),
    raw(
      'POST',
      `${eas}/services/${EAS_SERVICE}/v1/chat/completions`,
      JSON_TYPE,
      JSON.stringify(chat),
    ),
    raw(
      'POST',
      `${eas}/services/${EAS_SERVICE}/v1/chat/completions`,
      JSON_TYPE,
      JSON.stringify({ ...chat, stream: true }),
    ),
    raw('GET', `${eas}/services/${EAS_SERVICE}/v1/models`),
    raw('GET', `${eas}/services/${EAS_SERVICE}/nothing-here`),
    raw('GET', `${eas}/services/other/v1/models`),
    raw('GET', `${eas}/services/`),
  ];
}

/** Faults on the token endpoint, several of them echoing the permanent key back. */
const MINT_FAULTS: EmulatorFault[] = [
  { type: 'throttle', retryAfterSeconds: 2 },
  { type: 'throttle' },
  { type: 'system-error' },
  { type: 'html-502' },
  { type: 'malformed-json' },
  { type: 'reset' },
  { type: 'hang' },
  { type: 'invalid-api-key' },
  {
    type: 'status',
    status: 401,
    body: { code: 'InvalidApiKey', message: `Invalid API-key provided: ${KEY}`, request_id: KEY },
  },
  { type: 'status', status: 400, body: { code: KEY, message: `bad key ${KEY.slice(3)}` } },
  { type: 'status', status: 403, body: { code: 'AccessDenied', message: `${KEY.slice(5)}` } },
  {
    type: 'status',
    status: 500,
    body: `<html>${KEY}</html>`,
    headers: { 'content-type': 'text/html', 'x-request-id': KEY },
  },
  {
    type: 'status',
    status: 503,
    body: { code: 'ServiceUnavailable', message: `busy, key ${KEY}`, request_id: KEY.slice(3) },
    headers: { 'retry-after': '1' },
  },
  { type: 'status', status: 200, body: { token: '', message: KEY, request_id: KEY } },
  { type: 'status', status: 200, body: `{"token":"${KEY}` },
  { type: 'status', status: 200, body: { token: KEY, expires_at: 4_000_000_000 } },
  { type: 'status', status: 200, body: { token: `st-${KEY.slice(3)}`, expires_at: 4_000_000_000 } },
  { type: 'status', status: 200, body: KEY.repeat(3000) },
];

/** Faults on inference routes: the proxy's own error paths and upstream answers passed through. */
const INFERENCE_FAULTS: EmulatorFault[] = [
  { type: 'throttle', retryAfterSeconds: 1 },
  { type: 'system-error' },
  { type: 'html-502' },
  { type: 'malformed-json' },
  { type: 'reset' },
  { type: 'hang' },
  { type: 'invalid-api-key' },
  { type: 'stream-error', afterChunks: 1 },
  { type: 'stream-cut', afterChunks: 1 },
];

type Kind = 'express' | 'node:http' | 'fetch' | 'hono' | Runtime | keyof typeof FASTIFY_APPS;
const KINDS: Kind[] = [
  'express',
  'node:http',
  'fetch',
  'hono',
  ...RUNTIME_APPS,
  ...(Object.keys(FASTIFY_APPS) as Kind[]),
];

async function startAppsFor(kind: Kind): Promise<App> {
  if (kind === 'node:http') return startNodeApp(emulator);
  if (kind === 'express') return startExpressApp(emulator);
  if (kind === 'fetch') return startFetchApp(emulator);
  if (kind === 'hono') return startHonoApp(emulator);
  if (kind === 'bun' || kind === 'deno') return startRuntimeApp(emulator, kind);
  return startFastifyApp(emulator, kind);
}

/** Every message published on a dashscope-token diagnostics channel during the sweep, as JSON. */
const published: string[] = [];
const subscribers = Object.values(CHANNELS).map((name) => {
  const listener = (message: unknown) => published.push(`${name} ${JSON.stringify(message)}`);
  return { name, listener };
});

beforeAll(async () => {
  for (const { name, listener } of subscribers) diagnostics.subscribe(name, listener);
  emulator = await startEmulator({
    apiKeys: [...PERMANENT_KEYS],
    chunkDelayMs: 2,
    paiEas: EMULATOR_PAI_EAS,
  });
  const dead = http.createServer();
  await new Promise<void>((resolve) => dead.listen(0, '127.0.0.1', resolve));
  deadOrigin = `http://127.0.0.1:${(dead.address() as AddressInfo).port}`;
  await new Promise<void>((resolve) => dead.close(() => resolve()));
});

afterAll(async () => {
  for (const { name, listener } of subscribers) diagnostics.unsubscribe(name, listener);
  await emulator.close();
});

describe('key-leak sweep', () => {
  it('drives every route of every mount (Express), of node:http, Fastify 4/5, the fetch handler and Hono', async () => {
    const app = await startExpressApp(emulator, [
      {
        path: '/guarded',
        options: {
          authorize: (req) => {
            const user = req.headers['x-user'];
            if (user === 'throw') throw new Error(`authorize failed for ${KEY}`);
            return user === 'alice' ? true : { status: 401 };
          },
          apiKey: (req) =>
            req.headers['x-tenant'] === 'none'
              ? undefined
              : req.headers['x-tenant'] === 'b'
                ? TENANT_KEY
                : KEY,
        },
      },
      {
        path: '/models',
        options: { proxy: { headersTimeoutMs: 300, allowModels: ['qwen-plus'] } },
      },
      {
        path: '/cors',
        options: { cors: { origins: ['https://app.example'], credentials: true } },
      },
      { path: '/parsed', parseBody: true, options: {} },
      { path: '/small', options: { proxy: { maxBodyBytes: 1000 } } },
      { path: '/dead', options: { baseUrl: deadOrigin } },
    ]);
    const node = await startNodeApp(emulator, {
      cors: { origins: ['https://app.example'] },
      authorize: (req) => req.headers['x-user'] !== 'throw' || Promise.reject(new Error(KEY)),
    });
    for (const prefix of ['', '/guarded', '/models', '/cors', '/parsed', '/small', '/dead']) {
      for (const request of routeRequests(prefix)) await exchange(app, request);
    }
    for (const request of routeRequests('')) await exchange(node, request);
    const fetchApp = await startFetchApp(emulator, {
      cors: { origins: ['https://app.example'] },
      authorize: (req) => req.headers.get('x-user') !== 'throw' || Promise.reject(new Error(KEY)),
    });
    for (const request of routeRequests('')) await exchange(fetchApp, request);
    const hono = await startHonoApp(emulator, {
      cors: { origins: ['https://app.example'] },
      authorize: (c) => c.req.header('x-user') !== 'throw' || Promise.reject(new Error(KEY)),
    });
    for (const request of routeRequests('')) await exchange(hono, request);
    await Promise.all([app.close(), node.close(), fetchApp.close(), hono.close()]);
    for (const name of Object.keys(FASTIFY_APPS) as (keyof typeof FASTIFY_APPS)[]) {
      const fastify = await startFastifyApp(emulator, name);
      for (const request of routeRequests('')) await exchange(fastify, request);
      await fastify.close();
    }
  });

  it('drives every fault of the token endpoint through the token route and the proxy', async () => {
    for (const kind of KINDS) {
      for (const fault of MINT_FAULTS) {
        // A fresh app per fault: nothing cached, so each request mints.
        const app = await startAppsFor(kind);
        emulator.fault('tokens', fault, 3);
        await exchange(app, raw('POST', '/dashscope/token', {}, ''));
        await exchange(
          app,
          raw(
            'POST',
            '/dashscope/compatible-mode/v1/chat/completions',
            JSON_TYPE,
            JSON.stringify(CHAT),
          ),
        );
        await exchange(
          app,
          raw(
            'POST',
            '/dashscope/api/v1/services/aigc/text-generation/generation',
            { ...JSON_TYPE, Accept: 'text/event-stream' },
            JSON.stringify(NATIVE),
          ),
        );
        emulator.clearFaults();
        await app.close();
      }
    }
  });

  it('drives every inference fault through every proxied route', async () => {
    for (const kind of KINDS) {
      const app = await startAppsFor(kind);
      for (const fault of INFERENCE_FAULTS) {
        for (const route of ['chat', 'generation'] as EmulatorRoute[]) {
          for (const stream of [false, true]) {
            emulator.fault(route, fault);
            const request =
              route === 'chat'
                ? raw(
                    'POST',
                    '/dashscope/compatible-mode/v1/chat/completions',
                    JSON_TYPE,
                    JSON.stringify({ ...CHAT, stream }),
                  )
                : raw(
                    'POST',
                    '/dashscope/api/v1/services/aigc/text-generation/generation',
                    stream ? { ...JSON_TYPE, 'X-DashScope-SSE': 'enable' } : JSON_TYPE,
                    JSON.stringify(NATIVE),
                  );
            await exchange(app, request);
            emulator.clearFaults();
          }
        }
      }
      await app.close();
    }
  });

  it('drives every fault of the EAS OpenAPI and the EAS service through the PAI-EAS routes', async () => {
    const echo = EAS_SECRETS.join(' ');
    // Answers of the OpenAPI are the routes' own business (EAS errors are normalised, echoed
    // secrets redacted); answers of the service itself pass through, so its faults do not echo.
    const openApiFaults: EmulatorFault[] = [
      ...INFERENCE_FAULTS,
      {
        type: 'status',
        status: 500,
        body: { Code: 'InternalError', Message: echo, RequestId: echo },
      },
      { type: 'status', status: 403, body: { Code: 'Forbidden.RAM', Message: echo } },
      { type: 'status', status: 200, body: { RequestId: 'r', WorkbenchUrl: 42, AccessToken: 7 } },
      { type: 'status', status: 401, body: `denied ${echo}` },
    ];
    const runs: [EmulatorRoute, EmulatorFault][] = [
      ...openApiFaults.map((f) => ['pai-eas', f] as [EmulatorRoute, EmulatorFault]),
      ...INFERENCE_FAULTS.map((f) => ['pai-eas-service', f] as [EmulatorRoute, EmulatorFault]),
    ];
    for (const kind of KINDS) {
      // A fresh app per fault: nothing cached, so each service call describes the service.
      for (const [route, fault] of runs) {
        const app = await startAppsFor(kind);
        emulator.fault(route, fault, 3);
        await exchange(
          app,
          raw(
            'POST',
            '/dashscope/pai-eas/workbench',
            OPERATOR,
            JSON.stringify({ service: EAS_SERVICE, instance: EAS_INSTANCE }),
          ),
        );
        await exchange(
          app,
          raw(
            'POST',
            `/dashscope/pai-eas/services/${EAS_SERVICE}/v1/chat/completions`,
            JSON_TYPE,
            JSON.stringify({ model: EAS_SERVICE, messages: [], stream: true }),
          ),
        );
        emulator.clearFaults();
        await app.close();
      }
    }
  });

  it('drives the attack corpus, client aborts and a failing background refresh', async () => {
    const corpus = JSON.parse(
      readFileSync(new URL('../attack-corpus.json', import.meta.url), 'utf8'),
    ) as { entries: { raw: string }[] };
    const app = await startExpressApp(emulator, [
      { path: '/short', options: { tokenRoute: { expireInSeconds: 4, minValiditySeconds: 1 } } },
    ]);
    for (const entry of corpus.entries) await exchange(app, entry.raw);

    // Client aborts: mid-stream and while the key is being minted.
    emulator.setChunkDelay(30);
    for (const path of ['/dashscope/compatible-mode/v1/chat/completions']) {
      const req = http.request(`${app.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${CLIENT_BEARER}` },
      });
      req.on('error', () => {});
      req.end(JSON.stringify({ ...CHAT, stream: true }));
      await new Promise<void>((resolve) =>
        req.on('response', (res) => res.once('data', () => resolve())),
      );
      req.destroy();
    }
    emulator.setChunkDelay(2);

    // A background refresh that fails with the key in upstream's message: logged as a warning.
    expect((await exchange(app, raw('POST', '/short/dashscope/token', {}, ''))).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 1600));
    emulator.fault(
      'tokens',
      { type: 'status', status: 500, body: { code: 'SystemError', message: `down ${KEY}` } },
      Number.POSITIVE_INFINITY,
    );
    expect((await exchange(app, raw('POST', '/short/dashscope/token', {}, ''))).status).toBe(200);
    await expect
      .poll(() => captured.logs.filter((l) => l.startsWith('warn ')).length)
      .toBeGreaterThan(0);
    emulator.clearFaults();
    await app.close();
  });

  it('found the permanent key nowhere: 0 matches in every byte sent and every log line', () => {
    const sent = captured.sent.join('\n');
    const logs = captured.logs.join('\n');
    const sentMatches = keyFragments(sent);
    const logMatches = keyFragments(logs);
    console.info(
      `[key-leak] ${exchanges} exchanges, ${statuses.size} distinct answers ${JSON.stringify(
        Object.fromEntries([...statuses].sort()),
      )}; scanned ${sent.length} bytes sent to clients and ${captured.logs.length} log lines: ` +
        `${sentMatches.length + logMatches.length} key matches`,
    );
    // The sweep really went down the error paths.
    for (const status of [
      200, 204, 400, 401, 403, 404, 405, 413, 426, 429, 431, 500, 502, 503, 504,
    ]) {
      expect(statuses.get(status), `no answer with status ${status}`).toBeGreaterThan(0);
    }
    expect(captured.logs.length).toBeGreaterThan(exchanges / 2);
    expect(sentMatches).toEqual([]);
    expect(logMatches).toEqual([]);
  });

  it('found no AccessKey secret, security token, signature, service token or Workbench URL where they must not be', () => {
    const sent = captured.sent.join('\n');
    const logs = captured.logs.join('\n');
    const signatures = new Set<string>();
    for (const r of emulator.requests) {
      const auth = r.headers.authorization;
      const signature = typeof auth === 'string' ? /Signature=([0-9a-f]{64})/.exec(auth) : null;
      if (signature) signatures.add(signature[1]!);
    }
    const urls = new Set<string>();
    for (const m of sent.matchAll(/"workbench_url":"([^"]+)"/g)) urls.add(m[1]!);
    expect(signatures.size).toBeGreaterThan(10);
    expect(urls.size).toBeGreaterThan(3);
    expect(keyFragments(sent, EAS_SECRETS)).toEqual([]);
    expect(keyFragments(logs, EAS_SECRETS)).toEqual([]);
    for (const signature of signatures) {
      expect(sent.includes(signature), 'a signature was sent to a client').toBe(false);
      expect(logs.includes(signature), 'a signature was logged').toBe(false);
    }
    for (const url of urls) {
      expect(logs.includes(url), 'a Workbench URL was logged').toBe(false);
      expect(logs.includes(new URL(url).search), 'a Workbench URL query was logged').toBe(false);
    }
    expect(logs).not.toContain(EAS_CREDENTIALS.accessKeyId);
  });

  it('published no key, st- key, AccessKey, service token or query on any diagnostics channel', () => {
    const events = published.join('\n');
    // (No per-client limit is hit in the sweep, and its background refresh may end with the app.)
    for (const name of [
      CHANNELS.requestStart,
      CHANNELS.requestEnd,
      CHANNELS.mint,
      CHANNELS.usage,
    ]) {
      expect(
        published.some((e) => e.startsWith(`${name} `)),
        `nothing on ${name}`,
      ).toBe(true);
    }
    expect(keyFragments(events)).toEqual([]);
    expect(keyFragments(events, EAS_SECRETS)).toEqual([]);
    expect(events).not.toMatch(/\b(sk|st)-[A-Za-z0-9]{8,}/);
    expect(events).not.toContain(CLIENT_BEARER);
    expect(events).not.toContain('client-cookie');
    expect(events).not.toContain(EAS_CREDENTIALS.accessKeyId);
    expect(events).not.toMatch(/"path":"[^"]*\?/);
  });

  it('logged no Authorization or Cookie value: not the client’s, not an st- key', () => {
    const logs = captured.logs.join('\n');
    const stKeys = new Set<string>();
    for (const r of emulator.requests) {
      const auth = r.headers.authorization;
      if (typeof auth === 'string' && auth.startsWith('Bearer st-')) stKeys.add(auth.slice(7));
    }
    for (const text of captured.sent) {
      for (const m of text.matchAll(/"token":"(st-[^"]+)"/g)) stKeys.add(m[1]!);
    }
    expect(stKeys.size).toBeGreaterThan(5);
    for (const key of stKeys)
      expect(logs.includes(key), `st- key ${key.slice(0, 8)}… logged`).toBe(false);
    expect(logs).not.toContain(CLIENT_BEARER);
    expect(logs).not.toContain('client-cookie');
    expect(logs).not.toMatch(/bearer/i);
    expect(logs).not.toMatch(/\b(sk|st)-[A-Za-z0-9]{8,}/);
  });
});
