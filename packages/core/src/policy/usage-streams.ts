/**
 * `meterStreams`: OpenAI-compatible streams whose client did not ask for usage get it asked for
 * upstream (`stream_options.include_usage: true` added to the forwarded body), and what that
 * changes in the stream is taken out again before the client sees it: the usage-only chunk
 * (`"choices": []` with `usage`) and the `"usage": null` every other chunk then carries. The
 * client receives the stream it would have received without metering. Runtime-neutral.
 */
import { concatBytes, indexOfBytes } from './usage-reader.js';

/** The OpenAI-compatible endpoints whose streams `meterStreams` asks usage for. */
const STREAM_USAGE_PATHS = [
  '/compatible-mode/v1/chat/completions',
  '/compatible-mode/v1/completions',
];

/**
 * Whether `meterStreams` may rewrite the body of a request to `target` (path + query, relative
 * to the mount): a POST to an OpenAI-compatible chat or text completion endpoint. Its body must
 * then be read whole (bounded by `proxy.maxBodyBytes` and `proxy.bodyReadTimeoutMs`).
 */
export function streamUsageCandidate(method: string, target: string): boolean {
  if (method !== 'POST') return false;
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  return STREAM_USAGE_PATHS.includes(path.endsWith('/') ? path.slice(0, -1) : path);
}

const encoder = new TextEncoder();

/**
 * The body to forward instead of `json` (the request's parsed body) so that upstream reports
 * the usage of the stream: `undefined` when the request does not stream or asks for usage
 * already (nothing to change).
 */
export function withStreamUsage(json: unknown): Uint8Array | undefined {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return undefined;
  const body = json as { stream?: unknown; stream_options?: unknown };
  if (body.stream !== true) return undefined;
  const options = body.stream_options;
  const own =
    typeof options === 'object' && options !== null && !Array.isArray(options)
      ? (options as Record<string, unknown>)
      : {};
  if (own.include_usage === true) return undefined;
  return encoder.encode(
    JSON.stringify({ ...body, stream_options: { ...own, include_usage: true } }),
  );
}

/**
 * Longest SSE event held back while it is unfinished (1 MiB); a longer one is let through as
 * it comes (and is not stripped).
 */
export const MAX_HELD_EVENT_BYTES = 1024 * 1024;

const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const TAB = 0x09;
const COLON = 0x3a;
const COMMA = 0x2c;
const OPEN_BRACE = 0x7b;
const N = 0x6e;
const EMPTY = new Uint8Array(0);
/** `"usage"` */
const USAGE_KEY = new Uint8Array([0x22, 0x75, 0x73, 0x61, 0x67, 0x65, 0x22]);
/** `null` */
const NULL = new Uint8Array([0x6e, 0x75, 0x6c, 0x6c]);
const utf8 = new TextDecoder();

function isSpace(byte: number | undefined): boolean {
  return byte === SPACE || byte === TAB || byte === CR || byte === LF;
}

/** The end of the last complete event in `bytes` (just after its blank line), or 0. */
function lastEventEnd(bytes: Uint8Array): number {
  for (let i = bytes.length - 1; i > 0; i--) {
    if (bytes[i] !== LF) continue;
    // `\n\n` or `\n\r\n`
    if (bytes[i - 1] === LF) return i + 1;
    if (bytes[i - 1] === CR && bytes[i - 2] === LF) return i + 1;
  }
  return 0;
}

/** The next event's end in `bytes` from `start` (after its blank line), or `bytes.length`. */
function nextEventEnd(bytes: Uint8Array, start: number): number {
  for (let i = bytes.indexOf(LF, start); i >= 0; i = bytes.indexOf(LF, i + 1)) {
    if (bytes[i + 1] === LF) return i + 2;
    if (bytes[i + 1] === CR && bytes[i + 2] === LF) return i + 3;
  }
  return bytes.length;
}

/** Whether the event is the usage-only chunk include_usage adds (`choices: []` + `usage`). */
function isUsageOnly(event: Uint8Array): boolean {
  const text = utf8.decode(event).trim();
  if (!text.startsWith('data:')) return false;
  try {
    const chunk = JSON.parse(text.slice(5)) as { choices?: unknown; usage?: unknown };
    return (
      Array.isArray(chunk.choices) &&
      chunk.choices.length === 0 &&
      typeof chunk.usage === 'object' &&
      chunk.usage !== null
    );
  } catch {
    return false;
  }
}

/**
 * One event as the client gets it: `undefined` for the usage-only chunk, else the event without
 * its top-level `"usage": null` member (the event itself when it has none).
 */
function clientEvent(event: Uint8Array): Uint8Array | undefined {
  const key = indexOfBytes(event, USAGE_KEY);
  if (key < 0) return event;
  let at = key + USAGE_KEY.length;
  while (isSpace(event[at])) at++;
  if (event[at] !== COLON) return event;
  at++;
  while (isSpace(event[at])) at++;
  if (event[at] === OPEN_BRACE) return isUsageOnly(event) ? undefined : event;
  if (event[at] !== N || indexOfBytes(event, NULL, at) !== at) return event;
  let end = at + NULL.length;
  // `,"usage":null` or `"usage":null,` (the member and one comma go).
  let before = key - 1;
  while (isSpace(event[before])) before--;
  let start = key;
  if (event[before] === COMMA) start = before;
  else {
    let after = end;
    while (isSpace(event[after])) after++;
    if (event[after] !== COMMA) return event;
    end = after + 1;
  }
  const out = new Uint8Array(event.length - (end - start));
  out.set(event.subarray(0, start), 0);
  out.set(event.subarray(end), start);
  return out;
}

/**
 * The client's side of a stream `meterStreams` asked usage for: {@link push} each upstream
 * chunk, send what it returns (possibly nothing), and {@link end} at the end. Complete events
 * pass at once (rewritten as described in the module); only an event split over chunks is held
 * back until its end, never more than one, and never longer than {@link MAX_HELD_EVENT_BYTES}.
 */
export class UsageChunkStrip {
  #held: Uint8Array = EMPTY;

  /** What to send the client for `chunk`. */
  push(chunk: Uint8Array): Uint8Array {
    const bytes = this.#held.length > 0 ? concatBytes([this.#held, chunk]) : chunk;
    const complete = lastEventEnd(bytes);
    if (complete < bytes.length) {
      const rest = bytes.subarray(complete);
      if (rest.length > MAX_HELD_EVENT_BYTES) {
        // Too long to hold: let it through as it comes.
        this.#held = EMPTY;
        return complete === 0
          ? bytes
          : concatBytes([this.#events(bytes.subarray(0, complete)), rest]);
      }
      // Copied: the relay may reuse the chunk's memory once it is sent.
      this.#held = rest.slice();
    } else {
      this.#held = EMPTY;
    }
    if (complete === 0) return EMPTY;
    return this.#events(bytes.subarray(0, complete));
  }

  /** What is left to send at the end of the stream (an unfinished last event, as it came). */
  end(): Uint8Array {
    const held = this.#held;
    this.#held = EMPTY;
    return held.length === 0 ? held : (clientEvent(held) ?? EMPTY);
  }

  #events(bytes: Uint8Array): Uint8Array {
    const parts: Uint8Array[] = [];
    let changed = false;
    for (let start = 0; start < bytes.length; ) {
      const end = nextEventEnd(bytes, start);
      const event = bytes.subarray(start, end);
      const out = clientEvent(event);
      if (out !== event) changed = true;
      if (out !== undefined) parts.push(out);
      start = end;
    }
    if (!changed) return bytes;
    if (parts.length === 0) return EMPTY;
    return concatBytes(parts);
  }
}
