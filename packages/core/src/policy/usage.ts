/**
 * Usage metering: what one proxied answer (or WebSocket session) consumed, reported once,
 * after it ended, to the app's `onUsage` hook and to the handler's own listeners (budgets,
 * telemetry). The executors read usage from the answer as it passes (never holding it back)
 * and call {@link Metering.report}. Runtime-neutral.
 */
import { apiKeyHash } from '../key-hash.js';
import type { Admitted } from './admission.js';
import type { ErrorDialect } from './answers.js';
import { clientIdentity } from './client-identity.js';
import type { ClientFacts, Limits } from './limits.js';
import type { DashScopeLogger } from './logging.js';

/** Which API an answer came from. */
export type UsageRoute =
  /** `/api/v1/…` (DashScope's native API). */
  | 'native'
  /** `/compatible-mode/v1/…` (OpenAI-compatible). */
  | 'compatible'
  /** `/api-ws/v1/inference` and `/api-ws/v1/realtime` sessions. */
  | 'websocket'
  /** A PAI-EAS service (`/pai-eas/services/{service}/…`). */
  | 'pai-eas';

/** What one proxied answer (or one WebSocket task or response) consumed, as upstream reported it. */
export interface UsageEvent {
  /**
   * Who it counts against, like the per-client limits: what `limits.key` returned, else the
   * `id` `authorize` returned, else the client's address.
   */
  identity: string;
  /**
   * A hash of the permanent key the call was made with (16 hex digits; never the key); for a
   * PAI-EAS service call, of `pai-eas:{service}`.
   */
  keyHash: string;
  /** Which API answered. */
  route: UsageRoute;
  /** The error dialect of the route (`openai` for OpenAI-compatible, else `dashscope`). */
  dialect: ErrorDialect;
  /** The upstream path, without the query (e.g. `/compatible-mode/v1/chat/completions`). */
  path: string;
  /** The model upstream named (answer's `model`), else the request's; `undefined` if neither. */
  model: string | undefined;
  /**
   * The model the request named (its JSON body's `model`, else its `model` query parameter; a
   * WebSocket session's URL `model`, a speech task's `run-task` model), when it named one:
   * `model` may be the dated variant upstream answered with. Budgets per model count by it.
   */
  requestModel?: string;
  /** Prompt tokens (`input_tokens` / `prompt_tokens`). */
  inputTokens: number | undefined;
  /** Completion tokens (`output_tokens` / `completion_tokens`). */
  outputTokens: number | undefined;
  /** Total tokens (`total_tokens`, else input + output when both are known). */
  totalTokens: number | undefined;
  /** Prompt tokens served from the context cache (`cached_tokens`), where reported. */
  cachedTokens?: number;
  /** Reasoning (thinking) tokens (`reasoning_tokens`), where reported. */
  reasoningTokens?: number;
  /** Images generated or read (`image_count`), where reported. */
  imageCount?: number;
  /** Seconds of audio (`duration`, `seconds`), where reported. */
  audioSeconds?: number;
  /** Characters billed (`characters`, speech synthesis), where reported. */
  characters?: number;
  /** Upstream's request id (`x-request-id` / `request_id`), if any. */
  requestId: string | undefined;
  /** The HTTP status of the answer (101 for a WebSocket session). */
  status: number;
  /** Milliseconds from the request's arrival to the answer's end. */
  durationMs: number;
  /**
   * Whether the answer (or stream) ended normally; `false` when it was cut (client gone,
   * upstream reset, a timeout). A cut answer carries the last usage seen before the cut (the
   * running totals of a native stream), or none (`undefined` counts).
   */
  complete: boolean;
}

/** The `onUsage` option. A throw (or a rejected promise) is logged and ignored. */
export type UsageHook<Ctx> = (event: UsageEvent, ctx: Ctx) => void | Promise<void>;

/** A listener of the handler's own (budgets, telemetry): called before `onUsage`. */
export type UsageListener<Ctx> = (event: UsageEvent, ctx: Ctx) => void;

/**
 * Who a request counts against for metering and budgets, like the per-client limits (without
 * their `key:`/`id:`/`ip:` prefix): `limits.key(ctx)`, else the `id` `authorize` returned,
 * else the client's address (see `clientIdentity`: worked out once per request). May throw
 * what `limits.key` throws.
 */
export function usageIdentity<Ctx>(
  limits: Limits<Ctx> | undefined,
  ctx: Ctx,
  admitted: Admitted,
  client: ClientFacts,
): string {
  return clientIdentity(limits, ctx, admitted, client).name;
}

/** Most permanent keys whose hash is remembered. */
const KEY_HASHES = 1024;

/**
 * The usage side of one handler: whether answers are metered at all, and where each event goes.
 * Created once per handler (see `resolveHandlerConfig`); `undefined` in the config when nothing
 * listens, so that an unmetered handler does no work per request.
 */
export class Metering<Ctx> {
  readonly #hook: UsageHook<Ctx> | undefined;
  readonly #listeners: UsageListener<Ctx>[] = [];
  readonly #conditional: { wanted: () => boolean; listener: UsageListener<Ctx> }[] = [];
  readonly #logger: DashScopeLogger | undefined;
  readonly #hashes = new Map<string, string>();
  /** `meterStreams`: ask upstream for the usage of streams whose client did not. */
  readonly meterStreams: boolean;

  constructor(options: {
    onUsage?: UsageHook<Ctx> | undefined;
    meterStreams?: boolean | undefined;
    logger?: DashScopeLogger | undefined;
  }) {
    this.#hook = options.onUsage;
    this.meterStreams = options.meterStreams === true;
    this.#logger = options.logger;
  }

  /** Adds a listener of the handler's own (budgets, telemetry). */
  listen(listener: UsageListener<Ctx>): void {
    this.#listeners.push(listener);
  }

  /**
   * Adds a listener that counts only while `wanted()` is true (telemetry: while its channel has
   * a subscriber), so that it alone does not make the handler meter answers nobody reads.
   */
  listenWhen(wanted: () => boolean, listener: UsageListener<Ctx>): void {
    this.#conditional.push({ wanted, listener });
  }

  /** Whether anything listens: executors skip metering when not. */
  get active(): boolean {
    if (this.#hook !== undefined || this.#listeners.length > 0) return true;
    for (const c of this.#conditional) if (c.wanted()) return true;
    return false;
  }

  /** The hash of a permanent key reported as `keyHash` (16 hex digits of its SHA-256). */
  keyHash(apiKey: string): string {
    let hash = this.#hashes.get(apiKey);
    if (hash === undefined) {
      hash = apiKeyHash(apiKey);
      if (this.#hashes.size >= KEY_HASHES) this.#hashes.clear();
      this.#hashes.set(apiKey, hash);
    }
    return hash;
  }

  /** Hands one event to every listener, then to `onUsage`; never throws. */
  report(event: UsageEvent, ctx: Ctx): void {
    for (const listener of this.#listeners) this.#tell(listener, event, ctx);
    for (const c of this.#conditional) if (c.wanted()) this.#tell(c.listener, event, ctx);
    const hook = this.#hook;
    if (hook === undefined) return;
    try {
      const pending = hook(event, ctx);
      if (pending !== undefined && typeof (pending as Promise<void>).then === 'function') {
        (pending as Promise<void>).then(undefined, (error: unknown) => this.#failed(error));
      }
    } catch (error) {
      this.#failed(error);
    }
  }

  #tell(listener: UsageListener<Ctx>, event: UsageEvent, ctx: Ctx): void {
    try {
      listener(event, ctx);
    } catch (error) {
      this.#failed(error);
    }
  }

  #failed(error: unknown): void {
    const name = error instanceof Error ? error.name : typeof error;
    this.#logger?.error?.(`dashscope-token: onUsage failed (${name})`);
  }
}
