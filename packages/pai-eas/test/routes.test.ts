/**
 * The PAI-EAS routes on the node:http handler and the fetch handler, against the emulated EAS
 * OpenAPI (V3 verified strictly) and its OpenAI-compatible model server.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type BudgetsOptions,
  createDashScopeHandler,
  type DashScopeLogger,
} from '@dashscope-token/core';
import { DEFAULT_EMULATOR_STS_CREDENTIALS, type Emulator } from '@dashscope-token/emulator';
import { createFetchHandler } from '@dashscope-token/fetch';
import { afterEach, describe, expect, it } from 'vitest';
import { createPaiEas, type PaiEasOptions } from '../src/index.js';
import { FAST_RETRY, INSTANCE, KEY, on, SERVICE, start } from './fixture.js';

interface Reply {
  status: number;
  headers: Headers;
  text: string;
}
interface CallInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
}
type Caller = (path: string, init?: CallInit) => Promise<Reply>;
type Ctx = { operator: boolean; authorized: boolean };

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((c) => c()));
});

const ctxOf = (headers: { get(name: string): string | null }): Ctx => ({
  operator: headers.get('x-operator') === 'yes',
  authorized: headers.get('x-app-user') !== 'nobody',
});

interface Setup {
  paiEas?: Partial<PaiEasOptions<Ctx>>;
  budgets?: BudgetsOptions<Ctx>;
  logger?: DashScopeLogger;
  noPaiEas?: boolean;
}

function paiEasOf(emulator: Emulator, setup: Setup) {
  if (setup.noPaiEas) return {};
  return {
    paiEas: createPaiEas<Ctx>({
      ...on(emulator),
      services: [SERVICE],
      authorizeWorkbench: (ctx) => ctx.operator,
      ...setup.paiEas,
    }),
  };
}

const common = (emulator: Emulator) => ({
  baseUrl: emulator.url,
  apiKey: 'sk-not-used-by-the-eas-routes',
  authorize: (ctx: Ctx) => ctx.authorized,
});

/** The node:http handler on 127.0.0.1. */
async function nodeDoor(emulator: Emulator, setup: Setup = {}): Promise<Caller> {
  const handler = createDashScopeHandler<Ctx>({
    ...common(emulator),
    ...paiEasOf(emulator, setup),
    ...(setup.logger && { logger: setup.logger }),
    ...(setup.budgets && { budgets: setup.budgets }),
  });
  const server = http.createServer((req, res) => {
    void handler.handle(req, res, {
      context: ctxOf({ get: (n) => (req.headers[n] as string | undefined) ?? null }),
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  closers.push(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await handler.close();
  });
  return async (path, init = {}) => {
    const res = await fetch(base + path, init);
    return { status: res.status, headers: res.headers, text: await res.text() };
  };
}

/** The fetch handler, called with `Request`s. */
async function fetchDoor(emulator: Emulator, setup: Setup = {}): Promise<Caller> {
  const handler = createFetchHandler<Ctx>({
    ...common(emulator),
    ...paiEasOf(emulator, setup),
    ...(setup.logger && { logger: setup.logger }),
    ...(setup.budgets && { budgets: setup.budgets }),
  });
  closers.push(() => handler.close());
  return async (path, init = {}) => {
    const request = new Request(`http://app.test${path}`, init);
    const res = (await handler.handle(request, ctxOf(request.headers)))!;
    return { status: res.status, headers: res.headers, text: await res.text() };
  };
}

const doors = [
  ['node:http handler', nodeDoor],
  ['fetch handler', fetchDoor],
] as const;

const WORKBENCH = '/dashscope/pai-eas/workbench';
const CHAT = `/dashscope/pai-eas/services/${SERVICE}/v1/chat/completions`;
const OPERATOR = { 'content-type': 'application/json', 'x-operator': 'yes' };

function openApi(emulator: Emulator, action?: string) {
  return emulator.requests.filter(
    (r) =>
      r.route === 'pai-eas' &&
      (action === undefined || (r.headers['x-acs-action'] as string) === action),
  );
}

const target = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({ service: SERVICE, instance: INSTANCE, ...extra });

describe.each(doors)('PAI-EAS routes on the %s', (_name, door) => {
  it('hands an operator a one-time Workbench URL, no-store, that logs in once', async () => {
    const emulator = await start();
    const call = await door(emulator);
    const reply = await call(WORKBENCH, {
      method: 'POST',
      headers: OPERATOR,
      body: target({ worker: 'worker0' }),
    });
    expect(reply.status).toBe(200);
    expect(reply.headers.get('cache-control')).toBe('no-store');
    const body = JSON.parse(reply.text) as { workbench_url: string; request_id: string };
    expect(body.request_id).toMatch(/\S/);
    expect(body.workbench_url.startsWith(emulator.url)).toBe(true);
    const first = await fetch(body.workbench_url);
    expect(first.status).toBe(200);
    await first.text();
    const second = await fetch(body.workbench_url);
    expect(second.status).toBe(403);
    await second.text();
  });

  it('refuses Workbench URLs with 403 when no authorizer is configured, signing nothing', async () => {
    const emulator = await start();
    const call = await door(emulator, { paiEas: { authorizeWorkbench: undefined } });
    const reply = await call(WORKBENCH, { method: 'POST', headers: OPERATOR, body: target() });
    expect(reply.status).toBe(403);
    expect(JSON.parse(reply.text).code).toBe('AccessDenied');
    expect(openApi(emulator)).toHaveLength(0);
  });

  it('refuses a non-operator with 403 and answers 401 when the authorizer asks for it', async () => {
    const emulator = await start();
    const call = await door(emulator);
    const denied = await call(WORKBENCH, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: target(),
    });
    expect(denied.status).toBe(403);
    const call401 = await door(emulator, {
      paiEas: { authorizeWorkbench: () => ({ status: 401 }) },
    });
    const unauthenticated = await call401(WORKBENCH, {
      method: 'POST',
      headers: OPERATOR,
      body: target(),
    });
    expect(unauthenticated.status).toBe(401);
    expect(openApi(emulator)).toHaveLength(0);
  });

  it("runs the app's authorize hook before authorizeWorkbench", async () => {
    const emulator = await start();
    const call = await door(emulator);
    const reply = await call(WORKBENCH, {
      method: 'POST',
      headers: { ...OPERATOR, 'x-app-user': 'nobody' },
      body: target(),
    });
    expect(reply.status).toBe(403);
    expect(openApi(emulator)).toHaveLength(0);
  });

  it('refuses services outside the allow-list with 403 before anything is signed', async () => {
    const emulator = await start({ paiEas: { services: [{ name: SERVICE }, { name: 'other' }] } });
    const call = await door(emulator);
    const reply = await call(WORKBENCH, {
      method: 'POST',
      headers: OPERATOR,
      body: JSON.stringify({ service: 'other', instance: 'other-7b56869574-44nq9' }),
    });
    expect(reply.status).toBe(403);
    const proxied = await call('/dashscope/pai-eas/services/other/v1/models');
    expect(proxied.status).toBe(403);
    expect(openApi(emulator)).toHaveLength(0);
  });

  it.each([
    ['bad JSON', '{"service":'],
    ['a missing instance', JSON.stringify({ service: SERVICE })],
    ['an instance EAS does not allow', JSON.stringify({ service: SERVICE, instance: '../etc' })],
    ['a worker EAS does not allow', target({ worker: 'Worker 0' })],
    ['an unknown field', target({ cluster: 'cn-hangzhou' })],
    ['a JSON array', '[]'],
  ])('answers 400 for %s before anything is signed', async (_what, body) => {
    const emulator = await start();
    const call = await door(emulator);
    const reply = await call(WORKBENCH, { method: 'POST', headers: OPERATOR, body });
    expect(reply.status).toBe(400);
    expect(JSON.parse(reply.text).code).toBe('InvalidParameter');
    expect(openApi(emulator)).toHaveLength(0);
  });

  it('answers 413 for a Workbench body over the limit and 405 for GET', async () => {
    const emulator = await start();
    const call = await door(emulator);
    const big = await call(WORKBENCH, {
      method: 'POST',
      headers: OPERATOR,
      body: target({ pad: 'x'.repeat(5000) }),
    });
    expect(big.status).toBe(413);
    const get = await call(WORKBENCH);
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST, OPTIONS');
  });

  it('never logs the Workbench URL', async () => {
    const emulator = await start();
    const lines: string[] = [];
    const record = (...args: unknown[]) => lines.push(JSON.stringify(args));
    const logger = { info: record, warn: record, error: record } as DashScopeLogger;
    const call = await door(emulator, { logger });
    const reply = await call(WORKBENCH, { method: 'POST', headers: OPERATOR, body: target() });
    const url = JSON.parse(reply.text).workbench_url as string;
    expect(lines.length).toBeGreaterThan(0);
    const logged = lines.join('\n');
    expect(logged).not.toContain(url);
    expect(logged).not.toContain(new URL(url).search.slice(1));
  });

  it('keeps EAS error codes and request ids without leaking the AccessKey secret', async () => {
    const emulator = await start();
    const secret = 'a-wrong-secret-that-must-not-leak';
    const call = await door(emulator, {
      paiEas: { credentials: { accessKeyId: KEY.accessKeyId, accessKeySecret: secret } },
    });
    const reply = await call(WORKBENCH, { method: 'POST', headers: OPERATOR, body: target() });
    expect(reply.status).toBe(502);
    const body = JSON.parse(reply.text) as { code: string; request_id: string };
    expect(body.code).toBe('SignatureDoesNotMatch');
    expect(body.request_id.toUpperCase()).toBe(openApi(emulator)[0]!.id.toUpperCase());
    expect(reply.text).not.toContain(secret);
    expect(reply.text).not.toContain(KEY.accessKeySecret);
  });

  it('answers 404 for an unknown instance with EAS code', async () => {
    const emulator = await start();
    const call = await door(emulator);
    const reply = await call(WORKBENCH, {
      method: 'POST',
      headers: OPERATOR,
      body: JSON.stringify({ service: SERVICE, instance: 'no-such-pod' }),
    });
    expect(reply.status).toBe(404);
  });

  it("proxies a chat completion with the service token, never the client's credentials", async () => {
    const emulator = await start();
    const call = await door(emulator, {
      paiEas: { credentials: DEFAULT_EMULATOR_STS_CREDENTIALS },
    });
    const reply = await call(CHAT, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: 'Bearer client-credential',
        cookie: 'session=client-cookie',
      },
      body: JSON.stringify({ model: SERVICE, messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(reply.status).toBe(200);
    expect(JSON.parse(reply.text).choices[0].message.content).toMatch(/\S/);
    const served = emulator.requests.filter((r) => r.route === 'pai-eas-service');
    expect(served).toHaveLength(1);
    expect(served[0]!.path).toBe(`/api/predict/${SERVICE}/v1/chat/completions`);
    expect(served[0]!.headers.authorization).not.toContain('client-credential');
    expect(served[0]!.headers.cookie).toBeUndefined();
    expect(reply.text).not.toContain(String(served[0]!.headers.authorization));
    expect(openApi(emulator, 'DescribeService')).toHaveLength(1);
  });

  it('streams server-sent events from the service', async () => {
    const emulator = await start();
    const call = await door(emulator);
    const reply = await call(CHAT, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: SERVICE,
        stream: true,
        messages: [{ role: 'user', content: 'hi' }],
      }),
    });
    expect(reply.status).toBe(200);
    expect(reply.headers.get('content-type')).toContain('text/event-stream');
    expect(reply.text.match(/^data: /gm)!.length).toBeGreaterThan(2);
    expect(reply.text).toContain('data: [DONE]');
  });

  it('fetches the service token again once after the service answers 401', async () => {
    const emulator = await start();
    let first = true;
    const staleFirst: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      if (!first || !String(input).includes(`/services/`) || String(input).includes('/token')) {
        return res;
      }
      first = false;
      const json = (await res.json()) as Record<string, unknown>;
      json.AccessToken = 'a-stale-service-token';
      return new Response(JSON.stringify(json), {
        status: res.status,
        headers: { 'content-type': 'application/json' },
      });
    };
    const call = await door(emulator, { paiEas: { fetch: staleFirst } });
    const reply = await call(CHAT, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: SERVICE, messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(reply.status).toBe(200);
    expect(openApi(emulator, 'DescribeService')).toHaveLength(2);
    const served = emulator.requests.filter((r) => r.route === 'pai-eas-service');
    expect(served.map((r) => r.status)).toEqual([401, 200]);
  });

  it('refuses a service call past the requests budget with 429 BudgetExceeded, reaching no service', async () => {
    const emulator = await start();
    const call = await door(emulator, { budgets: { requests: 1, periodSeconds: 3600 } });
    const chat = () =>
      call(CHAT, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: SERVICE, messages: [{ role: 'user', content: 'hi' }] }),
      });
    expect((await chat()).status).toBe(200);
    const refused = await chat();
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(refused.text)).toMatchObject({ code: 'BudgetExceeded' });
    expect(emulator.requests.filter((r) => r.route === 'pai-eas-service')).toHaveLength(1);
  });

  it("refuses service calls the app's authorize hook refuses, reaching nobody", async () => {
    const emulator = await start();
    const call = await door(emulator);
    const reply = await call(`/dashscope/pai-eas/services/${SERVICE}/v1/models`, {
      headers: { 'x-app-user': 'nobody' },
    });
    expect(reply.status).toBe(403);
    expect(emulator.requests.filter((r) => r.route.startsWith('pai-eas'))).toHaveLength(0);
  });

  it('answers 404 for the PAI-EAS routes when paiEas is not configured', async () => {
    const emulator = await start();
    const call = await door(emulator, { noPaiEas: true });
    expect((await call(WORKBENCH, { method: 'POST', body: target() })).status).toBe(404);
    expect((await call(`/dashscope/pai-eas/services/${SERVICE}/v1/models`)).status).toBe(404);
  });

  it('uses an explicit endpoint and token without DescribeService', async () => {
    const emulator = await start({ paiEas: { services: [{ name: SERVICE, token: 'tok-1' }] } });
    const call = await door(emulator, {
      paiEas: {
        credentials: { accessKeyId: 'unused', accessKeySecret: 'unused' },
        retry: FAST_RETRY,
        explicit: {
          [SERVICE]: { endpoint: `${emulator.url}/api/predict/${SERVICE}`, token: 'tok-1' },
        },
      },
    });
    const reply = await call(`/dashscope/pai-eas/services/${SERVICE}/v1/models`);
    expect(reply.status).toBe(200);
    expect(JSON.parse(reply.text).data[0].id).toBe(SERVICE);
    expect(openApi(emulator)).toHaveLength(0);
  });
});

describe.each(doors)('PAI-EAS routes on the %s, failures', (name, door) => {
  it('answers 502 NetworkError naming the PAI-EAS service when it cannot be reached', async () => {
    const emulator = await start();
    const dead = http.createServer();
    await new Promise<void>((resolve) => dead.listen(0, '127.0.0.1', resolve));
    const deadUrl = `http://127.0.0.1:${(dead.address() as AddressInfo).port}`;
    await new Promise((resolve) => dead.close(resolve));
    const call = await door(emulator, {
      paiEas: {
        explicit: { [SERVICE]: { endpoint: `${deadUrl}/api/predict/${SERVICE}`, token: 't' } },
      },
    });
    const reply = await call(`/dashscope/pai-eas/services/${SERVICE}/v1/models`);
    expect(reply.status).toBe(502);
    expect(JSON.parse(reply.text)).toMatchObject({
      code: 'NetworkError',
      message: 'The PAI-EAS service could not be reached.',
    });
  });

  it('answers 408 when the Workbench body does not arrive in time, signing nothing', async () => {
    const emulator = await start();
    const handlerOptions = { paiEas: { workbenchBodyTimeoutMs: 50 } };
    let status: number;
    if (name === 'fetch handler') {
      const handler = createFetchHandler<Ctx>({
        ...common(emulator),
        ...paiEasOf(emulator, handlerOptions),
      });
      closers.push(() => handler.close());
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new TextEncoder().encode('{"service":'));
        },
      });
      const request = new Request(`http://app.test${WORKBENCH}`, {
        method: 'POST',
        headers: OPERATOR,
        body,
        duplex: 'half',
      } as RequestInit);
      status = (await handler.handle(request, ctxOf(request.headers)))!.status;
    } else {
      const handler = createDashScopeHandler<Ctx>({
        ...common(emulator),
        ...paiEasOf(emulator, handlerOptions),
      });
      const server = http.createServer((req, res) => {
        void handler.handle(req, res, { context: { operator: true, authorized: true } });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      closers.push(async () => {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
        await handler.close();
      });
      status = await new Promise<number>((resolve, reject) => {
        const req = http.request(
          {
            host: '127.0.0.1',
            port: (server.address() as AddressInfo).port,
            path: WORKBENCH,
            method: 'POST',
            headers: { ...OPERATOR, 'content-length': '100' },
          },
          (res) => {
            res.resume();
            resolve(res.statusCode!);
          },
        );
        req.on('error', reject);
        req.write('{"service":');
      });
    }
    expect(status).toBe(408);
    expect(openApi(emulator)).toHaveLength(0);
  });
});

describe('createPaiEas', () => {
  it('refuses a missing allow-list and a service name EAS does not allow', () => {
    expect(() => createPaiEas({ region: 'cn-shanghai', services: [] })).toThrow(/services/);
    expect(() => createPaiEas({ region: 'cn-shanghai', services: ['Bad-Name'] })).toThrow();
  });

  it('is required by the front doors: a plain options object is refused at creation', () => {
    expect(() =>
      createDashScopeHandler({
        apiKey: 'sk-x',
        paiEas: { region: 'cn-shanghai', services: [SERVICE] } as never,
      }),
    ).toThrow(/createPaiEas/);
  });
});
