/**
 * Usage of WebSocket sessions, read from the messages as they pass (after they were relayed,
 * never holding one back): one {@link UsageEvent} per speech task of `/api-ws/v1/inference`
 * (its `task-finished`, `task-failed`, or the session's end) and per `response.done` of
 * `/api-ws/v1/realtime`. Runtime-neutral: the executor hands over the text messages that may
 * matter (see {@link WebSocketUsageMeter.upstreamMarkers}) and reports what comes back.
 *
 * What is parsed, bounded: only text messages of at most {@link MAX_USAGE_MESSAGE_BYTES} bytes
 * that contain one of the marker strings (event names) the executor looks for first; binary
 * frames (audio) and larger messages are never decoded. At most {@link MAX_OPEN_TASKS} tasks
 * (and realtime responses) are followed at a time per session.
 */
import type { UsageEvent } from './usage.js';
import { type UsageCounts, usageCounts } from './usage-reader.js';

/** Text messages longer than this (bytes) are not parsed for usage: 256 KiB. */
export const MAX_USAGE_MESSAGE_BYTES = 256 * 1024;

/** Most tasks (or realtime responses) followed at once in one session; older ones are reported cut. */
export const MAX_OPEN_TASKS = 64;

/** Which WebSocket API a session speaks. */
export type WebSocketApi = 'inference' | 'realtime';

/** The WebSocket API of a proxied path (`/api-ws/v1/realtime` or `…/inference`, with or without a trailing slash). */
export function webSocketApiOf(path: string): WebSocketApi {
  return path.startsWith('/api-ws/v1/realtime') ? 'realtime' : 'inference';
}

/** What every event of one session shares. */
export interface WebSocketUsageSession {
  /** Who the session counts against (see `usageIdentity`). */
  identity: string;
  /** The permanent key's hash (`Metering.keyHash`). */
  keyHash: string;
  /** The WebSocket path after the prefix, without the query (`/api-ws/v1/inference`). */
  path: string;
  /** The URL's `model` query parameter (the realtime API's model), if any. */
  model: string | undefined;
}

interface Open {
  model: string | undefined;
  startedAt: number;
  counts: UsageCounts | undefined;
}

const INFERENCE_MARKERS: readonly string[] = [
  '"task-finished"',
  '"task-failed"',
  '"result-generated"',
];
const REALTIME_MARKERS: readonly string[] = [
  '"response.done"',
  '"response.created"',
  '"session.created"',
  '"session.updated"',
];
const RUN_TASK: readonly string[] = ['"run-task"'];
const NONE: readonly string[] = [];

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function count(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined;
}

function parse(text: string): Record<string, unknown> | undefined {
  try {
    const message: unknown = JSON.parse(text);
    return isObject(message) ? message : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The counts of a WebSocket `usage` object ({@link usageCounts}), with the cached and reasoning
 * tokens also under the realtime spelling `input_token_details` / `output_token_details`.
 */
function webSocketUsageCounts(usage: unknown): UsageCounts | undefined {
  const counts = usageCounts(usage);
  if (counts === undefined || !isObject(usage)) return counts;
  const input = usage.input_token_details;
  const cached = isObject(input) ? count(input.cached_tokens) : undefined;
  if (counts.cachedTokens === undefined && cached !== undefined) counts.cachedTokens = cached;
  const output = usage.output_token_details;
  const reasoning = isObject(output) ? count(output.reasoning_tokens) : undefined;
  if (counts.reasoningTokens === undefined && reasoning !== undefined)
    counts.reasoningTokens = reasoning;
  return counts;
}

/**
 * The usage of one WebSocket session. Speech tasks: a task is followed from the client's
 * `run-task` (its `payload.model`); its counts are the latest `usage` upstream reported for it
 * (`result-generated` carries the running total of a synthesis, `task-finished` the task's
 * own), reported at `task-finished` (`complete: true`), `task-failed` or the session's end
 * (`complete: false`). Realtime: each `response.done` is one event with `response.usage`
 * (`complete` unless its status is `cancelled`, `failed` or `incomplete`); the model is the URL's
 * `model`, or the one upstream's `session.created` / `session.updated` names.
 */
export class WebSocketUsageMeter {
  readonly #session: WebSocketUsageSession;
  readonly #api: WebSocketApi;
  readonly #now: () => number;
  readonly #startedAt: number;
  readonly #open = new Map<string, Open>();
  #model: string | undefined;

  /**
   * Marker strings of the upstream messages worth parsing: the executor hands over a text
   * message (≤ {@link MAX_USAGE_MESSAGE_BYTES}) only when it contains one.
   */
  readonly upstreamMarkers: readonly string[];
  /** The same for the client's messages (speech `run-task`; nothing for realtime). */
  readonly clientMarkers: readonly string[];

  constructor(session: WebSocketUsageSession, now: () => number = Date.now) {
    this.#session = session;
    this.#api = webSocketApiOf(session.path);
    this.#model = session.model;
    this.#now = now;
    this.#startedAt = now();
    this.upstreamMarkers = this.#api === 'realtime' ? REALTIME_MARKERS : INFERENCE_MARKERS;
    this.clientMarkers = this.#api === 'realtime' ? NONE : RUN_TASK;
  }

  /**
   * A text message the client sent (and the proxy forwarded).
   * @returns the events of tasks it pushed out of the {@link MAX_OPEN_TASKS} followed (usually none)
   */
  client(text: string): UsageEvent[] {
    if (this.#api !== 'inference') return [];
    const message = parse(text);
    const header = isObject(message?.header) ? message.header : undefined;
    if (header?.action !== 'run-task' || typeof header.task_id !== 'string') return [];
    const payload = isObject(message?.payload) ? message.payload : undefined;
    const model = typeof payload?.model === 'string' ? payload.model : this.#model;
    return this.#follow(header.task_id, { model, startedAt: this.#now(), counts: undefined });
  }

  /**
   * A text message upstream sent (and the proxy relayed).
   * @returns the events it completes (a finished or failed task, a realtime response)
   */
  upstream(text: string): UsageEvent[] {
    const message = parse(text);
    if (message === undefined) return [];
    return this.#api === 'realtime' ? this.#realtime(message) : this.#inference(message);
  }

  /**
   * The session ended: one event (`complete: false`) for each task still running that had
   * started, with whatever usage upstream had reported for it.
   */
  end(): UsageEvent[] {
    // An unfinished realtime response has no usage yet (it arrives in `response.done` only).
    const events =
      this.#api === 'inference'
        ? [...this.#open].map(([id, open]) => this.#event(id, open, false))
        : [];
    this.#open.clear();
    return events;
  }

  #follow(id: string, open: Open): UsageEvent[] {
    const cut: UsageEvent[] = [];
    if (!this.#open.has(id) && this.#open.size >= MAX_OPEN_TASKS) {
      const [oldest, first] = this.#open.entries().next().value as [string, Open];
      this.#open.delete(oldest);
      if (this.#api === 'inference') cut.push(this.#event(oldest, first, false));
    }
    this.#open.set(id, open);
    return cut;
  }

  #inference(message: Record<string, unknown>): UsageEvent[] {
    const header = isObject(message.header) ? message.header : undefined;
    const id = header?.task_id;
    if (typeof id !== 'string') return [];
    let open = this.#open.get(id);
    const events: UsageEvent[] = [];
    if (open === undefined) {
      // A task whose run-task was not seen (too large to read): followed from here.
      open = { model: this.#model, startedAt: this.#startedAt, counts: undefined };
      events.push(...this.#follow(id, open));
    }
    const payload = isObject(message.payload) ? message.payload : undefined;
    const counts = webSocketUsageCounts(payload?.usage);
    if (counts !== undefined) open.counts = counts;
    const event = header?.event;
    if (event === 'task-finished' || event === 'task-failed') {
      this.#open.delete(id);
      events.push(this.#event(id, open, event === 'task-finished'));
    }
    return events;
  }

  #realtime(message: Record<string, unknown>): UsageEvent[] {
    const type = message.type;
    if (type === 'session.created' || type === 'session.updated') {
      const session = isObject(message.session) ? message.session : undefined;
      if (typeof session?.model === 'string' && session.model !== '') this.#model = session.model;
      return [];
    }
    const response = isObject(message.response) ? message.response : undefined;
    const id = typeof response?.id === 'string' ? response.id : undefined;
    if (type === 'response.created') {
      if (id === undefined) return [];
      return this.#follow(id, { model: this.#model, startedAt: this.#now(), counts: undefined });
    }
    if (type !== 'response.done') return [];
    const open = id === undefined ? undefined : this.#open.get(id);
    if (id !== undefined) this.#open.delete(id);
    const status = response?.status;
    const cut = status === 'cancelled' || status === 'failed' || status === 'incomplete';
    return [
      this.#event(
        id,
        {
          model: open?.model ?? this.#model,
          startedAt: open?.startedAt ?? this.#startedAt,
          counts: webSocketUsageCounts(response?.usage),
        },
        !cut,
      ),
    ];
  }

  #event(requestId: string | undefined, open: Open, complete: boolean): UsageEvent {
    const counts = open.counts;
    // Realtime: the URL's model (upstream's session may name a dated variant); speech: the task's.
    const requestModel = this.#api === 'realtime' ? this.#session.model : open.model;
    return {
      identity: this.#session.identity,
      keyHash: this.#session.keyHash,
      route: 'websocket',
      dialect: 'dashscope',
      path: this.#session.path,
      model: open.model,
      ...(requestModel === undefined ? {} : { requestModel }),
      inputTokens: counts?.inputTokens,
      outputTokens: counts?.outputTokens,
      totalTokens: counts?.totalTokens,
      ...(counts?.cachedTokens === undefined ? {} : { cachedTokens: counts.cachedTokens }),
      ...(counts?.reasoningTokens === undefined ? {} : { reasoningTokens: counts.reasoningTokens }),
      ...(counts?.audioSeconds === undefined ? {} : { audioSeconds: counts.audioSeconds }),
      ...(counts?.characters === undefined ? {} : { characters: counts.characters }),
      requestId,
      status: 101,
      durationMs: Math.max(0, this.#now() - open.startedAt),
      complete,
    };
  }
}
