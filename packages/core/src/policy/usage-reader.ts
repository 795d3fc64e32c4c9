/**
 * Reading the usage of a proxied answer as it is relayed, without holding any byte back from
 * the client: the reader is handed each chunk after (or while) it goes to the client, keeps only
 * what it must, bounded, and says at the end what the answer consumed. Both dialects (native
 * `input_tokens`/`output_tokens`, OpenAI-compatible `prompt_tokens`/`completion_tokens`), JSON
 * answers and Server-Sent Events (OpenAI-compatible: the usage chunk of
 * `stream_options.include_usage`; native: the running usage of the last event). Runtime-neutral.
 */

/** What an answer consumed, as upstream reported it (see `UsageEvent` for each field). */
export interface UsageCounts {
  inputTokens: number | undefined;
  outputTokens: number | undefined;
  totalTokens: number | undefined;
  cachedTokens?: number;
  reasoningTokens?: number;
  imageCount?: number;
  audioSeconds?: number;
  characters?: number;
}

/** What a reader found in one answer. */
export interface AnswerUsage {
  /** The usage, `undefined` when the answer carried none (or was beyond the reader's bounds). */
  usage: UsageCounts | undefined;
  /** The answer's `model`, if it names one. */
  model: string | undefined;
  /** The answer's `request_id` (native) or `id` (OpenAI-compatible), if any. */
  requestId: string | undefined;
}

/** An incremental reader of one answer body. */
export interface UsageReader {
  /** One chunk of the body, as relayed (not modified, not kept beyond the reader's bound). */
  push(chunk: Uint8Array): void;
  /** The body ended (or was cut): what was found. */
  finish(): AnswerUsage;
}

/**
 * Largest JSON answer whose usage is read (1 MiB): a JSON answer is kept (by reference, not
 * copied) until it ends, then parsed; beyond this size it is let go and reports no usage.
 */
export const MAX_JSON_USAGE_BYTES = 1024 * 1024;

/**
 * Longest SSE line kept while it is unfinished (1 MiB): an event's `data:` line split over
 * chunks is kept until its end; a longer line is skipped (its usage, if any, is not read).
 */
export const MAX_SSE_LINE_BYTES = 1024 * 1024;

const utf8 = new TextDecoder();

function count(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined;
}

function field(object: unknown, name: string): unknown {
  return typeof object === 'object' && object !== null
    ? (object as Record<string, unknown>)[name]
    : undefined;
}

/**
 * The counts of a `usage` object of either dialect (and of embeddings, images, speech and
 * recognition), `undefined` when it holds none.
 */
export function usageCounts(usage: unknown): UsageCounts | undefined {
  if (typeof usage !== 'object' || usage === null || Array.isArray(usage)) return undefined;
  const u = usage as Record<string, unknown>;
  const inputTokens = count(u.input_tokens) ?? count(u.prompt_tokens);
  const outputTokens = count(u.output_tokens) ?? count(u.completion_tokens);
  const totalTokens =
    count(u.total_tokens) ??
    (inputTokens !== undefined && outputTokens !== undefined
      ? inputTokens + outputTokens
      : undefined);
  const counts: UsageCounts = { inputTokens, outputTokens, totalTokens };
  let found = inputTokens !== undefined || outputTokens !== undefined || totalTokens !== undefined;
  const cached =
    count(field(u.prompt_tokens_details, 'cached_tokens')) ??
    count(field(u.input_tokens_details, 'cached_tokens')) ??
    count(u.cached_tokens);
  if (cached !== undefined) counts.cachedTokens = cached;
  const reasoning =
    count(field(u.completion_tokens_details, 'reasoning_tokens')) ??
    count(field(u.output_tokens_details, 'reasoning_tokens')) ??
    count(u.reasoning_tokens);
  if (reasoning !== undefined) counts.reasoningTokens = reasoning;
  const images = count(u.image_count);
  if (images !== undefined) {
    counts.imageCount = images;
    found = true;
  }
  const seconds = count(u.duration) ?? count(u.seconds);
  if (seconds !== undefined) {
    counts.audioSeconds = seconds;
    found = true;
  }
  const characters = count(u.characters);
  if (characters !== undefined) {
    counts.characters = characters;
    found = true;
  }
  return found ? counts : undefined;
}

/** The usage, model and request id of one parsed answer (or SSE event payload). */
export function answerUsage(answer: unknown): AnswerUsage {
  const model = field(answer, 'model');
  const requestId = field(answer, 'request_id') ?? field(answer, 'id');
  return {
    usage: usageCounts(field(answer, 'usage')),
    model: typeof model === 'string' ? model : undefined,
    requestId: typeof requestId === 'string' ? requestId : undefined,
  };
}

const NOTHING: AnswerUsage = Object.freeze({
  usage: undefined,
  model: undefined,
  requestId: undefined,
});

/** A JSON answer: kept up to {@link MAX_JSON_USAGE_BYTES}, parsed once at its end. */
class JsonUsageReader implements UsageReader {
  #chunks: Uint8Array[] | undefined = [];
  #size = 0;

  push(chunk: Uint8Array): void {
    if (this.#chunks === undefined) return;
    this.#size += chunk.length;
    if (this.#size > MAX_JSON_USAGE_BYTES) this.#chunks = undefined;
    else this.#chunks.push(chunk);
  }

  finish(): AnswerUsage {
    const chunks = this.#chunks;
    this.#chunks = undefined;
    if (chunks === undefined || chunks.length === 0) return NOTHING;
    try {
      return answerUsage(JSON.parse(utf8.decode(concatBytes(chunks))));
    } catch {
      return NOTHING;
    }
  }
}

/** `parts` as one array (the part itself when there is one). */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  let size = 0;
  for (const part of parts) size += part.length;
  const all = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    all.set(part, at);
    at += part.length;
  }
  return all;
}

const LF = 0x0a;
const CR = 0x0d;
/** `"usage"` */
const USAGE_KEY = new Uint8Array([0x22, 0x75, 0x73, 0x61, 0x67, 0x65, 0x22]);
/** `data:` */
const DATA_FIELD = new Uint8Array([0x64, 0x61, 0x74, 0x61, 0x3a]);

/** Where `needle` starts in `hay` at or after `from`, or -1. */
export function indexOfBytes(hay: Uint8Array, needle: Uint8Array, from = 0): number {
  const first = needle[0]!;
  const last = hay.length - needle.length;
  for (let i = hay.indexOf(first, from); i >= 0 && i <= last; i = hay.indexOf(first, i + 1)) {
    let j = 1;
    while (j < needle.length && hay[i + j] === needle[j]) j++;
    if (j === needle.length) return i;
  }
  return -1;
}

function startsWith(line: Uint8Array, prefix: Uint8Array): boolean {
  if (line.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (line[i] !== prefix[i]) return false;
  return true;
}

/**
 * An SSE answer, scanned line by line as it passes: only the unfinished line is kept (up to
 * {@link MAX_SSE_LINE_BYTES}), and only `data:` lines containing `"usage"` are parsed. The
 * usage found last wins (native events carry running totals; the OpenAI-compatible usage chunk
 * comes last), and so do the model and request id.
 */
class SseUsageReader implements UsageReader {
  #partial: Uint8Array[] = [];
  #partialSize = 0;
  /** The current line grew beyond the bound: skipped up to its end. */
  #skipping = false;
  #usage: UsageCounts | undefined;
  #model: string | undefined;
  #requestId: string | undefined;

  push(chunk: Uint8Array): void {
    let start = 0;
    for (;;) {
      const end = chunk.indexOf(LF, start);
      if (end < 0) {
        if (start < chunk.length) this.#keep(chunk.subarray(start));
        return;
      }
      if (this.#skipping) this.#skipping = false;
      else if (this.#partialSize === 0) this.#line(chunk.subarray(start, end));
      else {
        this.#keep(chunk.subarray(start, end));
        if (!this.#skipping) this.#line(concatBytes(this.#partial));
        this.#skipping = false;
      }
      this.#partial = [];
      this.#partialSize = 0;
      start = end + 1;
    }
  }

  #keep(piece: Uint8Array): void {
    if (this.#skipping) return;
    this.#partialSize += piece.length;
    if (this.#partialSize > MAX_SSE_LINE_BYTES) {
      this.#skipping = true;
      this.#partial = [];
      return;
    }
    // Copied: the relay may hand the same bytes on, and the line must outlive the chunk.
    this.#partial.push(piece.slice());
  }

  #line(line: Uint8Array): void {
    if (!startsWith(line, DATA_FIELD) || indexOfBytes(line, USAGE_KEY) < 0) return;
    const end = line[line.length - 1] === CR ? line.length - 1 : line.length;
    let payload: unknown;
    try {
      payload = JSON.parse(utf8.decode(line.subarray(DATA_FIELD.length, end)));
    } catch {
      return;
    }
    const found = answerUsage(payload);
    if (found.usage === undefined) return;
    this.#usage = found.usage;
    if (found.model !== undefined) this.#model = found.model;
    if (found.requestId !== undefined) this.#requestId = found.requestId;
  }

  finish(): AnswerUsage {
    // A last line without its newline still counts (a stream that ended without one).
    if (this.#partialSize > 0 && !this.#skipping) this.#line(concatBytes(this.#partial));
    this.#partial = [];
    this.#partialSize = 0;
    return { usage: this.#usage, model: this.#model, requestId: this.#requestId };
  }
}

/**
 * A reader for an answer of `contentType`: SSE for `text/event-stream`, JSON for
 * `application/json` (and `+json` types); `undefined` for anything else (no usage to read).
 */
export function usageReader(contentType: string | undefined): UsageReader | undefined {
  if (contentType === undefined) return undefined;
  const type = contentType.toLowerCase();
  if (type.startsWith('text/event-stream')) return new SseUsageReader();
  const semi = type.indexOf(';');
  const essence = (semi < 0 ? type : type.slice(0, semi)).trim();
  if (essence === 'application/json' || essence.endsWith('+json')) return new JsonUsageReader();
  return undefined;
}
