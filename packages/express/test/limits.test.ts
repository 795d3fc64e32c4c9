import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DEFAULT_EMULATOR_API_KEY, type Emulator, startEmulator } from '@dashscope-token/emulator';
import express5, { type Express } from 'express';
import express4 from 'express4';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type DashScopeMiddleware, dashscopeToken } from '../src/index.js';

let emulator: Emulator;
beforeAll(async () => {
  emulator = await startEmulator({ chunkDelayMs: 1 });
});
afterAll(async () => {
  await emulator?.close();
});

describe.each([
  ['express 4', express4],
  ['express 5', express5],
])('%s: per-client limits', (_name, express) => {
  let server: Server | undefined;
  let mw: DashScopeMiddleware | undefined;

  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
    await mw?.close();
    server = undefined;
    mw = undefined;
  });

  async function serve(trustProxy: boolean): Promise<string> {
    const app: Express = express();
    if (trustProxy) app.set('trust proxy', 'loopback');
    mw = dashscopeToken({
      baseUrl: emulator.url,
      apiKey: DEFAULT_EMULATOR_API_KEY,
      limits: { tokenRoute: { points: 1, durationSeconds: 60 } },
    });
    app.use(mw);
    server = createServer(app);
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  const from = (base: string, ip: string) =>
    fetch(`${base}/dashscope/token`, { method: 'POST', headers: { 'x-forwarded-for': ip } });

  it("counts each client by req.ip under the app's trust proxy", async () => {
    const base = await serve(true);
    expect((await from(base, '203.0.113.1')).status).toBe(200);
    expect((await from(base, '203.0.113.2')).status).toBe(200);
    const refused = await from(base, '203.0.113.1');
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await refused.json()).toMatchObject({ code: 'Throttling.ClientLimit' });
    expect(mw!.handler.stats().limits?.limited.tokenRoute).toBe(1);
  });

  it('ignores X-Forwarded-For without trust proxy: one socket address, one budget', async () => {
    const base = await serve(false);
    expect((await from(base, '203.0.113.1')).status).toBe(200);
    expect((await from(base, '203.0.113.2')).status).toBe(429);
  });
});
