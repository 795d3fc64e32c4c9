/**
 * The fair queue in front of the upstream pool and the per-client concurrency (issue 16,
 * item 4), as policy: who gets a freed connection, when a request is refused, and that every
 * slot is given back exactly once.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ClientConcurrency } from '../../src/policy/concurrency.js';
import { PoolQueue, type PoolTurn, resolvePoolQueue } from '../../src/policy/pool-queue.js';

afterEach(() => {
  vi.useRealTimers();
});

function queue(connections: number, queueLength = 100, queueTimeoutMs = 0): PoolQueue {
  return new PoolQueue({ connections, queueLength, queueTimeoutMs });
}

function isTurn(value: unknown): value is PoolTurn {
  return typeof (value as PoolTurn).release === 'function';
}

/** Enters `client` and records, in `order`, when it gets its connection. */
function wait(q: PoolQueue, client: string, order: string[]): Promise<PoolTurn> {
  const entered = q.enter(client);
  if (!(entered instanceof Promise)) throw new Error('expected to wait');
  return entered.then((turn) => {
    if (!isTurn(turn)) throw new Error(`refused: ${JSON.stringify(turn)}`);
    order.push(client);
    return turn;
  });
}

describe('pool queue', () => {
  it('gives a freed connection to a waiting client with none in flight before clients that hold connections', async () => {
    const q = queue(2);
    const held = [q.enter('greedy'), q.enter('greedy')] as PoolTurn[];
    expect(held.every(isTurn)).toBe(true);
    const order: string[] = [];
    const greedyMore = wait(q, 'greedy', order);
    const newcomer = wait(q, 'newcomer', order);
    expect(q.stats()).toEqual({ inFlight: 2, waiting: 2, refused: 0 });
    held[0]!.release();
    await newcomer;
    expect(order).toEqual(['newcomer']);
    held[1]!.release();
    await greedyMore;
    expect(order).toEqual(['newcomer', 'greedy']);
  });

  it('takes turns among waiting clients, one request each', async () => {
    const q = queue(1);
    const first = q.enter('x') as PoolTurn;
    const order: string[] = [];
    // Each one holds its connection until the next microtask, then gives it back.
    const served = ['a', 'a', 'a', 'b', 'b'].map((client) =>
      wait(q, client, order).then((turn) => turn.release()),
    );
    first.release();
    await Promise.all(served);
    expect(order).toEqual(['a', 'b', 'a', 'b', 'a']);
    expect(q.stats()).toEqual({ inFlight: 0, waiting: 0, refused: 0 });
  });

  it('answers 503 Throttling.PoolBusy when the queue is full, and to a request that waited queueTimeoutMs', async () => {
    vi.useFakeTimers();
    const q = queue(1, 1, 1000);
    const held = q.enter('a') as PoolTurn;
    const waiting = q.enter('b');
    const full = q.enter('c');
    expect(full).toMatchObject({ status: 503, code: 'Throttling.PoolBusy', retryable: true });
    vi.advanceTimersByTime(1000);
    expect(await waiting).toMatchObject({ status: 503, code: 'Throttling.PoolBusy' });
    expect(q.stats()).toEqual({ inFlight: 1, waiting: 0, refused: 2 });
    held.release();
    expect(q.stats()).toEqual({ inFlight: 0, waiting: 0, refused: 2 });
  });

  it('lets a waiting request go when its client leaves, and hands the connection to the next', async () => {
    const q = queue(1);
    const held = q.enter('a') as PoolTurn;
    const leaving = new AbortController();
    const left = q.enter('b', () => leaving.signal);
    const order: string[] = [];
    const next = wait(q, 'c', order);
    leaving.abort();
    expect(await left).toBeUndefined();
    expect(q.stats()).toEqual({ inFlight: 1, waiting: 1, refused: 0 });
    held.release();
    (await next).release();
    expect(order).toEqual(['c']);
    expect(q.stats()).toEqual({ inFlight: 0, waiting: 0, refused: 0 });
  });

  it('frees a connection once however often it is released', async () => {
    const q = queue(1);
    const turn = q.enter('a') as PoolTurn;
    const order: string[] = [];
    const b = wait(q, 'b', order);
    const c = wait(q, 'c', order);
    turn.release();
    turn.release();
    await b;
    expect(order).toEqual(['b']);
    expect(q.stats()).toEqual({ inFlight: 1, waiting: 1, refused: 0 });
    (await b).release();
    (await c).release();
  });

  it('refuses a queue length or wait that is not an integer >= 0', () => {
    expect(() => resolvePoolQueue({ queueLength: -1 }, 1)).toThrow(/proxy\.queueLength/);
    expect(() => resolvePoolQueue({ queueTimeoutMs: 1.5 }, 1)).toThrow(/proxy\.queueTimeoutMs/);
    expect(resolvePoolQueue(undefined, 7)).toEqual({
      connections: 7,
      queueLength: 10_000,
      queueTimeoutMs: 60_000,
    });
  });
});

describe('per-client concurrency', () => {
  it('refuses one more than the maximum per client with 429 Throttling.ClientConcurrency, other clients unaffected', () => {
    const c = new ClientConcurrency(2);
    const a1 = c.take('a');
    const a2 = c.take('a');
    expect(c.take('a')).toMatchObject({
      status: 429,
      code: 'Throttling.ClientConcurrency',
      retryAfterSeconds: 1,
      retryable: true,
    });
    expect(c.take('b')).toHaveProperty('release');
    expect(c.stats()).toEqual({ inFlight: 3, clients: 2, refused: 1, perClient: 2 });
    (a1 as { release(): void }).release();
    expect(c.take('a')).toHaveProperty('release');
    void a2;
  });

  it('gives a slot back once however often it is released', () => {
    const c = new ClientConcurrency(1);
    const slot = c.take('a') as { release(): void };
    const other = c.take('b') as { release(): void };
    slot.release();
    slot.release();
    expect(c.stats()).toMatchObject({ inFlight: 1, clients: 1 });
    other.release();
    expect(c.stats()).toMatchObject({ inFlight: 0, clients: 0 });
  });
});
