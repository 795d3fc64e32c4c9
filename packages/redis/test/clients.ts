/**
 * The four clients the store is tested with: node-redis 5 and 4, ioredis 6 and 5, each
 * connected to a URL, with a raw `keys`/`get` to inspect Redis directly and a `close`.
 */
import { Redis as IORedis6 } from 'ioredis';
import { Redis as IORedis5 } from 'ioredis5';
import { createClient as createClient5 } from 'redis';
import { createClient as createClient4 } from 'redis4';
import type { RedisClientLike } from '../src/index.js';

export interface TestClient {
  client: RedisClientLike;
  /** Every key in Redis. */
  keys(): Promise<string[]>;
  /** A key's raw value. */
  raw(key: string): Promise<string | null>;
  close(): Promise<void>;
}

/** What the tests use of either client, in every major. */
interface Connection {
  on(event: 'error', listener: () => void): unknown;
  connect(): Promise<unknown>;
  keys(pattern: string): Promise<string[]>;
  get(key: string): Promise<string | null>;
  disconnect(): unknown;
}

/** Connects `connection` (errors silenced: the tests stop Redis on purpose). */
async function connected(connection: Connection): Promise<TestClient> {
  connection.on('error', () => {});
  await connection.connect();
  return {
    client: connection as unknown as RedisClientLike,
    keys: () => connection.keys('*'),
    raw: (key) => connection.get(key),
    close: async () => {
      await Promise.resolve(connection.disconnect()).catch(() => {});
    },
  };
}

type NodeRedisFactory = (options: object) => Connection;
type IORedisConstructor = new (url: string, options: object) => Connection;
const nodeRedis = (create: unknown, url: string) =>
  connected((create as NodeRedisFactory)({ url, socket: { reconnectStrategy: () => 100 } }));
const ioredis = (Redis: unknown, url: string) =>
  connected(new (Redis as IORedisConstructor)(url, { lazyConnect: true, maxRetriesPerRequest: 1 }));

export const CLIENTS: [string, (url: string) => Promise<TestClient>][] = [
  ['node-redis 5', (url) => nodeRedis(createClient5, url)],
  ['node-redis 4', (url) => nodeRedis(createClient4, url)],
  ['ioredis 6', (url) => ioredis(IORedis6, url)],
  ['ioredis 5', (url) => ioredis(IORedis5, url)],
];
