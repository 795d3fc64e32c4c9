import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { WS_CLOSE_SESSION_LIMIT, WS_CLOSE_UPSTREAM_LOST } from '../../src/index.js';
import { useEmulator } from '../emulator-fixture.js';
import {
  INFERENCE,
  leaks,
  open,
  PERMANENT_KEY,
  REALTIME,
  type RunningProxy,
  runTask,
  startProxy,
  taskAction,
  until,
} from './harness.js';

const emulator = useEmulator({ apiKeys: [PERMANENT_KEY] });
let proxy: RunningProxy | undefined;

async function start(options: Parameters<typeof startProxy>[0] = {}): Promise<RunningProxy> {
  proxy = await startProxy({ baseUrl: emulator().url, ...options });
  return proxy;
}

afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
});

afterAll(() => {
  expect(leaks()).toEqual([]);
});

type Event = {
  header: { event: string; task_id: string };
  payload: { output?: { frames_received?: number; bytes_received?: number } };
};

describe('WebSocket proxy: the upstream handshake', () => {
  it('injects a live temporary key and none of the client credentials', async () => {
    const { wsBase, port } = await start();
    const conn = await open(`${wsBase}${REALTIME}&api_key=sk-client-supplied-key-123&x=1`, {
      headers: {
        Authorization: 'Bearer sk-client-supplied-key-123',
        Cookie: 'session=abc123',
        Origin: `http://127.0.0.1:${port}`,
        'X-DashScope-DataInspection': 'enable',
        'User-Agent': 'ws-test',
      },
    });
    const created = (await conn.next()).json as { type: string; session: { model: string } };
    expect(created.type).toBe('session.created');
    expect(created.session.model).toBe('qwen-omni-turbo-realtime');

    const [record] = emulator().requests.filter((r) => r.route === 'ws-realtime');
    expect(record?.status).toBe(101);
    expect(record?.path).toBe('/api-ws/v1/realtime?model=qwen-omni-turbo-realtime&x=1');
    const auth = String(record?.headers.authorization);
    expect(auth).toMatch(/^Bearer st-[0-9a-f]+$/);
    expect(record?.headers.cookie).toBeUndefined();
    expect(record?.headers.origin).toBeUndefined();
    expect(record?.headers['x-dashscope-datainspection']).toBe('enable');
    expect(record?.headers['user-agent']).toBe('ws-test');
    expect(JSON.stringify(record)).not.toContain('sk-client-supplied-key-123');
    // The key is one the emulator minted with the server's permanent key, and still valid.
    expect(emulator().stats().tokensIssued).toBe(1);
    const check = await fetch(`${emulator().url}/compatible-mode/v1/models`, {
      headers: { authorization: auth },
    });
    expect(check.status).toBe(200);
    conn.ws.close();
    await conn.closed;
  });

  it('keeps the trailing slash the SDKs use and the query string', async () => {
    const { wsBase } = await start();
    const conn = await open(`${wsBase}${INFERENCE}/?debug=1`);
    conn.ws.close();
    await conn.closed;
    expect(emulator().requests.find((r) => r.route === 'ws-inference')?.path).toBe(
      '/api-ws/v1/inference/?debug=1',
    );
  });

  it('negotiates the subprotocol end to end', async () => {
    const { wsBase } = await start();
    const conn = await open(`${wsBase}${REALTIME}`, { protocols: ['x-first', 'x-second'] });
    expect(conn.ws.protocol).toBe('x-first');
    const plain = await open(`${wsBase}${REALTIME}`);
    expect(plain.ws.protocol).toBe('');
    conn.ws.close();
    plain.ws.close();
    await Promise.all([conn.closed, plain.closed]);
    const records = emulator().requests.filter((r) => r.route === 'ws-realtime');
    expect(records[0]?.headers['sec-websocket-protocol']).toBe('x-first,x-second');
    expect(records[0]?.protocol).toBe('x-first');
    expect(records[1]?.protocol).toBeUndefined();
  });
});

describe('WebSocket proxy: relaying', () => {
  it('relays 1,000 text and binary messages both ways, in order', async () => {
    const { wsBase } = await start();
    const conn = await open(`${wsBase}${REALTIME}`);
    await conn.next(); // session.created
    for (let i = 0; i < 1000; i++) {
      if (i % 2 === 0) conn.ws.send(JSON.stringify({ type: 'input_text', i }));
      else conn.ws.send(Buffer.from([i & 0xff, (i >> 8) & 0xff, 0, 0xff]));
    }
    const echoes = await conn.take(1000);
    echoes.forEach((r, i) => {
      expect(r.binary).toBe(i % 2 === 1);
      if (i % 2 === 0) expect(r.json).toEqual({ type: 'input_text', i });
      else expect([...r.data]).toEqual([i & 0xff, (i >> 8) & 0xff, 0, 0xff]);
    });
    conn.ws.close();
    await conn.closed;
    expect(emulator().requests.find((r) => r.route === 'ws-realtime')?.messagesReceived).toBe(1000);
  });

  it('speaks the speech protocol: 1,000 audio frames up, one result each down', async () => {
    const { wsBase } = await start();
    const conn = await open(`${wsBase}${INFERENCE}`);
    conn.ws.send(runTask('task-1', 'asr'));
    expect(((await conn.next()).json as Event).header.event).toBe('task-started');
    for (let i = 0; i < 1000; i++) conn.ws.send(Buffer.alloc(640, i & 0xff));
    const results = await conn.take(1000);
    results.forEach((r, i) => {
      const e = r.json as Event;
      expect(e.header.event).toBe('result-generated');
      expect(e.payload.output?.frames_received).toBe(i + 1);
    });
    conn.ws.send(taskAction('finish-task', 'task-1'));
    const [last, finished] = (await conn.take(2)).map((r) => r.json as Event);
    expect(last?.payload.output?.bytes_received).toBe(640_000);
    expect(finished?.header.event).toBe('task-finished');

    // Synthesis: text up, text + binary audio down.
    conn.ws.send(runTask('task-2', 'tts'));
    await conn.next();
    conn.ws.send(taskAction('continue-task', 'task-2', { text: 'Hello' }));
    // sentence-begin, sentence-synthesis, the audio frame, sentence-end.
    const [result, , audio] = await conn.take(4);
    expect((result?.json as Event | undefined)?.header.event).toBe('result-generated');
    expect(audio?.binary).toBe(true);
    expect(audio?.data.toString()).toBe('emulated-audio:Hello');
    conn.ws.close();
    await conn.closed;
  });
});

describe('WebSocket proxy: closing', () => {
  it('passes close codes and reasons from the client to Model Studio', async () => {
    const { wsBase, handler } = await start();
    const conn = await open(`${wsBase}${REALTIME}`);
    await conn.next();
    conn.ws.close(4001, 'client is done');
    expect(await conn.closed).toMatchObject({ code: 4001, reason: 'client is done' });
    const record = await emulator().waitForRequest((r) => r.closeCode !== undefined);
    expect(record).toMatchObject({ closeCode: 4001, closeReason: 'client is done' });

    const silent = await open(`${wsBase}${REALTIME}`);
    silent.ws.close();
    await silent.closed;
    const second = await emulator().waitForRequest(
      (r) => r.closeCode !== undefined && r.id !== record.id,
    );
    expect(second.closeCode).toBe(1005);
    await until(() => handler.websocketStats().open === 0);
  });

  it('passes close codes and reasons from Model Studio to the client', async () => {
    const { wsBase } = await start();
    const conn = await open(`${wsBase}${INFERENCE}`);
    await until(() => emulator().stats().openWebSockets === 1);
    emulator().closeWebSockets(4002, 'upstream says bye');
    expect(await conn.closed).toMatchObject({ code: 4002, reason: 'upstream says bye' });
  });

  it('closes Model Studio promptly when the client vanishes', async () => {
    const { wsBase, handler } = await start();
    const conn = await open(`${wsBase}${REALTIME}`);
    await conn.next();
    const cut = Date.now();
    conn.ws.terminate();
    const record = await emulator().waitForRequest((r) => r.closeCode !== undefined);
    expect(record.closeCode).toBe(1001);
    expect(record.closedAt! - cut).toBeLessThan(2000);
    await until(() => handler.websocketStats().open === 0);
  });

  it('closes the client promptly when Model Studio vanishes', async () => {
    const { wsBase, handler } = await start();
    emulator().fault('ws-realtime', { type: 'stream-cut', afterChunks: 1 });
    const conn = await open(`${wsBase}${REALTIME}`);
    await conn.next();
    const cut = Date.now();
    conn.ws.send('trigger the cut');
    const closed = await conn.closed;
    expect(closed.code).toBe(WS_CLOSE_UPSTREAM_LOST);
    expect(closed.at - cut).toBeLessThan(2000);
    await until(() => handler.websocketStats().open === 0);
  });

  it(`ends sessions after maxSessionSeconds with ${WS_CLOSE_SESSION_LIMIT}`, async () => {
    const { wsBase } = await start({ websocket: { maxSessionSeconds: 1 } });
    const conn = await open(`${wsBase}${REALTIME}`);
    expect(await conn.closed).toMatchObject({
      code: WS_CLOSE_SESSION_LIMIT,
      reason: 'Session time limit reached',
    });
    const record = await emulator().waitForRequest((r) => r.closeCode !== undefined);
    expect(record).toMatchObject({ closeCode: 1000, closeReason: 'Session time limit reached' });
  });

  it('closes with 1009 when the client sends a message over maxMessageBytes', async () => {
    const { wsBase } = await start({ websocket: { maxMessageBytes: 1024 } });
    const conn = await open(`${wsBase}${REALTIME}`);
    await conn.next();
    conn.ws.send(Buffer.alloc(1024, 1)); // at the limit: fine
    expect((await conn.next()).data.length).toBe(1024);
    conn.ws.send(Buffer.alloc(1025, 1));
    expect((await conn.closed).code).toBe(1009);
    const record = await emulator().waitForRequest((r) => r.closeCode !== undefined);
    expect(record.closeCode).toBe(1009);
    expect(record.messagesReceived).toBe(1);
  });

  it('closes with 1009 when Model Studio sends a message over maxMessageBytes', async () => {
    const text = 'x'.repeat(900);
    const request = taskAction('continue-task', 't', { text });
    const { wsBase } = await start({ websocket: { maxMessageBytes: request.length + 10 } });
    const conn = await open(`${wsBase}${INFERENCE}`);
    conn.ws.send(runTask('t', 'tts'));
    await conn.next();
    conn.ws.send(request); // fits; the result-generated event it causes does not
    expect((await conn.closed).code).toBe(1009);
  });

  it('pings both sides and cuts a client that stops answering', async () => {
    const { wsBase, handler } = await start({ websocket: { pingIntervalMs: 50 } });
    const live = await open(`${wsBase}${REALTIME}`);
    await live.next();
    let pings = 0;
    live.ws.on('ping', () => {
      pings += 1;
    });
    const dead = await open(`${wsBase}${REALTIME}`, { autoPong: false });
    await dead.next();
    const closed = await dead.closed;
    expect(closed.code).toBe(1006);
    const records = emulator().requests.filter((r) => r.route === 'ws-realtime');
    await until(() => emulator().requests.some((r) => r.closeCode === 1001));
    // The session that answers pings stays open through many intervals.
    await until(() => pings >= 5);
    live.ws.send('still here');
    expect((await live.next()).data.toString()).toBe('still here');
    expect(handler.websocketStats().open).toBe(1);
    expect(records).toHaveLength(2);
    live.ws.close();
    await live.closed;
  });

  it('close() ends open sessions with 1001 on both sides', async () => {
    const running = await start();
    const conn = await open(`${running.wsBase}${REALTIME}`);
    await conn.next();
    await running.handler.close();
    expect((await conn.closed).code).toBe(1001);
    const record = await emulator().waitForRequest((r) => r.closeCode !== undefined);
    expect(record.closeCode).toBe(1001);
  });
});
