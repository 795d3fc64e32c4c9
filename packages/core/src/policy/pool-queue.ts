/**
 * A fair queue in front of an upstream connection pool: at most `connections` exchanges in
 * flight; the requests beyond wait, and each freed connection goes to a waiting client that has
 * none in flight first (a newcomer is served by the next connection freed, however many
 * requests other clients keep queued), else to the waiting clients in turn (round-robin, one
 * request each). The queue is bounded in length and in time: beyond either, 503
 * `Throttling.PoolBusy`. With the per-client concurrency (`limits.concurrentRequests`) and
 * `proxy.sendTimeoutMs` (a client that stops reading is cut and frees its connection), many
 * clients holding connections cannot keep a newcomer waiting beyond `sendTimeoutMs`.
 * Runtime-neutral (a timer per waiting request).
 */

import { unrefTimer } from '../timer.js';
import { invalidOption } from '../token/errors.js';
import type { ErrorAnswer } from './answers.js';

/** Default most requests waiting for an upstream connection, every client together. */
export const DEFAULT_QUEUE_LENGTH = 10_000;
/** Default longest wait for an upstream connection, milliseconds. */
export const DEFAULT_QUEUE_TIMEOUT_MS = 60_000;

/** A connection of the pool, held by one exchange: give it back once. */
export interface PoolTurn {
  /** Frees the connection for the next waiting request; calls after the first do nothing. */
  release(): void;
}

/** Counters of the queue, in `stats().upstream.queue`. */
export interface PoolQueueStats {
  /** Exchanges holding a connection. */
  inFlight: number;
  /** Requests waiting for one. */
  waiting: number;
  /** Requests answered 503 `Throttling.PoolBusy` (queue full, or waited `queueTimeoutMs`). */
  refused: number;
}

/** The queue's settings. */
export interface PoolQueueSettings {
  /** Exchanges in flight at most (`proxy.connections`). */
  connections: number;
  /** Requests waiting at most (`proxy.queueLength`). */
  queueLength: number;
  /** Longest wait, milliseconds; 0 = none (`proxy.queueTimeoutMs`). */
  queueTimeoutMs: number;
}

/** A request waiting for a connection. */
interface Waiter {
  owner: ClientQueue;
  resolve(outcome: PoolTurn | ErrorAnswer | undefined): void;
  timer: ReturnType<typeof setTimeout> | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/** One client's exchanges in flight and requests waiting. */
interface ClientQueue {
  client: string;
  inFlight: number;
  waiting: Waiter[];
}

function poolBusy(message: string): ErrorAnswer {
  return {
    status: 503,
    code: 'Throttling.PoolBusy',
    message,
    retryAfterSeconds: 1,
    retryable: true,
  };
}

const QUEUE_FULL = poolBusy(
  'Every upstream connection is in use and too many requests are waiting; retry shortly.',
);
const WAITED_TOO_LONG = poolBusy(
  'Every upstream connection stayed in use for longer than queueTimeoutMs; retry shortly.',
);

function integer(value: unknown, fallback: number, name: string, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw invalidOption(`Invalid ${name} ${String(value)}: expected an integer >= ${min}.`);
  }
  return value;
}

/**
 * `proxy.queueLength` and `proxy.queueTimeoutMs` resolved, with `connections`.
 * @throws DashScopeError `InvalidParameter` for anything but integers (>= 0).
 */
export function resolvePoolQueue(
  proxy: { queueLength?: number; queueTimeoutMs?: number } | undefined,
  connections: number,
): PoolQueueSettings {
  return {
    connections,
    queueLength: integer(proxy?.queueLength, DEFAULT_QUEUE_LENGTH, 'proxy.queueLength', 0),
    queueTimeoutMs: integer(
      proxy?.queueTimeoutMs,
      DEFAULT_QUEUE_TIMEOUT_MS,
      'proxy.queueTimeoutMs',
      0,
    ),
  };
}

/** The fair queue of one upstream pool (one origin). */
export class PoolQueue {
  readonly #settings: PoolQueueSettings;
  readonly #clients = new Map<string, ClientQueue>();
  /** Clients with requests waiting and none in flight, in arrival order: served first. */
  readonly #fresh = new Set<ClientQueue>();
  /** Clients with requests waiting and some in flight, in turn. */
  readonly #turns = new Set<ClientQueue>();
  #inFlight = 0;
  #waiting = 0;
  #refused = 0;

  constructor(settings: PoolQueueSettings) {
    this.#settings = settings;
  }

  /**
   * A connection for one exchange of `client`: at once when one is free and nobody waits,
   * else when its turn comes. Resolves with the 503 to answer when the queue is full or the
   * wait exceeds `queueTimeoutMs`, and with `undefined` when the signal `leaving` gives aborts
   * (the client left; asked for only when the request has to wait).
   */
  enter(
    client: string,
    leaving?: () => AbortSignal,
  ): PoolTurn | ErrorAnswer | Promise<PoolTurn | ErrorAnswer | undefined> {
    const owner = this.#clientQueue(client);
    if (this.#inFlight < this.#settings.connections && this.#waiting === 0) {
      return this.#grant(owner);
    }
    if (this.#waiting >= this.#settings.queueLength) {
      this.#refused++;
      this.#forgetIfIdle(owner);
      return QUEUE_FULL;
    }
    const signal = leaving?.();
    if (signal?.aborted) {
      this.#forgetIfIdle(owner);
      return Promise.resolve(undefined);
    }
    return new Promise((resolve) => {
      const waiter: Waiter = { owner, resolve, timer: undefined, signal, onAbort: undefined };
      const timeout = this.#settings.queueTimeoutMs;
      if (timeout > 0) {
        waiter.timer = setTimeout(() => {
          this.#refused++;
          this.#leave(waiter);
          resolve(WAITED_TOO_LONG);
        }, timeout);
        unrefTimer(waiter.timer);
      }
      if (signal !== undefined) {
        waiter.onAbort = () => {
          this.#leave(waiter);
          resolve(undefined);
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      owner.waiting.push(waiter);
      this.#waiting++;
      this.#ready(owner);
    });
  }

  stats(): PoolQueueStats {
    return { inFlight: this.#inFlight, waiting: this.#waiting, refused: this.#refused };
  }

  #clientQueue(client: string): ClientQueue {
    let owner = this.#clients.get(client);
    if (owner === undefined) {
      owner = { client, inFlight: 0, waiting: [] };
      this.#clients.set(client, owner);
    }
    return owner;
  }

  #forgetIfIdle(owner: ClientQueue): void {
    if (owner.inFlight === 0 && owner.waiting.length === 0) this.#clients.delete(owner.client);
  }

  /** Files `owner` where its next waiting request is served from. */
  #ready(owner: ClientQueue): void {
    if (owner.waiting.length === 0) {
      this.#fresh.delete(owner);
      this.#turns.delete(owner);
    } else if (owner.inFlight === 0) {
      this.#turns.delete(owner);
      this.#fresh.add(owner);
    } else if (!this.#turns.has(owner)) {
      this.#fresh.delete(owner);
      this.#turns.add(owner);
    }
  }

  #grant(owner: ClientQueue): PoolTurn {
    this.#inFlight++;
    owner.inFlight++;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.#inFlight--;
        owner.inFlight--;
        this.#ready(owner);
        this.#forgetIfIdle(owner);
        this.#pump();
      },
    };
  }

  /** A waiting request leaves (timed out, or its client left). */
  #leave(waiter: Waiter): void {
    const owner = waiter.owner;
    const at = owner.waiting.indexOf(waiter);
    if (at < 0) return;
    owner.waiting.splice(at, 1);
    this.#waiting--;
    this.#settle(waiter);
    this.#ready(owner);
    this.#forgetIfIdle(owner);
  }

  #settle(waiter: Waiter): void {
    clearTimeout(waiter.timer);
    if (waiter.onAbort !== undefined) waiter.signal!.removeEventListener('abort', waiter.onAbort);
  }

  /** Hands free connections to waiting requests: fresh clients first, then in turn. */
  #pump(): void {
    while (this.#inFlight < this.#settings.connections && this.#waiting > 0) {
      const owner =
        (this.#fresh.values().next().value as ClientQueue | undefined) ??
        (this.#turns.values().next().value as ClientQueue);
      const waiter = owner.waiting.shift()!;
      this.#waiting--;
      this.#settle(waiter);
      // To the back of the line: the next connection goes to another client.
      this.#fresh.delete(owner);
      this.#turns.delete(owner);
      const turn = this.#grant(owner);
      this.#ready(owner);
      waiter.resolve(turn);
    }
  }
}

/** The fair queues of a pool of several origins (PAI-EAS services): one queue per origin. */
export class PoolQueues {
  readonly #settings: PoolQueueSettings;
  readonly #queues = new Map<string, PoolQueue>();

  constructor(settings: PoolQueueSettings) {
    this.#settings = settings;
  }

  /** The queue of `origin`'s connections. */
  of(origin: string): PoolQueue {
    let queue = this.#queues.get(origin);
    if (queue === undefined) {
      queue = new PoolQueue(this.#settings);
      this.#queues.set(origin, queue);
    }
    return queue;
  }

  /** The counters of every origin's queue, added up. */
  stats(): PoolQueueStats {
    const total: PoolQueueStats = { inFlight: 0, waiting: 0, refused: 0 };
    for (const queue of this.#queues.values()) {
      const s = queue.stats();
      total.inFlight += s.inFlight;
      total.waiting += s.waiting;
      total.refused += s.refused;
    }
    return total;
  }
}
