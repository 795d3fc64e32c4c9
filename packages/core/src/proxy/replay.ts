import type { TemporaryToken, TokenProvider } from '../types.js';

/**
 * Replay after an upstream 401.
 *
 * A 401 from Model Studio to an injected temporary key means that key is no longer accepted
 * (expired early, clock skew, revoked permanent key). The proxy then drops the key from the
 * cache and sends the request once more with a fresh one, when it can send the same bytes
 * again: no body, or a body held in memory (parsed by a body parser, read for `allowModels`, or
 * small enough: `Content-Length` ≤ `proxy.replayBufferBytes`, 64 KiB by default). A streamed
 * body has been consumed by the first attempt, so its 401 is passed through unchanged, as is a
 * 401 to the replay.
 */

/** Whether a request body can be sent a second time. */
export function isReplayable(body: unknown): boolean {
  return body === null || Buffer.isBuffer(body);
}

/**
 * A key to replay with after `rejected` got a 401. When another request already replaced the
 * cached key, that one is used without minting again; otherwise the cached key is invalidated
 * and a new one minted (concurrent callers share that mint).
 */
export async function tokenAfterUnauthorized(
  provider: TokenProvider,
  apiKey: string,
  rejected: string,
  minValiditySeconds: number,
): Promise<TemporaryToken> {
  const current = await provider.getToken({ apiKey, minValiditySeconds });
  if (current.token !== rejected) return current;
  provider.invalidate(apiKey);
  return provider.getToken({ apiKey, minValiditySeconds });
}
