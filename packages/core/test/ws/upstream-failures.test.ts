import net from 'node:net';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { useEmulator } from '../emulator-fixture.js';
import {
  INFERENCE,
  leaks,
  open,
  PERMANENT_KEY,
  REALTIME,
  type RunningProxy,
  refusal,
  startProxy,
} from './harness.js';

const emulator = useEmulator({ apiKeys: [PERMANENT_KEY] });
let proxy: RunningProxy | undefined;

async function start(options: Parameters<typeof startProxy>[0] = {}): Promise<RunningProxy> {
  proxy = await startProxy({ baseUrl: emulator().url, ...options });
  return proxy;
}

afterEach(async () => {
  if (proxy) expect(proxy.handler.websocketStats().connecting).toBe(0);
  await proxy?.close();
  proxy = undefined;
});

afterAll(() => {
  expect(leaks()).toEqual([]);
});

function handshakes(route: 'ws-inference' | 'ws-realtime' = 'ws-realtime'): number {
  return emulator().requests.filter((r) => r.route === route).length;
}

describe('WebSocket proxy: upstream handshake failures', () => {
  it('replays once with a fresh key when Model Studio refuses the injected one', async () => {
    const { wsBase } = await start();
    emulator().fault('ws-realtime', { type: 'invalid-api-key' });
    const conn = await open(`${wsBase}${REALTIME}`);
    expect(((await conn.next()).json as { type: string }).type).toBe('session.created');
    conn.ws.close();
    await conn.closed;
    const [first, second] = emulator().requests.filter((r) => r.route === 'ws-realtime');
    expect(first?.status).toBe(401);
    expect(second?.status).toBe(101);
    expect(second?.headers.authorization).not.toBe(first?.headers.authorization);
  });

  it('answers 502 InvalidApiKey when the replay is refused too', async () => {
    const { wsBase } = await start();
    emulator().fault('ws-realtime', { type: 'invalid-api-key' }, 2);
    const answer = await refusal(`${wsBase}${REALTIME}`);
    expect(answer.status).toBe(502);
    expect(answer.json).toEqual({
      code: 'InvalidApiKey',
      message: expect.stringContaining('not the problem'),
      request_id: answer.headers['x-request-id'],
    });
    expect(handshakes()).toBe(2);
  });

  it('passes throttling on as 429 with Retry-After', async () => {
    const { wsBase } = await start();
    emulator().fault('ws-realtime', { type: 'throttle', retryAfterSeconds: 7 });
    const answer = await refusal(`${wsBase}${REALTIME}`);
    expect(answer.status).toBe(429);
    expect(answer.headers['retry-after']).toBe('7');
    expect(answer.json.code).toBe('Throttling.RateQuota');
    // The upstream request id is kept, for support tickets.
    const record = emulator().requests.find((r) => r.route === 'ws-realtime');
    expect(answer.json.request_id).toBe(record?.id);
    expect(answer.headers['x-request-id']).toBe(record?.id);
  });

  it('maps upstream error statuses', async () => {
    const { wsBase } = await start();
    const cases: [Parameters<ReturnType<typeof emulator>['fault']>[1], number, string][] = [
      [{ type: 'system-error' }, 502, 'SystemError'],
      [{ type: 'html-502' }, 502, 'BadGateway'],
      [
        { type: 'status', status: 503, body: { code: 'ServiceUnavailable' } },
        503,
        'ServiceUnavailable',
      ],
      [
        { type: 'status', status: 400, body: { code: 'InvalidParameter', message: 'No model.' } },
        400,
        'InvalidParameter',
      ],
      [
        { type: 'status', status: 403, body: { code: 'AccessDenied.Unpurchased' } },
        403,
        'AccessDenied.Unpurchased',
      ],
      [{ type: 'malformed-json' }, 502, 'BadGateway'],
    ];
    for (const [fault, status, code] of cases) {
      emulator().fault('ws-realtime', fault);
      const answer = await refusal(`${wsBase}${REALTIME}`);
      expect([answer.status, answer.json.code]).toEqual([status, code]);
      expect(answer.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(Object.keys(answer.json).sort()).toEqual(['code', 'message', 'request_id']);
    }
  });

  it('answers 502 NetworkError when the connection is reset', async () => {
    const { wsBase } = await start();
    emulator().fault('ws-inference', { type: 'reset' });
    const answer = await refusal(`${wsBase}${INFERENCE}`);
    expect([answer.status, answer.json.code]).toEqual([502, 'NetworkError']);
  });

  it('answers 504 Timeout when Model Studio does not answer the handshake', async () => {
    const { wsBase } = await start({ websocket: { handshakeTimeoutMs: 300 } });
    emulator().fault('ws-inference', { type: 'hang' });
    const answer = await refusal(`${wsBase}${INFERENCE}`);
    expect([answer.status, answer.json.code]).toEqual([504, 'Timeout']);
  });

  it('answers 502 NetworkError when Model Studio is unreachable', async () => {
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const { wsBase } = await start({ websocket: { baseUrl: `http://127.0.0.1:${port}` } });
    const answer = await refusal(`${wsBase}${INFERENCE}`);
    expect([answer.status, answer.json.code]).toEqual([502, 'NetworkError']);
  });

  it('answers mint failures like the token route does', async () => {
    const { wsBase } = await start({ retry: false });
    emulator().fault('tokens', { type: 'throttle', retryAfterSeconds: 3 });
    const throttled = await refusal(`${wsBase}${INFERENCE}`);
    expect([throttled.status, throttled.json.code]).toEqual([429, 'Throttling.RateQuota']);
    expect(throttled.headers['retry-after']).toBe('3');
    expect(handshakes('ws-inference')).toBe(0);
  });

  it('answers 502 when the server key is refused by the mint', async () => {
    const { wsBase } = await start({ apiKey: 'sk-ws-test-unknown-key-00000002' });
    const answer = await refusal(`${wsBase}${INFERENCE}`);
    expect([answer.status, answer.json.code]).toEqual([502, 'InvalidApiKey']);
    expect(answer.body).not.toContain('unknown00key');
    expect(handshakes('ws-inference')).toBe(0);
  });

  it('drops the upstream handshake when the client goes away first', async () => {
    const { wsBase, handler } = await start({ websocket: { handshakeTimeoutMs: 10_000 } });
    emulator().fault('ws-inference', { type: 'hang' });
    const { default: WebSocket } = await import('ws');
    const ws = new WebSocket(`${wsBase}${INFERENCE}`);
    ws.on('error', () => {});
    await emulator().waitForRequest((r) => r.route === 'ws-inference');
    expect(handler.websocketStats().connecting).toBe(1);
    ws.terminate();
    const deadline = Date.now() + 5000;
    while (handler.websocketStats().connecting > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(handler.websocketStats()).toMatchObject({ connecting: 0, open: 0 });
  });

  it('answers 503 to handshakes in progress when the handler closes', async () => {
    const running = await start();
    emulator().fault('ws-inference', { type: 'hang' });
    const pending = refusal(`${running.wsBase}${INFERENCE}`);
    await emulator().waitForRequest((r) => r.route === 'ws-inference');
    await running.handler.close();
    const answer = await pending;
    expect([answer.status, answer.json.code]).toEqual([503, 'ServerClosing']);
    const after = await refusal(`${running.wsBase}${INFERENCE}`);
    expect(after.status).toBe(503);
  });
});
