/**
 * Telemetry: the `diagnostics_channel` channels the handler and the token engine publish on
 * (names and message shapes), and the publisher the executors call. Runtime-neutral: the
 * channel implementation is injected (`node:diagnostics_channel` from the Node entry; in other
 * runtimes the one `process.getBuiltinModule` gives, where there is one). Nothing is built or
 * published while a channel has no subscriber. No message carries a key, a token, a header
 * value, a query string or a body.
 */
import type { UsageEvent } from './usage.js';

/** The channel names, `dashscope-token:<what>:<event>` (like undici's `undici:request:create`). */
export const CHANNELS = Object.freeze({
  /** A request to the handler's routes started. Message: {@link RequestStartMessage}. */
  requestStart: 'dashscope-token:request:start',
  /** That request ended (its answer was sent, or the client left). Message: {@link RequestEndMessage}. */
  requestEnd: 'dashscope-token:request:end',
  /** A temporary key was minted, or a mint failed. Message: {@link MintMessage}. */
  mint: 'dashscope-token:token:mint',
  /** A refresh of a cached key failed. Message: {@link RefreshErrorMessage}. */
  refreshError: 'dashscope-token:token:refresh-error',
  /** A request was refused by a limit or budget (429). Message: {@link LimitHitMessage}. */
  limitHit: 'dashscope-token:limit:hit',
  /** An answer's usage was read. Message: {@link UsageMessage}. */
  usage: 'dashscope-token:usage',
});

/** What a channel needs to be (Node's `Channel`, Bun's and Deno's alike). */
export interface DiagnosticsChannel {
  readonly hasSubscribers: boolean;
  publish(message: unknown): void;
}

/** What `node:diagnostics_channel` offers that telemetry uses. */
export interface DiagnosticsChannels {
  channel(name: string): DiagnosticsChannel;
}

/** Which route a request took. */
export type RequestRouteKind =
  /** `POST {prefix}/token`. */
  | 'token'
  /** `{prefix}/api/v1/…` (native API). */
  | 'native'
  /** `{prefix}/compatible-mode/v1/…` (OpenAI-compatible). */
  | 'compatible'
  /** `{prefix}/pai-eas/services/{service}/…`. */
  | 'pai-eas'
  /** The PAI-EAS workbench routes. */
  | 'pai-eas-workbench';

/**
 * One request, as telemetry sees it: the same object in its start and end messages (a
 * subscriber may key a `WeakMap` by it, as undici's `request` object).
 */
export interface DiagnosticsRequest {
  /** The HTTP method (`POST`). */
  readonly method: string;
  /** Which route. */
  readonly route: RequestRouteKind;
  /** The path the client asked for, without the query (`/dashscope/compatible-mode/v1/chat/completions`). */
  readonly path: string;
  /** The upstream host (`dashscope-intl.aliyuncs.com`); `undefined` for PAI-EAS services. */
  readonly upstream: string | undefined;
  /** `performance.now()` when the request started. */
  readonly startedAt: number;
}

/** `dashscope-token:request:start`. */
export interface RequestStartMessage {
  request: DiagnosticsRequest;
}

/** `dashscope-token:request:end`. */
export interface RequestEndMessage {
  request: DiagnosticsRequest;
  /** The status the client got (`0` when it left before any answer). */
  status: number;
  /** Milliseconds from the start to the end of the answer (streams included). */
  durationMs: number;
  /** Upstream's `x-request-id`, when upstream answered. */
  requestId: string | undefined;
  /** Whether the client disconnected before the answer ended. */
  clientGone: boolean;
}

/** `dashscope-token:token:mint`: one mint (with its retries) of a token provider. */
export interface MintMessage {
  /** 16 hex digits of the SHA-256 of the permanent key, as usage events' `keyHash` (never the key). */
  keyHash: string;
  /** The TTL asked for, seconds. */
  expireInSeconds: number;
  /** Milliseconds the mint took (retries included). */
  durationMs: number;
  /** `minted`, or `failed` (see `code`). */
  outcome: 'minted' | 'failed';
  /** The `DashScopeError` code of a failed mint. */
  code: string | undefined;
  /** Whether the mint was a background refresh (refresh-ahead) rather than a miss. */
  background: boolean;
}

/** `dashscope-token:token:refresh-error`: a failure no caller saw (background, or stale-served). */
export interface RefreshErrorMessage {
  keyHash: string | undefined;
  code: string;
  retryable: boolean;
}

/** `dashscope-token:limit:hit`. */
export interface LimitHitMessage {
  /**
   * Which limit: `tokenRoute`, `proxy` or `websocket` (the per-client `limits`), or `budget`
   * (the `budgets`).
   */
  limit: 'tokenRoute' | 'proxy' | 'websocket' | 'budget';
  /** The code the client got (`Throttling.ClientLimit`, `BudgetExceeded`). */
  code: string;
}

/** `dashscope-token:usage`. */
export interface UsageMessage {
  usage: UsageEvent;
  /** The request it belongs to, when the executor tracked one (not for WebSocket sessions). */
  request: DiagnosticsRequest | undefined;
}

/** What an executor says when a request ended. */
export interface RequestOutcome {
  status: number;
  requestId?: string | undefined;
  clientGone?: boolean;
}

/**
 * The channels of one runtime, and the publishing the executors and the token engine do.
 * Every method returns at once when its channel has no subscriber.
 */
export class Telemetry {
  readonly #start: DiagnosticsChannel;
  readonly #end: DiagnosticsChannel;
  readonly #mint: DiagnosticsChannel;
  readonly #refreshError: DiagnosticsChannel;
  readonly #limitHit: DiagnosticsChannel;
  readonly #usage: DiagnosticsChannel;
  /** The request of a context in flight, for the usage message (only while someone listens). */
  readonly #requests = new WeakMap<object, DiagnosticsRequest>();

  constructor(channels: DiagnosticsChannels) {
    this.#start = channels.channel(CHANNELS.requestStart);
    this.#end = channels.channel(CHANNELS.requestEnd);
    this.#mint = channels.channel(CHANNELS.mint);
    this.#refreshError = channels.channel(CHANNELS.refreshError);
    this.#limitHit = channels.channel(CHANNELS.limitHit);
    this.#usage = channels.channel(CHANNELS.usage);
  }

  /** Whether the usage channel has a subscriber (the handler meters only then, for telemetry). */
  get usageWanted(): boolean {
    return this.#usage.hasSubscribers;
  }

  /** Whether the request-end channel has a subscriber. */
  get requestsWanted(): boolean {
    return this.#end.hasSubscribers;
  }

  /** Whether a mint or refresh-error subscriber would see anything: time the mint only then. */
  get mintsWanted(): boolean {
    return this.#mint.hasSubscribers;
  }

  /**
   * Publishes the start of a request; `undefined` (and nothing done) when neither request
   * channel has a subscriber. `ctx` (an object) is remembered for the usage message.
   */
  startRequest(
    method: string,
    route: RequestRouteKind,
    url: string,
    ctx: unknown,
    upstream?: string,
  ): DiagnosticsRequest | undefined {
    if (!this.#start.hasSubscribers && !this.#end.hasSubscribers && !this.#usage.hasSubscribers) {
      return undefined;
    }
    const query = url.indexOf('?');
    const request: DiagnosticsRequest = {
      method,
      route,
      path: query < 0 ? url : url.slice(0, query),
      upstream: route === 'pai-eas' ? undefined : upstream,
      startedAt: performance.now(),
    };
    if (typeof ctx === 'object' && ctx !== null) this.#requests.set(ctx, request);
    if (this.#start.hasSubscribers) this.#start.publish({ request } satisfies RequestStartMessage);
    return request;
  }

  /** Publishes the end of `request` (from {@link startRequest}; nothing when `undefined`). */
  endRequest(request: DiagnosticsRequest | undefined, ctx: unknown, outcome: RequestOutcome): void {
    if (request === undefined) return;
    if (typeof ctx === 'object' && ctx !== null) this.#requests.delete(ctx);
    if (!this.#end.hasSubscribers) return;
    this.#end.publish({
      request,
      status: outcome.status,
      durationMs: performance.now() - request.startedAt,
      requestId: outcome.requestId,
      clientGone: outcome.clientGone === true,
    } satisfies RequestEndMessage);
  }

  /** Publishes a limit or budget refusal. */
  limitHit(message: LimitHitMessage): void {
    if (this.#limitHit.hasSubscribers) this.#limitHit.publish(message);
  }

  /** Publishes one mint. */
  minted(message: MintMessage): void {
    if (this.#mint.hasSubscribers) this.#mint.publish(message);
  }

  /** Publishes a refresh failure nobody saw. */
  refreshFailed(keyHash: string | undefined, error: { code: string; retryable: boolean }): void {
    if (!this.#refreshError.hasSubscribers) return;
    this.#refreshError.publish({
      keyHash,
      code: error.code,
      retryable: error.retryable,
    } satisfies RefreshErrorMessage);
  }

  /** Publishes one usage event, with the request of `ctx` when it is in flight. */
  usage(event: UsageEvent, ctx: unknown): void {
    if (!this.#usage.hasSubscribers) return;
    const request = typeof ctx === 'object' && ctx !== null ? this.#requests.get(ctx) : undefined;
    this.#usage.publish({ usage: event, request } satisfies UsageMessage);
  }
}

/**
 * The telemetry of runtimes that expose `node:diagnostics_channel` through
 * `process.getBuiltinModule` (Node ≥ 20.16, Bun 1.x, Deno 2.x); `undefined` elsewhere (Workers,
 * browsers), where nothing is published.
 */
export function runtimeTelemetry(): Telemetry | undefined {
  const runtime = (
    globalThis as {
      process?: { getBuiltinModule?: (id: string) => unknown };
    }
  ).process;
  let channels: unknown;
  try {
    channels = runtime?.getBuiltinModule?.('node:diagnostics_channel');
  } catch {
    return undefined;
  }
  if (
    typeof channels !== 'object' ||
    channels === null ||
    typeof (channels as DiagnosticsChannels).channel !== 'function'
  ) {
    return undefined;
  }
  return new Telemetry(channels as DiagnosticsChannels);
}

/** The host of an origin (`https://host:port` → `host:port`). */
export function originHost(origin: string): string {
  const slashes = origin.indexOf('//');
  return slashes < 0 ? origin : origin.slice(slashes + 2);
}

/** Which route a planned request takes. */
export function requestRouteKind(
  plan:
    | { kind: 'token' | 'pai-eas-workbench' | 'pai-eas-service' }
    | { kind: 'proxy'; dialect: string },
): RequestRouteKind {
  switch (plan.kind) {
    case 'proxy':
      return plan.dialect === 'openai' ? 'compatible' : 'native';
    case 'pai-eas-service':
      return 'pai-eas';
    default:
      return plan.kind;
  }
}
