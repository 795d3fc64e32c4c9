import type { Exchange } from '../exchange.js';

/** Default lifetime of a temporary key, seconds. */
export const DEFAULT_EXPIRE_IN_SECONDS = 60;
/** Longest lifetime of a temporary key, seconds. */
export const MAX_EXPIRE_IN_SECONDS = 1800;

/**
 * `POST /api/v1/tokens?expire_in_seconds=N`: mints a temporary key (`st-…`) with a permanent
 * key. `expire_in_seconds` defaults to 60 and must be an integer 1..1800 given at most once.
 */
export function tokensRoute(ex: Exchange): void {
  const auth = ex.authenticate(ex.state.allowTemporaryKeyMinting);
  if (!auth) return;
  const values = ex.query.getAll('expire_in_seconds');
  let ttl = DEFAULT_EXPIRE_IN_SECONDS;
  if (values.length > 1) {
    ex.sendError('invalid-parameter', 'expire_in_seconds must be given at most once.');
    return;
  }
  if (values.length === 1) {
    const raw = values[0] as string;
    const n = /^[0-9]{1,5}$/.test(raw) ? Number(raw) : Number.NaN;
    if (!Number.isInteger(n) || n < 1 || n > MAX_EXPIRE_IN_SECONDS) {
      ex.sendError(
        'invalid-parameter',
        `expire_in_seconds must be an integer between 1 and ${MAX_EXPIRE_IN_SECONDS}.`,
      );
      return;
    }
    ttl = n;
  }
  const now = ex.state.clock.now();
  const expiresAt = Math.floor(now) + ttl;
  const token = ex.state.keys.mint(expiresAt, now, auth.workspace);
  ex.state.tokensIssued += 1;
  ex.sendJson(200, { token, expires_at: expiresAt });
}
