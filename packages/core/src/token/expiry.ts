/**
 * Where a token's life ends on the local clock: the server's `Date` header corrects clock skew
 * (conservatively, for its 1 s resolution), never later than the request's start plus the TTL.
 */
import type { TemporaryToken } from '../types.js';
import type { TimedToken } from './mint.js';

/** A cached token and where its life ends on the local clock. */
export interface Entry {
  /** Frozen: handed to every caller. */
  readonly token: TemporaryToken;
  /** Already resolved with `token`: what a cache hit returns (no allocation). */
  readonly promise: Promise<TemporaryToken>;
  /** Local ms after which the token must be treated as expired (skew-corrected, conservative). */
  readonly expiresAt: number;
  /** Local ms before which no background refresh starts (half the token's life). */
  readonly refreshFrom: number;
  /** Read from the shared store (minted by another instance). */
  readonly shared?: boolean;
}

/** The cache entry of a freshly minted token, its expiry placed on the local clock. */
export function toEntry(timed: TimedToken, ttlMs: number): Entry {
  const { token, serverDate, requestStartedAt, responseReceivedAt } = timed;
  // The server stamped `Date` somewhere between our request start and its receipt, and `Date`
  // is truncated to the second: assume the largest server-ahead offset that fits.
  const corrected =
    serverDate === undefined
      ? token.expiresAt * 1000
      : token.expiresAt * 1000 - (serverDate + 1000 - requestStartedAt);
  const expiresAt = Math.min(requestStartedAt + ttlMs, corrected);
  const frozen: TemporaryToken = Object.freeze({
    token: token.token,
    expiresAt: token.expiresAt,
  });
  return {
    token: frozen,
    promise: Promise.resolve(frozen),
    expiresAt,
    refreshFrom: responseReceivedAt + (expiresAt - responseReceivedAt) / 2,
  };
}
