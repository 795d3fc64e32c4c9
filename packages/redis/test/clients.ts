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

type Factory = (url: string) => Promise<TestClient>;

/** What the tests use of a node-redis client, in both majors. */
interface NodeRedisTestClient {
  on(event: 'error', listener: () => void): unknown;
  connect(): Promise<unknown>;
  keys(pattern: string): Promise<string[]>;
  get(key: string): Promise<string | null>;
  disconnect(): Promise<void>;
}
type NodeRedisFactory = (options: object) => NodeRedisTestClient;

async function nodeRedis(create: NodeRedisFactory, url: string) {
  const client = create({ url, socket: { reconnectStrategy: () => 100 } });
  client.on('error', () => {});
  await client.connect();
  return {
    client: client as unknown as RedisClientLike,
    keys: () => client.keys('*'),
    raw: (key: string) => client.get(key),
    close: async () => {
      await client.disconnect().catch(() => {});
    },
  };
}

/** What the tests use of an ioredis client, in both majors. */
interface IORedisTestClient {
  on(event: 'error', listener: () => void): unknown;
  connect(): Promise<unknown>;
  keys(pattern: string): Promise<string[]>;
  get(key: string): Promise<string | null>;
  disconnect(): void;
}
type IORedisConstructor = new (url: string, options: object) => IORedisTestClient;

async function ioredis(Redis: IORedisConstructor, url: string) {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  client.on('error', () => {});
  await client.connect();
  return {
    client: client as unknown as RedisClientLike,
    keys: () => client.keys('*'),
    raw: (key: string) => client.get(key),
    close: async () => {
      client.disconnect();
    },
  };
}

export const CLIENTS: [string, Factory][] = [
  ['node-redis 5', (url) => nodeRedis(createClient5 as unknown as NodeRedisFactory, url)],
  ['node-redis 4', (url) => nodeRedis(createClient4 as unknown as NodeRedisFactory, url)],
  ['ioredis 6', (url) => ioredis(IORedis6 as unknown as IORedisConstructor, url)],
  ['ioredis 5', (url) => ioredis(IORedis5 as unknown as IORedisConstructor, url)],
];
