/**
 * Four Node processes sharing one Redis store and one API key: a cold burst of 2,000
 * concurrent getToken calls spread across them makes exactly one mint at the emulator.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { DEFAULT_EMULATOR_API_KEY as KEY } from '@dashscope-token/emulator';
import { describe, expect, it } from 'vitest';
import { redisAvailable, tokenMints, useRedisAndEmulator } from './redis-server.js';

const INSTANCE = fileURLToPath(new URL('./fixtures/instance.mjs', import.meta.url));
const HANDLER_INSTANCE = fileURLToPath(new URL('./fixtures/handler-instance.mjs', import.meta.url));

interface Reply {
  type: string;
  port?: number;
  tokens: string[];
  failures: string[];
  stats: { mints: number; store?: { hits: number; errors: number; fallbacks: number } };
  unhandled: string[];
}

function next(child: ChildProcess, type: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: Reply) => {
      if (message.type !== type) return;
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve(message);
    };
    const onExit = (code: number | null) =>
      reject(new Error(`instance exited (${code}) before "${type}"`));
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

async function startInstances(
  count: number,
  env: Record<string, string>,
  script = INSTANCE,
): Promise<ChildProcess[]> {
  const children = Array.from({ length: count }, () =>
    fork(script, [], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }),
  );
  const ready = await Promise.all(children.map((child) => next(child, 'ready')));
  ready.forEach((reply, i) => {
    ports.set(children[i]!, reply.port ?? 0);
  });
  return children;
}

/** The port each handler instance listens on. */
const ports = new WeakMap<ChildProcess, number>();

async function stopInstances(children: ChildProcess[]): Promise<string[]> {
  const replies = await Promise.all(
    children.map((child) => {
      const reply = next(child, 'exit');
      child.send({ type: 'exit' });
      return reply;
    }),
  );
  return replies.flatMap((r) => r.unhandled);
}

describe.skipIf(!redisAvailable())('four processes on one Redis store', () => {
  const { redis, emulator } = useRedisAndEmulator();

  it('2,000 cold concurrent calls across 4 processes make exactly one mint', async () => {
    const children = await startInstances(4, {
      REDIS_URL: redis().url,
      EMULATOR_URL: emulator().url,
      API_KEY: KEY,
    });
    try {
      const replies = await Promise.all(
        children.map((child) => {
          const reply = next(child, 'burst');
          child.send({ type: 'burst', calls: 500 });
          return reply;
        }),
      );
      expect(replies.flatMap((r) => r.failures)).toEqual([]);
      expect(new Set(replies.flatMap((r) => r.tokens)).size).toBe(1);
      expect(tokenMints(emulator())).toBe(1);
      expect(replies.reduce((sum, r) => sum + r.stats.mints, 0)).toBe(1);
      expect(replies.reduce((sum, r) => sum + (r.stats.store?.hits ?? 0), 0)).toBe(3);
      expect(replies.reduce((sum, r) => sum + (r.stats.store?.errors ?? 0), 0)).toBe(0);
    } finally {
      expect(await stopInstances(children)).toEqual([]);
    }
  });

  it('under 60 s of steady load with a 10 s TTL, the 4 processes mint once per refresh period', async () => {
    const ttl = 10;
    const durationMs = 60_000;
    const children = await startInstances(4, {
      REDIS_URL: redis().url,
      EMULATOR_URL: emulator().url,
      API_KEY: KEY,
      TTL: String(ttl),
    });
    try {
      const replies = await Promise.all(
        children.map((child) => {
          const reply = next(child, 'steady');
          child.send({ type: 'steady', durationMs, everyMs: 20 });
          return reply;
        }),
      );
      expect(replies.flatMap((r) => r.failures)).toEqual([]);
      const mints = tokenMints(emulator());
      const perProcess = replies.map((r) => r.stats.mints);
      // A token is replaced once its remaining life falls under minValiditySeconds (5 s), and
      // its life starts up to 1 s short (clock-skew correction): one refresh every 4 to 5 s (3.5 s allows for a slow machine).
      const periods = Math.ceil(durationMs / ((ttl / 2 - 1.5) * 1000)) + 1;
      console.log(
        `[steady] ${mints} mints in ${durationMs / 1000} s (per process ${perProcess.join(', ')}; at most ${periods} periods)`,
      );
      expect(mints).toBe(perProcess.reduce((a, b) => a + b, 0));
      expect(mints).toBeGreaterThanOrEqual(Math.floor(durationMs / (ttl * 1000)));
      expect(mints).toBeLessThanOrEqual(periods);
    } finally {
      expect(await stopInstances(children)).toEqual([]);
    }
  }, 120_000);
});

describe.skipIf(!redisAvailable())(
  'three handler processes sharing per-client limits on Redis',
  () => {
    const { redis, emulator } = useRedisAndEmulator();

    it('a limit of 10 per minute per client admits exactly 10 of 30 requests, the rest 429 with Retry-After', async () => {
      const children = await startInstances(
        3,
        { REDIS_URL: redis().url, EMULATOR_URL: emulator().url, API_KEY: KEY, POINTS: '10' },
        HANDLER_INSTANCE,
      );
      try {
        // 30 concurrent requests from one client (127.0.0.1), 10 to each process.
        const answers = await Promise.all(
          Array.from({ length: 30 }, async (_, i) => {
            const port = ports.get(children[i % 3]!);
            const res = await fetch(`http://127.0.0.1:${port}/dashscope/token`, { method: 'POST' });
            return {
              status: res.status,
              retryAfter: res.headers.get('retry-after'),
              body: await res.text(),
            };
          }),
        );
        const admitted = answers.filter((a) => a.status === 200);
        const refused = answers.filter((a) => a.status === 429);
        expect(admitted).toHaveLength(10);
        expect(refused).toHaveLength(20);
        for (const answer of refused) {
          expect(Number(answer.retryAfter)).toBeGreaterThanOrEqual(1);
          expect(Number(answer.retryAfter)).toBeLessThanOrEqual(60);
          expect(JSON.parse(answer.body)).toMatchObject({ code: 'Throttling.ClientLimit' });
        }
      } finally {
        expect(await stopInstances(children)).toEqual([]);
      }
    });
  },
);
