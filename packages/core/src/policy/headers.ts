/**
 * Header filtering, both ways: what of the client's request reaches Model Studio, and what of
 * Model Studio's answer reaches the client. Runtime-neutral (flat `[name, value, …]` lists and
 * plain records).
 */

/** Headers of an upstream answer: lower-case names (undici's object, or a `Headers` copied). */
export type UpstreamHeaders = Record<string, string | string[] | undefined>;

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1): about one connection, never passed on, in either
 * direction, and never allowed by a CORS preflight.
 */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

function withHopByHop(names: readonly string[]): ReadonlySet<string> {
  return new Set([...HOP_BY_HOP, ...names]);
}

/**
 * Request headers the proxy reads for itself and never passes on as received:
 * - credentials of the client (`authorization` is replaced by the injected key, `cookie`,
 *   `proxy-authorization`);
 * - hop-by-hop headers (RFC 9110 §7.6.1) and the ones `connection` lists;
 * - `host` (upstream's is set from the configured origin), `content-length` (set from the body
 *   actually sent), `expect` (undici does not support it), `accept-encoding` (set by the proxy).
 */
const DROPPED_REQUEST_HEADERS: ReadonlySet<string> = withHopByHop([
  'authorization',
  'cookie',
  'proxy-authorization',
  'http2-settings',
  'host',
  'content-length',
  'expect',
  'accept-encoding',
]);

/**
 * Request headers that are never forwarded, not even when `proxy.forwardHeaders` names them:
 * the ones above, and those an upstream server or intermediary may read as another target,
 * method or credential (`X-Original-URL`, `X-Rewrite-URL`, method overrides, `X-Api-Key`).
 */
export const NEVER_FORWARDED_REQUEST_HEADERS: ReadonlySet<string> = new Set([
  ...DROPPED_REQUEST_HEADERS,
  'x-original-url',
  'x-rewrite-url',
  'x-http-method-override',
  'x-http-method',
  'x-method-override',
  'x-api-key',
  'api-key',
]);

/**
 * Request headers forwarded to Model Studio (an allow-list; everything else is dropped):
 * content negotiation and description of the body, the client's `User-Agent`, request ids, and
 * the headers Model Studio and the OpenAI-compatible SDKs send (the `x-dashscope-`, `openai-`
 * and `x-stainless-` prefixes are checked separately). `proxy.forwardHeaders` adds names.
 */
const FORWARDED_REQUEST_HEADERS: ReadonlySet<string> = new Set([
  'accept',
  'accept-language',
  'cache-control',
  'content-type',
  'content-encoding',
  'content-language',
  'user-agent',
  'idempotency-key',
  'x-request-id',
  'x-client-request-id',
]);

/** Prefixes of forwarded request header names (Model Studio's own, OpenAI SDKs'). */
function hasForwardedPrefix(name: string): boolean {
  return (
    name.startsWith('x-dashscope-') || name.startsWith('openai-') || name.startsWith('x-stainless-')
  );
}

/** Dropped unless `forwardClientIdentity` (the `x-forwarded-` prefix is checked separately). */
const IDENTITY_REQUEST_HEADERS: ReadonlySet<string> = new Set([
  'forwarded',
  'x-real-ip',
  'x-client-ip',
  'true-client-ip',
  'cf-connecting-ip',
  'via',
  'origin',
  'referer',
]);

/**
 * The `proxy.forwardHeaders` option checked: lower-cased names, none of them
 * {@link NEVER_FORWARDED_REQUEST_HEADERS}.
 * @returns the names, or the first name that is refused
 */
export function forwardedHeaderNames(
  names: readonly string[] | undefined,
): ReadonlySet<string> | { refused: string } {
  const out = new Set<string>();
  for (const name of names ?? []) {
    const lower = String(name).trim().toLowerCase();
    if (NEVER_FORWARDED_REQUEST_HEADERS.has(lower) || !/^[!#$%&'*+.^`|~\w-]+$/.test(lower)) {
      return { refused: String(name) };
    }
    out.add(lower);
  }
  return out;
}

/**
 * Response headers that never reach the client: hop-by-hop headers (and the ones `connection`
 * lists), `set-cookie` (Model Studio's cookies are not the app's), CORS headers (the handler's
 * own `cors` option decides), and headers that would describe Model Studio's host as the app's
 * (`alt-svc`, `strict-transport-security`), and `x-accel-buffering` (set by the proxy: `no`
 * on event streams).
 */
const DROPPED_RESPONSE_HEADERS: ReadonlySet<string> = withHopByHop([
  'proxy-authenticate',
  'set-cookie',
  'set-cookie2',
  'alt-svc',
  'strict-transport-security',
  // An instruction to the reverse proxy in front of Model Studio; ours is set by the proxy.
  'x-accel-buffering',
]);

/** Connection options that are not header names. */
const CONNECTION_OPTIONS: ReadonlySet<string> = new Set(['close', 'keep-alive', 'upgrade']);

/** What the proxy learned from the client's request headers in one pass. */
export interface ClientRequestHeaders {
  /** Headers to send upstream, flat `[name, value, …]`, without credentials or framing headers. */
  headers: string[];
  /** Declared `content-length`, or `undefined`; `-1` when present but invalid. */
  contentLength: number | undefined;
  /** `transfer-encoding` was present (a streamed body of unknown length). */
  chunked: boolean;
  /** `x-dashscope-sse: enable` or `accept` includes `text/event-stream`. */
  streaming: boolean;
  /** `content-type`, lower-cased, if any. */
  contentType: string | undefined;
  /** The client's `accept-encoding`, if any. */
  acceptEncoding: string | undefined;
  /** `origin`, if any. */
  origin: string | undefined;
}

function parseContentLength(value: string): number {
  if (value.length === 0 || value.length > 15) return -1;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
  }
  return Number(value);
}

const NONE: string[] = [];

/** Names listed in a `connection` header that are not connection options. */
function connectionListed(value: string): string[] {
  // The usual values list no header: answer without splitting (hot path, every request).
  if (value === 'keep-alive' || value === 'close' || value === 'Keep-Alive' || value === 'Close') {
    return NONE;
  }
  const names: string[] = [];
  for (const token of value.split(',')) {
    const name = token.trim().toLowerCase();
    if (name !== '' && !CONNECTION_OPTIONS.has(name)) names.push(name);
  }
  return names;
}

const NO_NAMES: ReadonlySet<string> = new Set();

/**
 * Filters the client's raw headers (`req.rawHeaders`) for upstream, in one pass: only the
 * allow-listed headers (`x-dashscope-*`, `openai-*`, `x-stainless-*`, `content-type`, `accept`,
 * `user-agent`, …, plus `forwardHeaders`) go on, as sent.
 */
export function readClientHeaders(
  rawHeaders: readonly string[],
  forwardClientIdentity: boolean,
  forwardHeaders: ReadonlySet<string> = NO_NAMES,
): ClientRequestHeaders {
  const headers: string[] = [];
  let contentLength: number | undefined;
  let chunked = false;
  let streaming = false;
  let contentType: string | undefined;
  let acceptEncoding: string | undefined;
  let origin: string | undefined;
  let listed: string[] | undefined;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const rawName = rawHeaders[i]!;
    const value = rawHeaders[i + 1]!;
    const name = rawName.toLowerCase();
    if (DROPPED_REQUEST_HEADERS.has(name)) {
      if (name === 'content-length') {
        const parsed = parseContentLength(value);
        contentLength = contentLength === undefined || contentLength === parsed ? parsed : -1;
      } else if (name === 'transfer-encoding') chunked = true;
      else if (name === 'accept-encoding') acceptEncoding = value;
      else if (name === 'connection') {
        const names = connectionListed(value);
        if (names.length > 0) listed = listed ? listed.concat(names) : names;
      }
      continue;
    }
    if (IDENTITY_REQUEST_HEADERS.has(name) || name.startsWith('x-forwarded-')) {
      if (name === 'origin') origin = value;
      if (!forwardClientIdentity) continue;
    } else if (name === 'content-type') {
      contentType = value.toLowerCase();
    } else if (name === 'x-dashscope-sse') {
      if (value.trim().toLowerCase() === 'enable') streaming = true;
    } else if (name === 'accept') {
      if (value.includes('text/event-stream')) streaming = true;
    } else if (
      !FORWARDED_REQUEST_HEADERS.has(name) &&
      !hasForwardedPrefix(name) &&
      !forwardHeaders.has(name)
    ) {
      continue;
    }
    headers.push(rawName, value);
  }
  if (listed !== undefined) {
    const drop = new Set(listed);
    const kept: string[] = [];
    for (let i = 0; i < headers.length; i += 2) {
      if (!drop.has(headers[i]!.toLowerCase())) kept.push(headers[i]!, headers[i + 1]!);
    }
    return {
      headers: kept,
      contentLength,
      chunked,
      streaming,
      contentType,
      acceptEncoding,
      origin,
    };
  }
  return { headers, contentLength, chunked, streaming, contentType, acceptEncoding, origin };
}

/** Upstream response headers filtered for the client, flat `[name, value, …]` for `writeHead`. */
export interface ClientResponseHeaders {
  headers: string[];
  /** `content-type` is `text/event-stream`. */
  eventStream: boolean;
}

/** Filters upstream response headers (undici's parsed, lower-cased object) for the client. */
export function filterResponseHeaders(upstream: UpstreamHeaders): ClientResponseHeaders {
  const headers: string[] = [];
  let eventStream = false;
  const connection = upstream['connection'];
  let listed: Set<string> | undefined;
  if (typeof connection === 'string') {
    const names = connectionListed(connection);
    if (names.length > 0) listed = new Set(names);
  }
  for (const name in upstream) {
    if (DROPPED_RESPONSE_HEADERS.has(name) || name.startsWith('access-control-')) continue;
    if (listed?.has(name)) continue;
    const value = upstream[name];
    if (value === undefined) continue;
    if (typeof value === 'string') {
      if (name === 'content-type' && value.startsWith('text/event-stream')) eventStream = true;
      headers.push(name, value);
    } else {
      for (const v of value) headers.push(name, v);
    }
  }
  return { headers, eventStream };
}

/** `existing` (a `Vary` value, maybe absent) with `added` appended; `*` stays `*`. */
export function mergeVary(existing: string | undefined, added: string): string {
  if (existing === undefined || existing === '') return added;
  if (existing === '*') return existing;
  return `${existing}, ${added}`;
}
