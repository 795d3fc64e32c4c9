/**
 * "Nothing left open": after a test file, the handler has no request in progress, its upstream
 * pool has no request running or waiting and no socket once closed, our server has no client
 * connection, and the emulator (Model Studio) has no request still open and no connection but
 * the shared mint agent's idle keep-alive sockets.
 */
import type { Server } from 'node:http';
import type { Emulator } from '@dashscope-token/emulator';
import type { DashScopeHandler } from '../../src/index.js';
import { sharedDispatcher } from '../../src/transport/undici.js';

async function settle(
  check: () => string | undefined,
  timeoutMs: number,
): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const problem = check();
    if (problem === undefined || Date.now() > deadline) return problem;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function connections(server: Server): Promise<number> {
  return new Promise((resolve, reject) =>
    server.getConnections((error, count) => (error ? reject(error) : resolve(count))),
  );
}

/** Sockets the process-wide mint agent holds to `origin` (idle keep-alive), and its requests. */
export function mintAgentStats(origin: string): { connected: number; busy: number } {
  const stats = (sharedDispatcher() as unknown as { stats: Record<string, Record<string, number>> })
    .stats[origin];
  if (stats === undefined) return { connected: 0, busy: 0 };
  return {
    connected: stats.connected ?? 0,
    busy: (stats.pending ?? 0) + (stats.running ?? 0) + (stats.queued ?? 0),
  };
}

export interface QuiescenceTarget {
  emulator: Emulator;
  handler: DashScopeHandler;
  /** Our server; its client connections are expected to be gone already (not force-closed). */
  server?: Server;
}

/**
 * Closes the handler and returns what was still open (empty when nothing was). Waits up to
 * `timeoutMs` for each condition, since sockets close asynchronously.
 */
export async function closeAndCheckQuiescent(
  { emulator, handler, server }: QuiescenceTarget,
  timeoutMs = 3000,
): Promise<string[]> {
  const problems: string[] = [];
  const note = (problem: string | undefined) => {
    if (problem !== undefined) problems.push(problem);
  };
  note(
    await settle(() => {
      const s = handler.stats();
      return s.activeRequests === 0
        ? undefined
        : `handler: ${s.activeRequests} requests in progress`;
    }, timeoutMs),
  );
  note(
    await settle(() => {
      const pool = handler.stats().upstream;
      const busy = pool === undefined ? 0 : pool.pending + pool.running + pool.queued;
      return busy === 0 ? undefined : `upstream pool: ${JSON.stringify(pool)}`;
    }, timeoutMs),
  );
  note(
    await settle(() => {
      const open = emulator.requests.filter(
        (r) => r.status === undefined && r.closedAt === undefined,
      );
      return open.length === 0
        ? undefined
        : `emulator: ${open.length} requests still open (${open.map((r) => r.path).join(', ')})`;
    }, timeoutMs),
  );
  if (server !== undefined) {
    let count = await connections(server);
    const deadline = Date.now() + timeoutMs;
    while (count > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      count = await connections(server);
    }
    if (count > 0) problems.push(`our server: ${count} client connections still open`);
  }
  const closed = await Promise.race([
    handler.close().then(() => true),
    new Promise<false>((resolve) => setTimeout(() => resolve(false), timeoutMs).unref()),
  ]);
  if (!closed) problems.push(`handler.close() did not finish within ${timeoutMs} ms`);
  note(
    await settle(() => {
      const pool = handler.stats().upstream;
      return pool === undefined || pool.connected === 0
        ? undefined
        : `upstream pool after close: ${pool.connected} sockets`;
    }, timeoutMs),
  );
  note(
    await settle(() => {
      const mint = mintAgentStats(emulator.url);
      const open = emulator.stats().openConnections;
      if (mint.busy > 0) return `mint agent: ${mint.busy} requests in progress`;
      return open <= mint.connected
        ? undefined
        : `emulator: ${open} connections open, the mint agent holds ${mint.connected}`;
    }, timeoutMs),
  );
  return problems;
}
