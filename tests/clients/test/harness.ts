/**
 * The proxy (`createDashScopeHandler` over node:http, its `upgrade` wired) in front of one
 * emulator, as an app would run it. Clients talk to the proxy under `/dashscope` and hold no
 * key: the proxy injects a temporary one minted with the emulator's permanent key.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createDashScopeHandler } from '@dashscope-token/core';
import {
  DEFAULT_EMULATOR_API_KEY,
  type Emulator,
  type EmulatorOptions,
  startEmulator,
} from '@dashscope-token/emulator';

/** What a client needs: the proxy's compatible-mode base URL, its native base, its WebSocket base. */
export interface Stack {
  emulator: Emulator;
  /** `http://127.0.0.1:<port>/dashscope` */
  proxyBase: string;
  /** `…/dashscope/compatible-mode/v1`, the OpenAI clients' `baseURL`. */
  compatibleBase: string;
  /** `ws://127.0.0.1:<port>/dashscope` */
  wsBase: string;
  close(): Promise<void>;
}

/** A key the clients are given: the proxy ignores it and injects its own. */
export const CLIENT_KEY = 'client-holds-no-key';

export async function startStack(options: EmulatorOptions = {}): Promise<Stack> {
  const emulator = await startEmulator({ chunkDelayMs: 1, ...options });
  const handler = createDashScopeHandler({
    apiKey: DEFAULT_EMULATOR_API_KEY,
    baseUrl: emulator.url,
    // The clients connect without credentials of their own: this stack accepts that.
    websocket: { allowUnauthenticated: true },
  });
  const server: Server = createServer(handler);
  server.on('upgrade', handler.upgrade);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const proxyBase = `http://127.0.0.1:${port}/dashscope`;
  return {
    emulator,
    proxyBase,
    compatibleBase: `${proxyBase}/compatible-mode/v1`,
    wsBase: `ws://127.0.0.1:${port}/dashscope`,
    async close() {
      await handler.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await emulator.close();
    },
  };
}
