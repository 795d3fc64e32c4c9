/**
 * Percent-encoding as Alibaba Cloud's signature V3 and its official SDKs do it (RFC 3986:
 * everything but `A-Z a-z 0-9 - _ . ~` is encoded, spaces as `%20`).
 */

/** Encodes a query parameter name or value: `encodeURIComponent` plus `!'()*`. */
export function percentEncode(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/**
 * Encodes one path segment the way the official SDK builds ROA paths
 * (`encodeURIComponent`, then `*` as `%2A`).
 */
export function encodePathSegment(segment: string): string {
  return encodeURIComponent(segment).replace(/\*/g, '%2A');
}

/**
 * The canonical URI of an already-encoded path: `+` as `%20`, `*` as `%2A`, `%7E` as `~`,
 * and `/` for an empty path.
 */
export function canonicalUri(path: string): string {
  if (path === '') return '/';
  return path.replace(/\+/g, '%20').replace(/\*/g, '%2A').replace(/%7E/gi, '~');
}

/**
 * The canonical query string: parameters sorted by name, names and values percent-encoded,
 * `name=` for an empty or absent value, joined with `&`. It is also the query sent on the wire.
 */
export function canonicalQuery(query: Readonly<Record<string, string | undefined>> = {}): string {
  return Object.keys(query)
    .map((name) => [percentEncode(name), percentEncode(query[name] ?? '')] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, value]) => `${name}=${value}`)
    .join('&');
}
