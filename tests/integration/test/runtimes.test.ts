/**
 * The Bun and Deno harness (`runtimes.ts`) on its own: real `bun` and real `deno` serve a
 * script through `Bun.serve({ fetch })` / `Deno.serve(fetch)` (`fixtures/serve.mjs`), resolve
 * workspace packages from node_modules, and are gone after `close()`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FIXTURES, RUNTIMES, type RuntimeServer, startRuntimeServer } from './runtimes.js';

/** Processes (pids) whose command line names `fixture` of this package. */
function processesRunning(fixture: string): number[] {
  const file = path.join(FIXTURES, fixture);
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(file);
      } catch {
        return false; // gone meanwhile
      }
    })
    .map(Number);
}

function refusesConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

describe.each(RUNTIMES)('%s', (runtime) => {
  let server: RuntimeServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('serves a Fetch handler on the real runtime', async () => {
    server = await startRuntimeServer(runtime, 'hello.mjs');
    const res = await fetch(`${server.base}/some/path`, { method: 'POST', body: 'ping' });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, string>;
    expect(body).toMatchObject({ method: 'POST', path: '/some/path', body: 'ping' });
    expect(body.runtime).toMatch(new RegExp(`^${runtime} \\d+\\.\\d+\\.\\d+`));
  });

  it('resolves the workspace packages from node_modules', async () => {
    server = await startRuntimeServer(runtime, 'imports-workspace.mjs');
    const body = await (await fetch(server.base)).json();
    expect(body).toMatchObject({ createTokenProvider: 'function', DashScopeError: 'function' });
  });

  it('kills the server on close', async () => {
    server = await startRuntimeServer(runtime, 'hello.mjs');
    const { port } = server;
    expect(processesRunning('hello.mjs')).toHaveLength(1);
    await server.close();
    server = undefined;
    expect(processesRunning('hello.mjs')).toEqual([]);
    expect(await refusesConnections(port)).toBe(true);
  });

  it('fails the start of a script that never reports its port, and kills it', async () => {
    await expect(
      startRuntimeServer(runtime, 'silent.mjs', { startTimeoutMs: 1500 }),
    ).rejects.toThrow(/no READY line within 1500 ms/);
    expect(processesRunning('silent.mjs')).toEqual([]);
  });

  it("fails the start of a script that exits, with the script's stderr", async () => {
    await expect(startRuntimeServer(runtime, 'fails.mjs')).rejects.toThrow(
      /exited .*before reporting a port.*fixture failed on purpose/s,
    );
  });
});
