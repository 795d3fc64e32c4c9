/**
 * The one origin allow-list, used by CORS and by the WebSocket origin check: exact
 * `scheme://host[:port]` strings compared case-insensitively (a trailing `/` in the list ignored), or a
 * predicate (one that throws allows nothing).
 */

/** A compiled allow-list: whether an `Origin` header value is allowed. */
export type OriginCheck<Extra extends unknown[] = []> = (
  origin: string,
  ...extra: Extra
) => boolean;

function normalise(origin: string): string {
  return origin.trim().replace(/\/+$/, '').toLowerCase();
}

/**
 * Compiles `origins` once.
 * @returns the check, or `undefined` when `origins` is neither an array of strings nor a function
 */
export function compileOrigins<Extra extends unknown[] = []>(
  origins: readonly string[] | ((origin: string, ...extra: Extra) => boolean),
): OriginCheck<Extra> | undefined {
  if (typeof origins === 'function') {
    return (origin, ...extra) => {
      try {
        return origins(origin, ...extra) === true;
      } catch {
        return false;
      }
    };
  }
  if (!Array.isArray(origins) || origins.some((o) => typeof o !== 'string')) return undefined;
  const allowed = new Set(origins.map(normalise));
  return (origin: string, ..._extra: Extra) => allowed.has(origin.trim().toLowerCase());
}

/**
 * Whether `origin` (an `Origin` header) names the same host as `host` (the `Host` header),
 * whatever the scheme: behind a TLS-terminating proxy the server cannot tell which scheme the
 * browser used, and a browser page on the same host is the app's own. Default ports are
 * normalised (`https://a.example` matches `Host: a.example:443`).
 */
export function isSameOriginAsHost(origin: string, host: string | undefined): boolean {
  if (host === undefined || host === '') return false;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
  if (url.username || url.password || (url.pathname !== '/' && url.pathname !== '')) return false;
  const wanted = host.trim().toLowerCase();
  const originHost = url.host.toLowerCase();
  if (originHost === wanted) return true;
  if (url.port === '') {
    const defaultPort = url.protocol === 'https:' ? '443' : '80';
    return `${originHost}:${defaultPort}` === wanted;
  }
  return false;
}
