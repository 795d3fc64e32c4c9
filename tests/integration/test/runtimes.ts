/**
 * Runs a script under real Bun or real Deno (the binaries of the `bun` and `deno` npm packages,
 * dev dependencies of this package) as an HTTP server on 127.0.0.1. The script reports its
 * port on stdout as one line `READY <port>` (`fixtures/serve.mjs` does that for a Fetch
 * handler); the start is bounded in time, and `close()` kills the process.
 *
 * A Fetch handler plugs in as a script in `fixtures/`, configured through the environment (the
 * emulator runs in the test process, reached over 127.0.0.1):
 *
 *   // fixtures/fetch-handler.mjs
 *   import { createFetchHandler } from '@dashscope-token/fetch';
 *   import { serve } from './serve.mjs';
 *   serve(createFetchHandler().fetch); // key and upstream: DASHSCOPE_API_KEY, DASHSCOPE_BASE_URL
 *
 *   // a test
 *   const server = await startRuntimeServer('deno', 'fetch-handler.mjs', {
 *     env: { DASHSCOPE_API_KEY: key, DASHSCOPE_BASE_URL: emulator.url },
 *   });
 *
 * Bun calls `fetch(request, server)`, Deno `fetch(request, info)`: the handler's `fetch` must
 * not depend on `this` and must ignore a second argument it does not expect.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export type Runtime = 'bun' | 'deno';

/** Both runtimes, for `describe.each`. */
export const RUNTIMES: Runtime[] = ['bun', 'deno'];

/** The folder of the scripts served in these tests (`fixtures/`). */
export const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));

const require = createRequire(import.meta.url);

/**
 * The runtime's own executable, not the npm package's `bin` wrapper (a shell script for Bun, a
 * Node script for Deno), so that killing the process kills the server. The packages' install
 * scripts put the executables in place (`onlyBuiltDependencies` in pnpm-workspace.yaml).
 */
export function runtimeExecutable(runtime: Runtime): string {
  const dir = path.dirname(require.resolve(`${runtime}/package.json`));
  const file = runtime === 'bun' ? path.join(dir, 'bin', 'bun.exe') : path.join(dir, 'deno');
  if (!existsSync(file)) {
    throw new Error(`${file} is missing: the install script of the ${runtime} package did not run`);
  }
  return file;
}

/**
 * The command line that runs `script`. Deno gets the permissions a server needs (network, the
 * environment, reading files: node_modules); it resolves bare specifiers such as
 * `@dashscope-token/core` from node_modules because this package has a package.json.
 */
export function runtimeCommand(runtime: Runtime, script: string): [string, string[]] {
  const executable = runtimeExecutable(runtime);
  if (runtime === 'bun') return [executable, [script]];
  return [executable, ['run', '--allow-net', '--allow-env', '--allow-read', script]];
}

export interface RuntimeServer {
  runtime: Runtime;
  /** `http://127.0.0.1:PORT` */
  base: string;
  port: number;
  /** What the process wrote to stderr so far. */
  stderr(): string;
  /** Kills the process (SIGTERM, then SIGKILL after 3 s) and resolves once it has exited. */
  close(): Promise<void>;
}

export interface StartOptions {
  /** Extra environment variables (on top of this process's). @default {} */
  env?: Record<string, string>;
  /** How long the script may take to report its port. @default 20000 */
  startTimeoutMs?: number;
}

const READY = /^READY (\d+)$/m;

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

async function kill(child: ChildProcess): Promise<void> {
  const done = exited(child);
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await done;
  clearTimeout(timer);
}

/** Starts `script` (a path, or a file name in `fixtures/`) under `runtime`. */
export async function startRuntimeServer(
  runtime: Runtime,
  script: string,
  options: StartOptions = {},
): Promise<RuntimeServer> {
  const file = path.isAbsolute(script) ? script : path.join(FIXTURES, script);
  const [command, args] = runtimeCommand(runtime, file);
  const child = spawn(command, args, {
    cwd: path.dirname(FIXTURES),
    env: {
      ...process.env,
      NO_COLOR: '1',
      DO_NOT_TRACK: '1',
      DENO_NO_UPDATE_CHECK: '1',
      DENO_NO_PROMPT: '1',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const timeoutMs = options.startTimeoutMs ?? 20_000;
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const fail = (why: string) =>
        reject(new Error(`${runtime} ${path.basename(file)}: ${why}; stderr: ${stderr.trim()}`));
      const timer = setTimeout(() => fail(`no READY line within ${timeoutMs} ms`), timeoutMs);
      child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
        stdout += chunk;
        const match = READY.exec(stdout);
        if (match) {
          clearTimeout(timer);
          resolve(Number(match[1]));
        }
      });
      child.once('error', (error) => {
        clearTimeout(timer);
        fail(error.message);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        fail(`exited (${signal ?? code}) before reporting a port`);
      });
    });
    return {
      runtime,
      base: `http://127.0.0.1:${port}`,
      port,
      stderr: () => stderr,
      close: () => kill(child),
    };
  } catch (error) {
    await kill(child);
    throw error;
  }
}
