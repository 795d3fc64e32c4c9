/**
 * `@dashscope-token/redis`: the {@link SharedStore} of `@dashscope-token/core` over the Redis
 * client an app already has, node-redis (`redis` 4/5) or ioredis (5/6). Each call is one
 * command of the client's own (`GET`, `SET … PX`, `SET … PX … NX`), and one Lua script where
 * Redis has no command: deleting a lock only if its owner still holds it, and adding to a
 * budget's count while setting when it expires. It also keeps the handlers' per-client limits
 * and budgets.
 */
import {
  type BudgetCounter,
  type BudgetStore,
  type BudgetWindow,
  DELETE_IF_EQUALS_SCRIPT,
  type RateLimitDecision,
  type RateLimiter,
  type RateLimitStore,
  type SharedStore,
} from '@dashscope-token/core/neutral';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';

// biome-ignore lint/suspicious/noExplicitAny: the clients' overloaded methods, checked at run time
type Method = (...args: any[]) => unknown;

/**
 * A connected node-redis (`createClient()` of `redis` 4/5) or ioredis (`new Redis()`, 5/6)
 * client, or a cluster client of either. Only `get`, `set` and `eval` are called.
 */
export interface RedisClientLike {
  get: Method;
  set: Method;
  eval: Method;
  /** ioredis only; tells the two clients apart. */
  defineCommand?: Method;
  on?: Method;
  listenerCount?: (event: string) => number;
}

/** Options of {@link createRedisStore}. */
export interface RedisStoreOptions {
  /** The app's connected node-redis or ioredis client. Not closed by the store. */
  client: RedisClientLike;
  /**
   * Namespace put in front of every key the store writes (`<prefix>token:<hmac>`,
   * `<prefix>lock:<hmac>`), so that one Redis can serve several apps.
   * @default 'dashscope-token:'
   */
  prefix?: string;
}

/**
 * A {@link SharedStore} on Redis that also keeps per-client limits (`RateLimitStore`) and
 * budgets (`BudgetStore`): given as the handler's `store`, the token cache, the `limits` and the
 * `budgets` of every instance share it.
 */
export interface RedisStore extends SharedStore, RateLimitStore, BudgetStore {
  /** The client given to {@link createRedisStore}. */
  readonly client: RedisClientLike;
  /** Which client it is. */
  readonly kind: 'node-redis' | 'ioredis';
  /** The key prefix in use. */
  readonly prefix: string;
}

/**
 * A budget counted by `rate-limiter-flexible`'s `RateLimiterRedis`: one Lua script per check
 * (`SET … NX EX`, `INCRBY`, `PTTL`), so every instance counts against the same window. Its
 * rejection with a `RateLimiterRes` is "over the budget"; any other rejection is a Redis
 * failure (the handler then counts locally).
 */
function redisRateLimiter(limiter: RateLimiterRedis): RateLimiter {
  return {
    async consume(key: string): Promise<RateLimitDecision> {
      try {
        const res = await limiter.consume(key);
        return { allowed: true, msBeforeNext: res.msBeforeNext };
      } catch (rejection) {
        if (rejection instanceof RateLimiterRes) {
          return { allowed: false, msBeforeNext: rejection.msBeforeNext };
        }
        throw rejection;
      }
    },
  };
}

/**
 * `INCRBY` a budget's count and expire it when its period has ended (`PEXPIREAT`, a minute
 * late for clocks that disagree), in one script: `KEYS[1]`, `ARGV[1]` = amount, `ARGV[2]` = ms
 * since the epoch. Returns the count after it.
 */
export const BUDGET_ADD_SCRIPT =
  "local n = redis.call('incrby', KEYS[1], ARGV[1]) redis.call('pexpireat', KEYS[1], ARGV[2]) return n";

/** Milliseconds a budget's count outlives its period, for instances whose clocks run behind. */
const BUDGET_GRACE_MS = 60_000;

/**
 * A budget counted in Redis: one key per identity hash and period
 * (`<prefix>budget:<name>:<period index>:<hash>`), so a new period starts at 0 on every
 * instance without a reset, and Redis drops the old ones by itself.
 */
function redisBudgetCounter(
  client: RedisClientLike,
  kind: 'node-redis' | 'ioredis',
  keyPrefix: string,
): BudgetCounter {
  const keyOf = (key: string, window: BudgetWindow) => `${keyPrefix}${window.index}:${key}`;
  const add =
    kind === 'ioredis'
      ? (key: string, amount: string, at: string) =>
          client.eval(BUDGET_ADD_SCRIPT, 1, key, amount, at) as Promise<unknown>
      : (key: string, amount: string, at: string) =>
          client.eval(BUDGET_ADD_SCRIPT, {
            keys: [key],
            arguments: [amount, at],
          }) as Promise<unknown>;
  return {
    async add(key, amount, window) {
      const at = String(window.endsAt + BUDGET_GRACE_MS);
      return Number(await add(keyOf(key, window), String(amount), at));
    },
    async get(key, window) {
      const value = text(await (client.get(keyOf(key, window)) as Promise<unknown>));
      return value === undefined ? 0 : Number(value);
    },
  };
}

/** The default key prefix. */
export const DEFAULT_PREFIX = 'dashscope-token:';

function text(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  // A client configured to return buffers.
  if (value instanceof Uint8Array) return new TextDecoder().decode(value);
  return undefined;
}

/**
 * Creates a shared token store over an existing Redis client, for the `store` option of
 * `createTokenProvider`. What it stores is sealed by the provider (HMAC key names, AES-GCM
 * values): a reader of Redis finds neither the permanent key nor a temporary key.
 *
 * A node-redis client without an `'error'` listener gets a silent one, so that a lost
 * connection is not a crash (the provider counts and reports store failures itself).
 *
 * @throws TypeError when `client` has no `get`, `set` and `eval` methods
 * @example
 * import { createClient } from 'redis';
 * const client = await createClient({ url: process.env.REDIS_URL }).connect();
 * const tokens = createTokenProvider({ store: createRedisStore({ client }) });
 */
export function createRedisStore(options: RedisStoreOptions): RedisStore {
  const client = options?.client;
  if (
    client === null ||
    typeof client !== 'object' ||
    typeof client.get !== 'function' ||
    typeof client.set !== 'function' ||
    typeof client.eval !== 'function'
  ) {
    throw new TypeError(
      'createRedisStore: `client` must be a node-redis or ioredis client (with get, set and eval).',
    );
  }
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  if (typeof prefix !== 'string')
    throw new TypeError('createRedisStore: `prefix` must be a string.');
  const kind = typeof client.defineCommand === 'function' ? 'ioredis' : 'node-redis';
  if (
    kind === 'node-redis' &&
    typeof client.on === 'function' &&
    (client.listenerCount?.('error') ?? 0) === 0
  ) {
    client.on('error', () => {});
  }
  const ms = (ttlMs: number): number => Math.max(1, Math.ceil(ttlMs));

  const setIfAbsent =
    kind === 'ioredis'
      ? (key: string, value: string, ttlMs: number) =>
          client.set(key, value, 'PX', ms(ttlMs), 'NX') as Promise<unknown>
      : (key: string, value: string, ttlMs: number) =>
          client.set(key, value, { PX: ms(ttlMs), NX: true }) as Promise<unknown>;
  const set =
    kind === 'ioredis'
      ? (key: string, value: string, ttlMs: number) =>
          client.set(key, value, 'PX', ms(ttlMs)) as Promise<unknown>
      : (key: string, value: string, ttlMs: number) =>
          client.set(key, value, { PX: ms(ttlMs) }) as Promise<unknown>;
  const deleteIfEquals =
    kind === 'ioredis'
      ? (key: string, value: string) =>
          client.eval(DELETE_IF_EQUALS_SCRIPT, 1, key, value) as Promise<unknown>
      : (key: string, value: string) =>
          client.eval(DELETE_IF_EQUALS_SCRIPT, {
            keys: [key],
            arguments: [value],
          }) as Promise<unknown>;

  return {
    client,
    kind,
    prefix,
    createRateLimiter: ({ name, points, durationSeconds }) =>
      redisRateLimiter(
        new RateLimiterRedis({
          storeClient: client,
          useRedisPackage: kind === 'node-redis',
          keyPrefix: `${prefix}limit:${name}`,
          points,
          duration: durationSeconds,
        }),
      ),
    createBudgetCounter: ({ name }) => redisBudgetCounter(client, kind, `${prefix}budget:${name}:`),
    async get(key) {
      return text(await (client.get(prefix + key) as Promise<unknown>));
    },
    async set(key, value, ttlMs) {
      await set(prefix + key, value, ttlMs);
    },
    async setIfAbsent(key, value, ttlMs) {
      return (await setIfAbsent(prefix + key, value, ttlMs)) === 'OK';
    },
    async deleteIfEquals(key, value) {
      await deleteIfEquals(prefix + key, value);
    },
  };
}
