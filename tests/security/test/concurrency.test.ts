/**
 * Issue 16, item 4, on every front door: clients that never read cannot take the upstream
 * pool. One client gets at most `limits.concurrentRequests` proxied requests in progress (429
 * `Throttling.ClientConcurrency` beyond, nothing sent upstream); many clients that fill the
 * pool do not keep a newcomer waiting; the node pool's queue serves a newcomer before the
 * queued extra requests of clients that already hold connections; every slot is given back.
 *
 * The emulator streams one frame a minute (a stream holds its connection until its client
 * leaves) and answers the prompt `big` with 8 MiB (a client that does not read it backs up
 * into the server and is cut after `proxy.sendTimeoutMs`).
 */
import net from 'node:net';
import { type Emulator, startEmulator } from '@dashscope-token/emulator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type App,
  EAS_SERVICE,
  EMULATOR_PAI_EAS,
  FRONT_DOORS,
  type FrontDoorOptions,
  headerIn,
  PERMANENT_KEYS,
  startFrontDoor,
  UNTRIPPED_LIMITS,
} from './apps.js';

let emulator: Emulator;

beforeAll(async () => {
  emulator = await startEmulator({
    apiKeys: [...PERMANENT_KEYS],
    paiEas: EMULATOR_PAI_EAS,
    chunkDelayMs: 60_000,
    reply: (prompt) => (prompt === 'big' ? 'x'.repeat(8 * 1024 * 1024) : 'Hello there.'),
  });
});
afterAll(async () => {
  await emulator.close();
});

/** The front doors whose upstream pool is the handler's own (the Fetch ones use `fetch`'s). */
const NODE_POOL_DOORS = FRONT_DOORS.filter((name) => name !== 'fetch' && name !== 'hono');

/** Per-client options: clients are named by `X-Client`, limits never trip but concurrency. */
function options(concurrentRequests: number, proxy: FrontDoorOptions['proxy'] = {}) {
  return {
    limits: {
      ...UNTRIPPED_LIMITS,
      concurrentRequests,
      key: (ctx: unknown) => headerIn(ctx, 'x-client'),
    },
    proxy: { headersTimeoutMs: 10_000, ...proxy },
  } as FrontDoorOptions;
}

interface Sent {
  socket: net.Socket;
  /** The status line's code, once the answer's head arrived (-1 if the connection closed first). */
  status: Promise<number>;
  /** The whole answer, once the connection closed. */
  text: Promise<string>;
}

/**
 * One chat completion of `client` on its own connection (`Connection: close`): from Model
 * Studio, or from the emulated PAI-EAS service with `service`.
 */
function chat(
  app: App,
  client: string,
  prompt: string,
  stream: boolean,
  read = true,
  service = false,
): Sent {
  const path = service
    ? `/dashscope/pai-eas/services/${EAS_SERVICE}/v1/chat/completions`
    : '/dashscope/compatible-mode/v1/chat/completions';
  const body = JSON.stringify({
    model: service ? EAS_SERVICE : 'qwen-plus',
    stream,
    messages: [{ role: 'user', content: prompt }],
  });
  const socket = net.connect(app.port, '127.0.0.1');
  socket.on('error', () => {});
  socket.write(
    `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Client: ${client}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
  const chunks: Buffer[] = [];
  let head = '';
  const status = new Promise<number>((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      if (head === '') {
        head = chunk.subarray(0, 16).toString('latin1');
        resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? -1));
        // A client that never reads past the head: the rest backs up into the server.
        if (!read) socket.pause();
      }
      chunks.push(chunk);
    });
    socket.once('close', () => resolve(-1));
  });
  const text = new Promise<string>((resolve) => {
    socket.once('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
  });
  return { socket, status, text };
}

/** The handler's counters of requests in progress and of its pool's queue. */
function counters(app: App) {
  const stats = app.handlers[0]!.stats() as {
    limits?: { concurrency?: { inFlight: number; clients: number } };
    upstream?: { queue?: { inFlight: number; waiting: number } };
  };
  return {
    inFlight: stats.limits?.concurrency?.inFlight ?? -1,
    clients: stats.limits?.concurrency?.clients ?? -1,
    poolInFlight: stats.upstream?.queue?.inFlight ?? 0,
    poolWaiting: stats.upstream?.queue?.waiting ?? 0,
  };
}

/** Waits until every slot and every connection of the pool is given back. */
async function backToIdle(app: App): Promise<void> {
  await expect
    .poll(() => counters(app), { timeout: 10_000 })
    .toEqual({ inFlight: 0, clients: 0, poolInFlight: 0, poolWaiting: 0 });
  await expect.poll(() => app.handlers[0]!.stats().activeRequests, { timeout: 10_000 }).toBe(0);
}

/** Proxied requests admitted so far (it only grows). */
function admitted(app: App): number {
  const stats = app.handlers[0]!.stats() as { limits?: { allowed: { proxy: number } } };
  return stats.limits?.allowed.proxy ?? -1;
}

function chatsUpstream(): number {
  return emulator.requests.filter((r) => r.route === 'chat').length;
}

describe.each(FRONT_DOORS)('%s', (name) => {
  it('answers 429 Throttling.ClientConcurrency to one client opening more non-reading streams than its cap, sends them nowhere, and still answers another client', async () => {
    emulator.clearRequests();
    const app = await startFrontDoor(name, emulator, options(2));
    const held: Sent[] = [];
    try {
      held.push(chat(app, 'greedy', 'stream one', true, false));
      held.push(chat(app, 'greedy', 'stream two', true, false));
      expect(await held[0]!.status).toBe(200);
      expect(await held[1]!.status).toBe(200);
      await expect.poll(() => counters(app).inFlight).toBe(2);

      const extra = chat(app, 'greedy', 'stream three', true);
      const answer = await extra.text;
      expect(answer).toMatch(/^HTTP\/1\.1 429 /);
      expect(answer).toMatch(/"code":"throttling_client_concurrency"/);
      expect(answer.toLowerCase()).toContain('retry-after: 1');
      expect(answer.toLowerCase()).not.toContain('x-should-retry: false');
      expect(chatsUpstream()).toBe(2);

      const other = chat(app, 'someone else', 'hello', false);
      expect(await other.status).toBe(200);
      expect(await other.text).toContain('Hello there.');
      expect(chatsUpstream()).toBe(3);
    } finally {
      for (const sent of held) sent.socket.destroy();
      await backToIdle(app);
      await app.close();
    }
  });

  it('does not let many distinct clients that never read keep a newcomer waiting: each is cut after sendTimeoutMs and the newcomer is answered', async () => {
    // Two connections, one request per client: four clients, each under its cap, take them
    // all and queue for more (the Fetch doors' `fetch` has no such cap: all four go upstream).
    const app = await startFrontDoor(
      name,
      emulator,
      options(1, { connections: 2, sendTimeoutMs: 300 }),
    );
    const held: Sent[] = [];
    try {
      for (let i = 0; i < 4; i++) {
        held.push(chat(app, `reader-of-nothing-${i}`, 'big', false, false));
        await expect.poll(() => admitted(app)).toBe(i + 1);
      }
      const newcomer = chat(app, 'newcomer', 'big', false);
      expect(await newcomer.status).toBe(200);
      const text = await newcomer.text;
      expect(text.length).toBeGreaterThan(8 * 1024 * 1024);
      expect(text).toMatch(/"finish_reason":"stop"/);
    } finally {
      for (const sent of held) sent.socket.destroy();
      await backToIdle(app);
      await app.close();
    }
  });

  it('counts PAI-EAS service calls against the same cap as Model Studio calls', async () => {
    const app = await startFrontDoor(name, emulator, options(2));
    const held: Sent[] = [];
    try {
      held.push(chat(app, 'both', 'stream', true, false));
      held.push(chat(app, 'both', 'stream', true, false, true));
      expect(await Promise.all(held.map((s) => s.status))).toEqual([200, 200]);
      const extra = await chat(app, 'both', 'hello', false, true, true).text;
      expect(extra).toMatch(/^HTTP\/1\.1 429 /);
      expect(extra).toContain('"code":"Throttling.ClientConcurrency"');
      const other = chat(app, 'another', 'hello', false, true, true);
      expect(await other.status).toBe(200);
    } finally {
      for (const sent of held) sent.socket.destroy();
      await backToIdle(app);
      await app.close();
    }
  });

  it('gives every slot back once its clients leave, refused ones included: stats return to zero', async () => {
    const app = await startFrontDoor(name, emulator, options(3));
    const sent: Sent[] = [];
    try {
      for (const client of ['a', 'b']) {
        for (let i = 0; i < 5; i++) sent.push(chat(app, client, 'stream', true, false));
      }
      const statuses = await Promise.all(sent.map((s) => s.status));
      expect(statuses.filter((s) => s === 200)).toHaveLength(6);
      expect(statuses.filter((s) => s === 429)).toHaveLength(4);
      await expect.poll(() => counters(app)).toMatchObject({ inFlight: 6, clients: 2 });
      for (const s of sent) s.socket.destroy();
      await backToIdle(app);
      // Given back for good: the same client has its whole cap again.
      const again = [1, 2, 3].map(() => chat(app, 'a', 'stream', true, false));
      expect(await Promise.all(again.map((s) => s.status))).toEqual([200, 200, 200]);
      for (const s of again) s.socket.destroy();
      await backToIdle(app);
    } finally {
      for (const s of sent) s.socket.destroy();
      await app.close();
    }
  });
});

describe.each(NODE_POOL_DOORS)('%s: the upstream pool queue', (name) => {
  it('serves a newcomer before the queued extra requests of clients that already hold connections', async () => {
    const app = await startFrontDoor(name, emulator, options(2, { connections: 2 }));
    const first: Sent[] = [];
    const second: Sent[] = [];
    try {
      // `holder` takes both connections with streams that stay open.
      first.push(chat(app, 'holder', 'stream', true, false));
      first.push(chat(app, 'holder', 'stream', true, false));
      await expect.poll(() => counters(app).poolInFlight).toBe(2);
      // `queuer` waits with two streams, then the newcomer with one request.
      second.push(chat(app, 'queuer', 'stream', true, false));
      second.push(chat(app, 'queuer', 'stream', true, false));
      await expect.poll(() => counters(app).poolWaiting).toBe(2);
      const newcomer = chat(app, 'newcomer', 'hello', false);
      await expect.poll(() => counters(app).poolWaiting).toBe(3);
      const answered: string[] = [];
      void newcomer.status.then(() => answered.push('newcomer'));
      void second[1]!.status.then(() => answered.push("queuer's second"));

      // The holder leaves one connection: the queuer's first stream takes it (it has none).
      first[0]!.socket.destroy();
      expect(await second[0]!.status).toBe(200);
      // The holder leaves the other: the newcomer, with none in flight, goes before the
      // queuer's second stream, which waits for the newcomer's connection.
      first[1]!.socket.destroy();
      expect(await newcomer.status).toBe(200);
      expect(await newcomer.text).toContain('Hello there.');
      expect(await second[1]!.status).toBe(200);
      expect(answered).toEqual(['newcomer', "queuer's second"]);
    } finally {
      for (const sent of [...first, ...second]) sent.socket.destroy();
      await backToIdle(app);
      await app.close();
    }
  });

  it('answers 503 Throttling.PoolBusy beyond proxy.queueLength, sending nothing upstream', async () => {
    emulator.clearRequests();
    const app = await startFrontDoor(
      name,
      emulator,
      options(5, { connections: 1, queueLength: 1 }),
    );
    const held: Sent[] = [];
    try {
      held.push(chat(app, 'one', 'stream', true, false));
      await expect.poll(() => counters(app).poolInFlight).toBe(1);
      held.push(chat(app, 'two', 'stream', true, false));
      await expect.poll(() => counters(app).poolWaiting).toBe(1);
      const answer = await chat(app, 'three', 'hello', false).text;
      expect(answer).toMatch(/^HTTP\/1\.1 503 /);
      expect(answer).toMatch(/"code":"throttling_pool_busy"/);
      expect(chatsUpstream()).toBe(1);
    } finally {
      for (const sent of held) sent.socket.destroy();
      await backToIdle(app);
      await app.close();
    }
  });
});
