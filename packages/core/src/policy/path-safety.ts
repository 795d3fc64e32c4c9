/**
 * Path and query checks for proxied request targets. The proxy forwards the raw path unchanged
 * (it never decodes and re-encodes), so everything an upstream server or an intermediary might
 * normalise differently is refused instead:
 *
 * - `.` / `..` segments, encoded dots (`%2e`, any case) and double encoding (`%25…`);
 * - encoded slashes and backslashes (`%2f`, `%5c`), raw backslashes, `;` (path parameters,
 *   which some servers read as `..;`), `#`;
 * - empty segments (`//` anywhere);
 * - control characters, spaces and non-ASCII bytes, raw or encoded (`%00`, `%0a`, `%0d`, …);
 * - malformed percent-encoding (`%`, `%4`, `%zz`, invalid UTF-8 such as overlong `%c0%ae`);
 * - percent-encoded unreserved characters (RFC 3986 §2.3: `A-Z a-z 0-9 - . _ ~`, such as
 *   `tok%65ns`), in the path and in query parameter names: RFC 3986 makes `%65` and `e`
 *   equivalent, so a server that decodes them before routing would see another path or
 *   parameter than the one checked here. Clients never need to encode them.
 *
 * Model Studio paths are plain ASCII identifiers, so nothing legitimate is refused.
 * Each check is a single pass over the characters, without regular expressions.
 */

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

/** RFC 3986 §2.3 unreserved: `ALPHA / DIGIT / "-" / "." / "_" / "~"`. */
function isUnreserved(byte: number): boolean {
  if (byte >= 0x30 && byte <= 0x39) return true;
  const lower = byte | 0x20;
  if (lower >= 0x61 && lower <= 0x7a) return true;
  return byte === 0x2d || byte === 0x2e || byte === 0x5f || byte === 0x7e;
}

/**
 * Why `path` (no query; starts with `/`) is unsafe to forward, or `undefined` when it is safe.
 */
export function unsafePathReason(path: string): string | undefined {
  const length = path.length;
  if (length === 0 || path.charCodeAt(0) !== 0x2f) return 'path must start with /';
  let segmentStart = 1;
  for (let i = 1; i <= length; i++) {
    const c = i === length ? 0x2f : path.charCodeAt(i);
    if (c === 0x2f /* / */) {
      const segmentLength = i - segmentStart;
      if (segmentLength === 0 && i !== length) return 'empty path segment (//)';
      if (
        path.charCodeAt(segmentStart) === 0x2e &&
        (segmentLength === 1 || (segmentLength === 2 && path.charCodeAt(segmentStart + 1) === 0x2e))
      ) {
        return 'dot segment in path';
      }
      segmentStart = i + 1;
      continue;
    }
    if (c === 0x25 /* % */) {
      const hi = i + 1 < length ? hexValue(path.charCodeAt(i + 1)) : -1;
      const lo = i + 2 < length ? hexValue(path.charCodeAt(i + 2)) : -1;
      if (hi < 0 || lo < 0) return 'malformed percent-encoding in path';
      const byte = hi * 16 + lo;
      if (byte < 0x20 || byte === 0x7f) return 'encoded control character in path';
      if (byte === 0x2e || byte === 0x2f || byte === 0x5c || byte === 0x25 || byte === 0x3b) {
        return 'encoded dot, slash, backslash, semicolon or percent sign in path';
      }
      // Model Studio paths are ASCII. Encoded non-ASCII (even valid UTF-8, such as the
      // full-width dot %ef%bc%8e that NFKC-normalising servers read as `.`) is refused, and so
      // is invalid UTF-8 (overlong %c0%ae).
      if (byte >= 0x80) return 'encoded non-ASCII character in path';
      if (isUnreserved(byte)) return 'percent-encoded unreserved character in path';
      i += 2;
      continue;
    }
    if (c <= 0x20 || c >= 0x7f) return 'control character, space or non-ASCII character in path';
    if (c === 0x5c /* \ */) return 'backslash in path';
    if (c === 0x3b /* ; */) return 'semicolon in path';
    if (c === 0x23 /* # */) return 'fragment in request target';
  }
  return undefined;
}

/**
 * Why `query` (without the leading `?`) is unsafe to forward, or `undefined` when it is safe:
 * control characters, spaces or non-ASCII raw or encoded (`%00`, `%0a`, `%0d`), `#`, malformed
 * percent-encoding, or a parameter name with a percent-encoded unreserved character
 * (`mod%65l=`, which would escape a check for `model`). Values may encode anything printable.
 */
export function unsafeQueryReason(query: string): string | undefined {
  const length = query.length;
  let inName = true;
  for (let i = 0; i < length; i++) {
    const c = query.charCodeAt(i);
    if (c === 0x26 /* & */) inName = true;
    else if (c === 0x3d /* = */) inName = false;
    else if (c === 0x25) {
      const hi = i + 1 < length ? hexValue(query.charCodeAt(i + 1)) : -1;
      const lo = i + 2 < length ? hexValue(query.charCodeAt(i + 2)) : -1;
      if (hi < 0 || lo < 0) return 'malformed percent-encoding in query';
      const byte = hi * 16 + lo;
      if (byte < 0x20 || byte === 0x7f) return 'encoded control character in query';
      if (inName && isUnreserved(byte)) {
        return 'percent-encoded unreserved character in a query parameter name';
      }
      i += 2;
      continue;
    }
    if (c <= 0x20 || c >= 0x7f) return 'control character, space or non-ASCII character in query';
    if (c === 0x23) return 'fragment in request target';
  }
  return undefined;
}
