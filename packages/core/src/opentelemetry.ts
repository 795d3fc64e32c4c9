/**
 * `@dashscope-token/core/opentelemetry`: spans and metrics from the handler's diagnostics
 * channels, through `@opentelemetry/api` (an optional peer dependency: only this entry loads
 * it). Attributes follow the HTTP and GenAI semantic conventions; none carries a key, a token,
 * a header value, a query string or a body.
 */
import diagnostics from 'node:diagnostics_channel';
import {
  type Attributes,
  type Counter,
  context,
  type Histogram,
  type MeterProvider,
  metrics,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TracerProvider,
  trace,
} from '@opentelemetry/api';
import {
  CHANNELS,
  type DiagnosticsRequest,
  type LimitHitMessage,
  type MintMessage,
  type RefreshErrorMessage,
  type RequestEndMessage,
  type RequestStartMessage,
  type UsageMessage,
} from './policy/telemetry.js';
import type { UsageEvent } from './policy/usage.js';
import type { TokenProviderStats } from './types.js';

/** The instrumentation scope name of every tracer and meter. */
export const INSTRUMENTATION_NAME = '@dashscope-token/core';

/** `gen_ai.provider.name` of every GenAI attribute set. */
export const GEN_AI_PROVIDER = 'dashscope';

/** Something whose token cache counters are observed: a handler, or a token provider. */
export type CacheStatsSource =
  | { stats(): TokenProviderStats }
  | {
      stats(): {
        proxyTokens: TokenProviderStats;
        routeTokens?: TokenProviderStats | undefined;
      };
    };

/** Options of {@link instrumentDashScope}. */
export interface DashScopeInstrumentationOptions {
  /**
   * Where spans go.
   * @default the global tracer provider (`trace.getTracerProvider()`)
   */
  tracerProvider?: TracerProvider;
  /**
   * Where metrics go.
   * @default the global meter provider (`metrics.getMeterProvider()`)
   */
  meterProvider?: MeterProvider;
  /**
   * Handlers (`createDashScopeHandler`, `createFetchHandler`, any front door) and token
   * providers whose cache hits and misses are reported by the observable counter
   * `dashscope_token.token.cache.lookups`.
   * @default [] (no cache metric)
   */
  cacheStats?: readonly CacheStatsSource[];
}

/** What {@link instrumentDashScope} returns. */
export interface DashScopeInstrumentation {
  /** Stops listening; spans of requests still in flight are ended (status unset). Idempotent. */
  disable(): void;
}

/** Boundaries of `gen_ai.client.token.usage` the GenAI metric conventions recommend. */
const TOKEN_BUCKETS = [
  1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
];
/** Boundaries (seconds) of the HTTP duration histograms the HTTP conventions recommend. */
const DURATION_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 30, 60, 120, 300,
];

/** `gen_ai.operation.name` of an upstream path. */
function operationOf(path: string): string {
  if (path.includes('embedding')) return 'embeddings';
  if (path.endsWith('/chat/completions') || path.includes('/text-generation/')) return 'chat';
  if (path.endsWith('/completions')) return 'text_completion';
  return 'generate_content';
}

/**
 * Turns the handler's diagnostics channels into OpenTelemetry spans and metrics. Call it once
 * at start-up (before or after creating handlers: the channels are per process); every
 * handler and token provider of `@dashscope-token/core` (and `@dashscope-token/fetch` where the
 * runtime has `diagnostics_channel`) is then traced.
 *
 * Spans (tracer `@dashscope-token/core`):
 * - one per request to the handler's routes (`POST compatible`, kind `SERVER`; the core
 *   README's Telemetry section lists every attribute): `http.request.method`, `url.path`, `server.address`,
 *   `http.response.status_code`, `error.type` (5xx), `dashscope_token.route`, and, when the
 *   answer's usage was read while it was in flight, `gen_ai.provider.name` (`dashscope`),
 *   `gen_ai.operation.name`, `gen_ai.request.model`, `gen_ai.response.model`,
 *   `gen_ai.usage.input_tokens`, `gen_ai.usage.output_tokens`;
 * - one per mint (`dashscope-token mint`), with its key hash, TTL and outcome.
 *
 * Metrics (meter `@dashscope-token/core`): `dashscope_token.requests`,
 * `dashscope_token.request.duration` (s), `dashscope_token.mints`,
 * `dashscope_token.mint.duration` (s), `dashscope_token.refresh_errors`,
 * `dashscope_token.limit_hits`, `gen_ai.client.token.usage` (`gen_ai.token.type`
 * `input`/`output`), and `dashscope_token.token.cache.lookups` for `cacheStats`.
 *
 * Token usage is read only while this instrumentation listens (handlers meter answers only
 * when something reads their usage).
 *
 * @example
 * import { instrumentDashScope } from '@dashscope-token/core/opentelemetry';
 * const telemetry = instrumentDashScope(); // global providers
 * // … later: telemetry.disable();
 */
export function instrumentDashScope(
  options: DashScopeInstrumentationOptions = {},
): DashScopeInstrumentation {
  const tracer = (options.tracerProvider ?? trace.getTracerProvider()).getTracer(
    INSTRUMENTATION_NAME,
  );
  const meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter(
    INSTRUMENTATION_NAME,
  );
  const counter = (name: string, unit: string, description: string): Counter =>
    meter.createCounter(name, { description, unit });
  const histogram = (
    name: string,
    unit: string,
    description: string,
    buckets: number[],
  ): Histogram =>
    meter.createHistogram(name, {
      description,
      unit,
      advice: { explicitBucketBoundaries: buckets },
    });
  const requests = counter(
    'dashscope_token.requests',
    '{request}',
    'Requests to the handler’s routes, by route and status.',
  );
  const duration = histogram(
    'dashscope_token.request.duration',
    's',
    'Duration of requests to the handler’s routes, streams included.',
    DURATION_BUCKETS,
  );
  const mints = counter(
    'dashscope_token.mints',
    '{mint}',
    'Temporary keys minted (outcome minted) or refused (outcome failed).',
  );
  const mintDuration = histogram(
    'dashscope_token.mint.duration',
    's',
    'Duration of mints, retries included.',
    DURATION_BUCKETS,
  );
  const refreshErrors = counter(
    'dashscope_token.refresh_errors',
    '{error}',
    'Refreshes of cached keys that failed while the cached key was still served.',
  );
  const limitHits = counter(
    'dashscope_token.limit_hits',
    '{request}',
    'Requests refused by a per-client limit or a budget.',
  );
  const tokens = histogram(
    'gen_ai.client.token.usage',
    '{token}',
    'Tokens used per answer, by model and token type.',
    TOKEN_BUCKETS,
  );
  const sources = options.cacheStats ?? [];
  const cache = meter.createObservableCounter('dashscope_token.token.cache.lookups', {
    description: 'Token cache lookups of the observed handlers and providers, by result.',
    unit: '{lookup}',
  });
  const observeCache = (result: { observe(value: number, attributes: Attributes): void }) => {
    sources.forEach((source, index) => {
      const stats = source.stats();
      const each =
        'proxyTokens' in stats
          ? ([
              ['proxy', stats.proxyTokens],
              ['tokenRoute', stats.routeTokens],
            ] as const)
          : ([['provider', stats]] as const);
      for (const [name, counters] of each) {
        if (counters === undefined) continue;
        const base = { 'dashscope_token.source': index, 'dashscope_token.token_provider': name };
        result.observe(counters.hits, { ...base, 'dashscope_token.cache.result': 'hit' });
        result.observe(counters.misses, { ...base, 'dashscope_token.cache.result': 'miss' });
      }
    });
  };
  if (sources.length > 0) cache.addCallback(observeCache);

  const spans = new Map<DiagnosticsRequest, Span>();

  const onStart = (message: unknown): void => {
    const { request } = message as RequestStartMessage;
    const attributes: Attributes = {
      'http.request.method': request.method,
      'url.path': request.path,
      'dashscope_token.route': request.route,
    };
    if (request.upstream !== undefined) attributes['server.address'] = request.upstream;
    const span = tracer.startSpan(
      `${request.method} ${request.route}`,
      { kind: SpanKind.SERVER, attributes },
      context.active(),
    );
    spans.set(request, span);
  };

  const onEnd = (message: unknown): void => {
    const end = message as RequestEndMessage;
    const { request, status } = end;
    const attributes: Attributes = {
      'http.request.method': request.method,
      'dashscope_token.route': request.route,
    };
    if (status > 0) attributes['http.response.status_code'] = status;
    const errorType = status >= 500 ? String(status) : status === 0 ? 'client_gone' : undefined;
    if (errorType !== undefined) attributes['error.type'] = errorType;
    requests.add(1, attributes);
    duration.record(end.durationMs / 1000, attributes);
    const span = spans.get(request);
    if (span === undefined) return;
    spans.delete(request);
    if (status > 0) span.setAttribute('http.response.status_code', status);
    if (end.requestId !== undefined) span.setAttribute('dashscope_token.request_id', end.requestId);
    if (end.clientGone) span.setAttribute('dashscope_token.client_gone', true);
    if (errorType !== undefined) {
      span.setAttribute('error.type', errorType);
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
    span.end();
  };

  const onMint = (message: unknown): void => {
    const mint = message as MintMessage;
    const attributes: Attributes = { 'dashscope_token.mint.outcome': mint.outcome };
    if (mint.code !== undefined) attributes['error.type'] = mint.code;
    mints.add(1, attributes);
    mintDuration.record(mint.durationMs / 1000, attributes);
    const endTime = Date.now();
    const span = tracer.startSpan(
      'dashscope-token mint',
      {
        kind: SpanKind.CLIENT,
        startTime: endTime - mint.durationMs,
        attributes: {
          ...attributes,
          'dashscope_token.key_hash': mint.keyHash,
          'dashscope_token.mint.expire_in_seconds': mint.expireInSeconds,
          'dashscope_token.mint.background': mint.background,
        },
      },
      context.active(),
    );
    if (mint.outcome === 'failed') span.setStatus({ code: SpanStatusCode.ERROR });
    span.end(endTime);
  };

  const onRefreshError = (message: unknown): void => {
    const failure = message as RefreshErrorMessage;
    refreshErrors.add(1, {
      'error.type': failure.code,
      'dashscope_token.retryable': failure.retryable,
    });
  };

  const onLimitHit = (message: unknown): void => {
    const hit = message as LimitHitMessage;
    limitHits.add(1, { 'dashscope_token.limit': hit.limit, 'error.type': hit.code });
  };

  const onUsage = (message: unknown): void => {
    const { usage, request } = message as UsageMessage;
    const attributes = genAiAttributes(usage);
    if (usage.inputTokens !== undefined) {
      tokens.record(usage.inputTokens, { ...attributes, 'gen_ai.token.type': 'input' });
    }
    if (usage.outputTokens !== undefined) {
      tokens.record(usage.outputTokens, { ...attributes, 'gen_ai.token.type': 'output' });
    }
    const span = request === undefined ? undefined : spans.get(request);
    if (span === undefined) return;
    span.setAttributes(attributes);
    if (usage.inputTokens !== undefined) {
      span.setAttribute('gen_ai.usage.input_tokens', usage.inputTokens);
    }
    if (usage.outputTokens !== undefined) {
      span.setAttribute('gen_ai.usage.output_tokens', usage.outputTokens);
    }
  };

  const subscriptions: [string, (message: unknown) => void][] = [
    [CHANNELS.requestStart, onStart],
    [CHANNELS.requestEnd, onEnd],
    [CHANNELS.mint, onMint],
    [CHANNELS.refreshError, onRefreshError],
    [CHANNELS.limitHit, onLimitHit],
    [CHANNELS.usage, onUsage],
  ];
  for (const [name, listener] of subscriptions) diagnostics.subscribe(name, listener);

  let disabled = false;
  return {
    disable() {
      if (disabled) return;
      disabled = true;
      for (const [name, listener] of subscriptions) diagnostics.unsubscribe(name, listener);
      if (sources.length > 0) cache.removeCallback(observeCache);
      for (const span of spans.values()) span.end();
      spans.clear();
    },
  };
}

/** The GenAI attributes of an answer's usage (model, provider, operation). */
function genAiAttributes(usage: UsageEvent): Attributes {
  const attributes: Attributes = {
    'gen_ai.provider.name': GEN_AI_PROVIDER,
    'gen_ai.operation.name': operationOf(usage.path),
  };
  if (usage.model !== undefined) {
    attributes['gen_ai.request.model'] = usage.model;
    attributes['gen_ai.response.model'] = usage.model;
  }
  return attributes;
}
