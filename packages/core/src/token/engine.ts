/**
 * The token engine's public functions bound to a default transport: each entry point binds its
 * runtime's (undici for `@dashscope-token/core`, fetch for `@dashscope-token/core/neutral`).
 */
import type { Telemetry } from '../policy/telemetry.js';
import type {
  MintTokenOptions,
  TemporaryToken,
  TokenProvider,
  TokenProviderOptions,
} from '../types.js';
import {
  type DefaultTransport,
  type MintWithTimingOptions,
  mintWithTransport,
  type TimedToken,
} from './mint.js';
import { composeTokenProvider } from './provider.js';

/** `mintToken`, `mintTokenWithTiming` and `createTokenProvider` of one entry point. */
export interface TokenEngine {
  mintToken(opts: MintTokenOptions): Promise<TemporaryToken>;
  mintTokenWithTiming(opts: MintWithTimingOptions): Promise<TimedToken>;
  createTokenProvider(options?: TokenProviderOptions): TokenProvider;
}

/**
 * The engine whose mints go through `opts.transport`, else through `defaultTransport(opts)`;
 * its providers publish on `telemetry`'s channels.
 */
export function tokenEngine(
  defaultTransport: DefaultTransport,
  telemetry?: Telemetry,
): TokenEngine {
  return {
    mintToken: async (opts) => (await mintWithTransport(opts, defaultTransport)).token,
    mintTokenWithTiming: (opts) => mintWithTransport(opts, defaultTransport),
    createTokenProvider: (options = {}) =>
      composeTokenProvider(options, defaultTransport, telemetry),
  };
}
