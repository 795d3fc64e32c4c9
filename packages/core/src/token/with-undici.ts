/**
 * The token engine with the undici transport as its default: what `@dashscope-token/core`
 * (the Node entry) exports.
 */

import { nodeTelemetry } from '../node/telemetry.js';
import { undiciTransport } from '../transport/undici.js';
import { tokenEngine } from './engine.js';

const engine = /* @__PURE__ */ tokenEngine((options) => undiciTransport(options), nodeTelemetry);

/**
 * Mints a temporary API key (`st-…`) from a permanent one.
 *
 * Options are validated before any request. Every failure is a `DashScopeError` (see the
 * mapping table in the README); the API key never appears in one.
 *
 * A successful answer must carry a non-empty `token` of header-safe characters (the `st-`
 * prefix is not required) and a numeric `expires_at` later than the server's `Date`
 * (or the local clock when there is none).
 *
 * The request goes through `opts.transport`, by default undici over one shared keep-alive
 * `Agent` (or `opts.dispatcher`).
 *
 * @example
 * const { token, expiresAt } = await mintToken({ apiKey: process.env.DASHSCOPE_API_KEY!, region: 'ap-southeast-1' });
 */
export const mintToken = engine.mintToken;

/**
 * {@link mintToken}, also returning the server's `Date` header and the local start/end times of
 * the request, from which a cache places the expiry on its own clock (clock-skew correction).
 */
export const mintTokenWithTiming = engine.mintTokenWithTiming;

/**
 * Creates a cache of temporary keys in front of {@link mintToken}.
 *
 * - A call gets a cached token when it has at least `minValiditySeconds` of life left (hit).
 *   Within the refresh window it still gets it at once, and one background mint replaces it.
 * - Otherwise (miss, `forceRefresh`) it waits for the one mint in flight for that key, or starts
 *   it: 10,000 concurrent cold calls make one request.
 * - When a mint fails but the cached token still satisfies the call, the call gets the cached
 *   token (the failure is counted and passed to `onRefreshError`); otherwise the error surfaces.
 * - An `InvalidApiKey` answer drops the key's token and is re-thrown without asking Model Studio
 *   for `negativeCacheSeconds`.
 * - Expiry is placed on the local clock using the server's `Date` header (1 s resolution,
 *   corrected conservatively) and is never later than the request's start plus the TTL.
 *
 * Entries are keyed by a SHA-256 hash of API key, base URL and TTL; the raw key is not stored.
 * Mints go through `options.transport`, by default undici (`dispatcher`, `connectTimeoutMs`).
 *
 * @throws DashScopeError `InvalidParameter` at once for invalid options (endpoint, TTL, windows).
 * @example
 * const tokens = createTokenProvider({ region: 'ap-southeast-1' }); // key from DASHSCOPE_API_KEY
 * const { token } = await tokens.getToken();
 */
export const createTokenProvider = engine.createTokenProvider;
