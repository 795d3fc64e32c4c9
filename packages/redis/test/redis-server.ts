/**
 * A real `redis-server` (Debian's package) for the tests: started on a free 127.0.0.1 port with
 * persistence off, stopped after. Missing binary: the tests fail under CI=true, skip locally.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { type Emulator, startEmulator } from '@dashscope-token/emulator';
import { afterAll, afterEach, beforeAll } from 'vitest';

export const REDIS_SERVER = process.env.REDIS_SERVER ?? '/usr/bin/redis-server';

/** Whether the tests can run; throws under CI when they cannot (a CI run must not skip them). */
export function redisAvailable(): boolean {
  if (existsSync(REDIS_SERVER)) return true;
  if (process.env.CI === 'true') {
    throw new Error(
      `${REDIS_SERVER} is missing: install Debian's redis-server (apt-get install redis-server); CI must not skip the Redis tests.`,
    );
  }
  return false;
}

function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.setTimeout(500);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => {
      socket.destroy();
      resolve(data.toString().startsWith('+PONG'));
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/** One redis-server process, restartable on the same port. */
export class RedisServer {
  #process: ChildProcess | undefined;

  private constructor(public port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts a server on a random free port (another port when that one is taken). */
  static async start(): Promise<RedisServer> {
    for (let attempt = 1; ; attempt++) {
      const server = new RedisServer(20_000 + Math.floor(Math.random() * 40_000));
      try {
        await server.restart();
        return server;
      } catch (error) {
        await server.stop();
        if (attempt >= 5) throw error;
      }
    }
  }

  /** Starts the server (again) on its port and resolves once it answers PING. */
  async restart(): Promise<void> {
    if (this.#process !== undefined) throw new Error('redis-server is already running');
    const child = spawn(
      REDIS_SERVER,
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    );
    this.#process = child;
    child.once('exit', () => {
      if (this.#process === child) this.#process = undefined;
    });
    const deadline = Date.now() + 10_000;
    while (!(await answersPing(this.port))) {
      // Exited at once: the port is taken (or the binary is broken).
      if (this.#process !== child) throw new Error(`redis-server exited on port ${this.port}`);
      if (Date.now() > deadline) throw new Error('redis-server did not start within 10 s');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Makes it hang: the process is stopped (SIGSTOP), connections stay open, nothing answers. */
  pause(): void {
    this.#process?.kill('SIGSTOP');
  }

  resume(): void {
    this.#process?.kill('SIGCONT');
  }

  /** Stops the server (SIGKILL after a SIGCONT, no persistence to wait for). */
  async stop(): Promise<void> {
    const child = this.#process;
    if (child === undefined) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGCONT');
    child.kill('SIGKILL');
    await exited;
    this.#process = undefined;
  }
}

/** A Redis server and an emulator for the tests of one file; recorded requests reset after each. */
export function useRedisAndEmulator(): { redis: () => RedisServer; emulator: () => Emulator } {
  let redis: RedisServer | undefined;
  let emulator: Emulator | undefined;
  beforeAll(async () => {
    redis = await RedisServer.start();
    emulator = await startEmulator();
  });
  afterEach(() => emulator?.clearRequests());
  afterAll(async () => {
    await redis?.stop();
    await emulator?.close();
  });
  const running = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('not started');
    return value;
  };
  return { redis: () => running(redis), emulator: () => running(emulator) };
}

/** Token requests the emulator received. */
export function tokenMints(emulator: Emulator): number {
  return emulator.requests.filter((r) => r.route === 'tokens').length;
}
