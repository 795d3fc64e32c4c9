/**
 * The token engine with the global-fetch transport as its default: what
 * `@dashscope-token/core/neutral` exports (Bun, Deno, Workers, edge functions, browsers).
 */
import { fetchTransport } from '../transport/fetch.js';
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

const viaFetch: DefaultTransport = () => fetchTransport();

/**
 * Mints a temporary API key (`st-…`) from a permanent one, as `mintToken` of
 * `@dashscope-token/core` does, through `opts.transport`, by default the global `fetch`
 * (`dispatcher` and `connectTimeoutMs` are not used).
 */
export async function mintToken(opts: MintTokenOptions): Promise<TemporaryToken> {
  return (await mintWithTransport(opts, viaFetch)).token;
}

/** {@link mintToken}, also returning the server's `Date` header and the local request timings. */
export function mintTokenWithTiming(opts: MintWithTimingOptions): Promise<TimedToken> {
  return mintWithTransport(opts, viaFetch);
}

/**
 * Creates a cache of temporary keys in front of {@link mintToken}, with the behaviour of
 * `createTokenProvider` of `@dashscope-token/core` (single-flight, refresh-ahead, skew
 * correction, stale-on-error, negative caching). Mints go through `options.transport`, by
 * default the global `fetch`.
 *
 * @throws DashScopeError `InvalidParameter` at once for invalid options (endpoint, TTL, windows).
 * @example
 * const tokens = createTokenProvider({ apiKey: env.DASHSCOPE_API_KEY, region: 'ap-southeast-1' });
 * const { token } = await tokens.getToken();
 */
export function createTokenProvider(options: TokenProviderOptions = {}): TokenProvider {
  return composeTokenProvider(options, viaFetch);
}
