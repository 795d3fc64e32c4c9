/**
 * A shared store: the second tier of the token cache (and, later, of limits and budgets) across
 * every instance of a service. Small enough for any Redis client, including HTTP ones
 * (`@upstash/redis`): four calls, string values, millisecond expiries.
 */

/**
 * What the token provider needs from a shared key-value store with expiry. Every call may
 * reject or hang: the provider bounds each one with `storeTimeoutMs` and mints locally when the
 * store fails, so an implementation need not retry or time out by itself.
 *
 * Keys are short ASCII strings chosen by the provider (`token:<hmac>`, `lock:<hmac>`); an
 * implementation adds its own namespace prefix. Values are opaque ASCII strings (base64 text).
 *
 * `@dashscope-token/redis` implements it over node-redis and ioredis. Over `@upstash/redis`:
 *
 * @example
 * const store: SharedStore = {
 *   get: async (key) => (await redis.get<string>(`app:${key}`)) ?? undefined,
 *   set: async (key, value, ttlMs) => { await redis.set(`app:${key}`, value, { px: ttlMs }); },
 *   setIfAbsent: async (key, value, ttlMs) =>
 *     (await redis.set(`app:${key}`, value, { px: ttlMs, nx: true })) === 'OK',
 *   deleteIfEquals: async (key, value) => {
 *     await redis.eval(DELETE_IF_EQUALS_SCRIPT, [`app:${key}`], [value]);
 *   },
 * };
 */
export interface SharedStore {
  /** The value under `key`, or `undefined` (or `null`) when there is none or it expired. */
  get(key: string): Promise<string | null | undefined>;
  /** Stores `value` under `key` for `ttlMs` milliseconds (an integer >= 1), replacing any value. */
  set(key: string, value: string, ttlMs: number): Promise<void>;
  /**
   * Atomically stores `value` under `key` for `ttlMs` only if `key` has no value (Redis
   * `SET key value PX ttlMs NX`). Resolves `true` when this call stored it. Used as a short lock.
   */
  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean>;
  /**
   * Atomically deletes `key` only if it holds `value` (releases a lock only its owner holds; in
   * Redis a one-line Lua script, {@link DELETE_IF_EQUALS_SCRIPT}).
   */
  deleteIfEquals(key: string, value: string): Promise<void>;
}

/** The Lua script of `deleteIfEquals` for Redis (`KEYS[1]`, `ARGV[1]`); returns 1 when deleted. */
export const DELETE_IF_EQUALS_SCRIPT =
  "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";
