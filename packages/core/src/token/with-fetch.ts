/**
 * The token engine with the global-fetch transport as its default: what
 * `@dashscope-token/core/neutral` exports (Bun, Deno, Workers, edge functions, browsers).
 */

import { runtimeTelemetry } from '../policy/telemetry.js';
import { fetchTransport } from '../transport/fetch.js';
import { tokenEngine } from './engine.js';

const engine = /* @__PURE__ */ tokenEngine(() => fetchTransport(), runtimeTelemetry());

/**
 * Mints a temporary API key (`st-…`) from a permanent one, as `mintToken` of
 * `@dashscope-token/core` does, through `opts.transport`, by default the global `fetch`
 * (`dispatcher` and `connectTimeoutMs` are not used).
 */
export const mintToken = engine.mintToken;

/** {@link mintToken}, also returning the server's `Date` header and the local request timings. */
export const mintTokenWithTiming = engine.mintTokenWithTiming;

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
export const createTokenProvider = engine.createTokenProvider;
