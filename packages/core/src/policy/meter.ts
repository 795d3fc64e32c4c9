/**
 * The meter of one proxied HTTP answer: built by the executor (only when
 * `config.metering.active`) once the request is admitted and its body checked, told the
 * answer's status and headers, handed every chunk as it is relayed, and ended once (complete,
 * or cut); it then reports one {@link UsageEvent}. With `meterStreams` it also rewrites the
 * request body and hands back what the client gets of each chunk. Runtime-neutral.
 */
import type { Admitted } from './admission.js';
import type { ErrorDialect } from './answers.js';
import type { ClientFacts, Limits } from './limits.js';
import { bodyJson, type ReadBody } from './proxy.js';
import { type Metering, type UsageRoute, usageIdentity } from './usage.js';
import { type AnswerUsage, type UsageReader, usageReader } from './usage-reader.js';
import { streamUsageCandidate, UsageChunkStrip, withStreamUsage } from './usage-streams.js';

/** What the meter of a request is built from (the executor's facts of it). */
export interface MeterFacts<Ctx> {
  ctx: Ctx;
  admitted: Admitted;
  client: ClientFacts;
  /** The mount-relative target (path + query). */
  target: string;
  /** The query string (without `?`). */
  query: string;
  dialect: ErrorDialect;
  /** The PAI-EAS service called, if it is a service call. */
  service: string | undefined;
  /** The body as read whole, when it was (`undefined` for none or a streamed one). */
  read: ReadBody | undefined;
  /** `performance.now()` when the request arrived. */
  started: number;
}

/** The part of the handler config a meter needs. */
export interface MeterConfig<Ctx> {
  metering: Metering<Ctx>;
  limits: Limits<Ctx> | undefined;
}

function routeOf(target: string, service: string | undefined): UsageRoute {
  if (service !== undefined) return 'pai-eas';
  return target.startsWith('/compatible-mode/') ? 'compatible' : 'native';
}

/** The model a proxied request names: its JSON body's `model`, else its `model` query parameter. */
export function requestModel(json: unknown, query: string): string | undefined {
  const model = (json as { model?: unknown } | null | undefined)?.model;
  if (typeof model === 'string') return model;
  if (!query.includes('model=')) return undefined;
  return new URLSearchParams(query).get('model') ?? undefined;
}

/**
 * The `meterStreams` decision before the body is read: a body the plan would stream is read
 * whole instead when `meterStreams` may rewrite it (see `streamUsageCandidate`). Call it only
 * when `config.metering.active`.
 */
export function meterStreamsReads<Ctx>(
  config: MeterConfig<Ctx>,
  plan: { body: 'none' | 'read' | 'stream' },
  method: string,
  target: string,
  service: string | undefined,
): void {
  if (
    plan.body === 'stream' &&
    config.metering.meterStreams &&
    service === undefined &&
    streamUsageCandidate(method, target)
  ) {
    plan.body = 'read';
  }
}

/** What an executor's relay calls on a meter (see {@link AnswerMeter}). */
export interface RelayMeter {
  answer(status: number, header: (name: string) => string | undefined): void;
  chunk(chunk: Uint8Array): Uint8Array;
  tail(): Uint8Array | undefined;
  end(complete: boolean): void;
}

/** One answer's meter. */
export class AnswerMeter<Ctx> implements RelayMeter {
  readonly #metering: Metering<Ctx>;
  readonly #ctx: Ctx;
  readonly #identity: string;
  readonly #keyHash: string;
  readonly #route: UsageRoute;
  readonly #dialect: ErrorDialect;
  readonly #path: string;
  readonly #model: string | undefined;
  readonly #started: number;
  /** Set when `meterStreams` rewrote the body: the stream is then stripped for the client. */
  readonly #stripStream: boolean;
  #reader: UsageReader | undefined;
  #strip: UsageChunkStrip | undefined;
  #status = 0;
  #requestId: string | undefined;
  #ended = false;
  /** The body to forward instead of the client's (`meterStreams`), if it was rewritten. */
  readonly body: Uint8Array | undefined;

  constructor(config: MeterConfig<Ctx>, facts: MeterFacts<Ctx>, method: string) {
    const metering = config.metering;
    this.#metering = metering;
    this.#ctx = facts.ctx;
    let identity: string;
    try {
      identity = usageIdentity(config.limits, facts.ctx, facts.admitted, facts.client);
    } catch {
      identity = facts.client.address ?? 'unknown';
    }
    this.#identity = identity;
    this.#keyHash = metering.keyHash(
      facts.service === undefined ? facts.admitted.apiKey : `pai-eas:${facts.service}`,
    );
    this.#route = routeOf(facts.target, facts.service);
    this.#dialect = facts.dialect;
    const q = facts.target.indexOf('?');
    this.#path = q < 0 ? facts.target : facts.target.slice(0, q);
    this.#started = facts.started;
    const json = facts.read === undefined ? undefined : bodyJson(facts.read);
    this.#model = requestModel(json, facts.query);
    this.body =
      metering.meterStreams &&
      facts.read !== undefined &&
      this.#route === 'compatible' &&
      streamUsageCandidate(method, facts.target)
        ? withStreamUsage(json)
        : undefined;
    this.#stripStream = this.body !== undefined;
  }

  /** The answer's status and headers arrived (the answer is relayed to the client). */
  answer(status: number, header: (name: string) => string | undefined): void {
    this.#status = status;
    this.#requestId = header('x-request-id') ?? header('x-dashscope-request-id');
    if (status < 200 || status >= 300) return;
    // Asked for uncompressed; an answer compressed all the same cannot be read on the side.
    const encoding = header('content-encoding');
    if (encoding !== undefined && encoding.toLowerCase() !== 'identity') return;
    const contentType = header('content-type');
    this.#reader = usageReader(contentType);
    if (this.#stripStream && contentType?.toLowerCase().startsWith('text/event-stream')) {
      this.#strip = new UsageChunkStrip();
    }
  }

  /** One relayed chunk: read on the side; returns what the client gets of it. */
  chunk(chunk: Uint8Array): Uint8Array {
    this.#reader?.push(chunk);
    return this.#strip === undefined ? chunk : this.#strip.push(chunk);
  }

  /** What the client still gets at the end of the answer (an event held back), if anything. */
  tail(): Uint8Array | undefined {
    const rest = this.#strip?.end();
    return rest === undefined || rest.length === 0 ? undefined : rest;
  }

  /**
   * The answer ended (`complete`) or was cut: reports its usage once. A complete answer is
   * reported when it carried usage; a cut 2xx answer always is, with the last usage seen
   * before the cut (native SSE: the running totals; otherwise none).
   */
  end(complete: boolean): void {
    if (this.#ended) return;
    this.#ended = true;
    const reader = this.#reader;
    if (reader === undefined) return;
    this.#reader = undefined;
    const found: AnswerUsage = reader.finish();
    const usage = found.usage;
    if (usage === undefined && complete) return;
    this.#metering.report(
      {
        identity: this.#identity,
        keyHash: this.#keyHash,
        route: this.#route,
        dialect: this.#dialect,
        path: this.#path,
        model: found.model ?? this.#model,
        ...(this.#model !== undefined && { requestModel: this.#model }),
        inputTokens: usage?.inputTokens,
        outputTokens: usage?.outputTokens,
        totalTokens: usage?.totalTokens,
        ...(usage?.cachedTokens !== undefined && { cachedTokens: usage.cachedTokens }),
        ...(usage?.reasoningTokens !== undefined && { reasoningTokens: usage.reasoningTokens }),
        ...(usage?.imageCount !== undefined && { imageCount: usage.imageCount }),
        ...(usage?.audioSeconds !== undefined && { audioSeconds: usage.audioSeconds }),
        ...(usage?.characters !== undefined && { characters: usage.characters }),
        requestId: this.#requestId ?? found.requestId,
        status: this.#status,
        durationMs: performance.now() - this.#started,
        complete,
      },
      this.#ctx,
    );
  }
}
