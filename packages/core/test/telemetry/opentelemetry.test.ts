/**
 * `@dashscope-token/core/opentelemetry` with the OpenTelemetry SDK's in-memory exporters, against
 * a real handler in front of the emulator: the spans and metrics an operator would see, and no
 * secret in any of them.
 */
import { fileURLToPath } from 'node:url';
import type { Attributes } from '@opentelemetry/api';
import {
  AggregationTemporality,
  type DataPoint,
  type Histogram,
  MeterProvider,
  MetricReader,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { build } from 'esbuild';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { nodeTelemetry } from '../../src/node/telemetry.js';
import {
  type DashScopeInstrumentation,
  type DashScopeInstrumentationOptions,
  instrumentDashScope,
} from '../../src/opentelemetry.js';
import { resolveHandlerConfig } from '../../src/policy/config.js';
import { NODE_ONLY } from '../bundle-imports.js';
import {
  CHAT_BODY,
  CHAT_PATH,
  type Harness,
  json,
  leakedKeys,
  PERMANENT_KEY,
  send,
  startHarness,
} from '../proxy/harness.js';
import { USAGE_EVENT } from './usage-event.js';

/** A reader the test collects from when it wants (no timer). */
class TestReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

interface Telemetry {
  spans: InMemorySpanExporter;
  reader: TestReader;
  instrumentation: DashScopeInstrumentation;
  /** Every data point of metric `name`. */
  points(name: string): Promise<DataPoint<unknown>[]>;
}

let h: Harness | undefined;
let t: Telemetry | undefined;
afterEach(async () => {
  t?.instrumentation.disable();
  t = undefined;
  await h?.close();
  h = undefined;
});
afterAll(() => {
  expect(leakedKeys()).toEqual([]);
});

function instrument(cacheStats?: DashScopeInstrumentationOptions['cacheStats']) {
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(spans)],
  });
  const reader = new TestReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const instrumentation = instrumentDashScope({
    tracerProvider,
    meterProvider,
    ...(cacheStats !== undefined && { cacheStats }),
  });
  t = {
    spans,
    reader,
    instrumentation,
    async points(name) {
      const { resourceMetrics } = await reader.collect();
      return resourceMetrics.scopeMetrics
        .flatMap((s) => s.metrics)
        .filter((m) => m.descriptor.name === name)
        .flatMap((m) => m.dataPoints as DataPoint<unknown>[]);
    },
  };
  return t;
}

function spanNamed(spans: readonly ReadableSpan[], name: string): ReadableSpan {
  const span = spans.find((s) => s.name === name);
  if (span === undefined) throw new Error(`no span ${name} in ${spans.map((s) => s.name)}`);
  return span;
}

/** Every attribute value of every span and data point, as one text. */
function everything(spans: readonly ReadableSpan[], points: DataPoint<unknown>[]): string {
  const attrs: Attributes[] = [
    ...spans.map((s) => s.attributes),
    ...points.map((p) => p.attributes),
  ];
  return JSON.stringify([attrs, spans.map((s) => s.name)]);
}

describe('instrumentDashScope', () => {
  it('a proxied chat is one SERVER span with the HTTP attributes, and the token it used one mint span', async () => {
    const { spans } = instrument();
    h = await startHarness();
    const answer = await send(h.url, 'POST', `${CHAT_PATH}?api_key=hidden`, json(CHAT_BODY));
    expect(answer.status).toBe(200);
    const finished = spans.getFinishedSpans();
    const request = spanNamed(finished, 'POST compatible');
    expect(request.attributes).toMatchObject({
      'http.request.method': 'POST',
      'url.path': CHAT_PATH,
      'http.response.status_code': 200,
      'server.address': new URL(h.emulator.url).host,
      'dashscope_token.route': 'compatible',
      'dashscope_token.request_id': answer.headers['x-request-id'],
    });
    expect(request.attributes['error.type']).toBeUndefined();
    const mint = spanNamed(finished, 'dashscope-token mint');
    expect(mint.attributes).toMatchObject({
      'dashscope_token.mint.outcome': 'minted',
      'dashscope_token.mint.expire_in_seconds': 1800,
    });
    expect(String(mint.attributes['dashscope_token.key_hash'])).toMatch(/^[0-9a-f]{16}$/);
    const text = everything(finished, []);
    expect(text).not.toContain('hidden');
    expect(text).not.toContain(PERMANENT_KEY);
    expect(text).not.toMatch(/st-[A-Za-z0-9]/);
  });

  it('counts requests by route and status, and records their duration and the mints', async () => {
    const telemetry = instrument();
    h = await startHarness();
    await send(h.url, 'POST', CHAT_PATH, json(CHAT_BODY));
    await send(h.url, 'POST', CHAT_PATH, json(CHAT_BODY));
    await send(h.url, 'POST', '/dashscope/token');
    const requests = await telemetry.points('dashscope_token.requests');
    const byRoute = Object.fromEntries(
      requests.map((p) => [
        `${p.attributes['dashscope_token.route']} ${p.attributes['http.response.status_code']}`,
        p.value,
      ]),
    );
    expect(byRoute).toEqual({ 'compatible 200': 2, 'token 200': 1 });
    const durations = await telemetry.points('dashscope_token.request.duration');
    expect(durations.map((p) => (p.value as Histogram).count).sort()).toEqual([1, 2]);
    const mints = await telemetry.points('dashscope_token.mints');
    // The proxy's provider and the token route's: one mint each.
    expect(mints.map((p) => [p.attributes['dashscope_token.mint.outcome'], p.value])).toEqual([
      ['minted', 2],
    ]);
  });

  it('an upstream failure is an error span with error.type, and a refused mint an error mint span', async () => {
    const { spans } = instrument();
    h = await startHarness({ handler: { apiKey: 'sk-a-key-the-emulator-refuses' } });
    const answer = await send(h.url, 'POST', CHAT_PATH, json(CHAT_BODY));
    expect(answer.status).toBeGreaterThanOrEqual(500);
    const finished = spans.getFinishedSpans();
    const request = spanNamed(finished, 'POST compatible');
    expect(request.attributes['error.type']).toBe(String(answer.status));
    expect(request.status.code).toBe(2); // SpanStatusCode.ERROR
    const mint = spanNamed(finished, 'dashscope-token mint');
    expect(mint.attributes).toMatchObject({
      'dashscope_token.mint.outcome': 'failed',
      'error.type': 'InvalidApiKey',
    });
    expect(everything(finished, [])).not.toContain('sk-a-key');
  });

  it('limit hits are counted by limit and code', async () => {
    const telemetry = instrument();
    h = await startHarness({
      handler: { limits: { tokenRoute: { points: 1, durationSeconds: 60 } } },
    });
    await send(h.url, 'POST', '/dashscope/token');
    await send(h.url, 'POST', '/dashscope/token');
    await send(h.url, 'POST', '/dashscope/token');
    const hits = await telemetry.points('dashscope_token.limit_hits');
    expect(hits.map((p) => [p.attributes, p.value])).toEqual([
      [{ 'dashscope_token.limit': 'tokenRoute', 'error.type': 'Throttling.ClientLimit' }, 2],
    ]);
  });

  it('cache hits and misses of the observed handler are an observable counter', async () => {
    h = await startHarness();
    const telemetry = instrument([h.handler]);
    await send(h.url, 'POST', '/dashscope/token');
    await send(h.url, 'POST', '/dashscope/token');
    await send(h.url, 'POST', '/dashscope/token');
    const lookups = await telemetry.points('dashscope_token.token.cache.lookups');
    const route = Object.fromEntries(
      lookups
        .filter((p) => p.attributes['dashscope_token.token_provider'] === 'tokenRoute')
        .map((p) => [p.attributes['dashscope_token.cache.result'], p.value]),
    );
    expect(route).toEqual({ hit: 2, miss: 1 });
  });

  it('token usage becomes gen_ai.client.token.usage by model and token type, and the GenAI attributes of its request span', async () => {
    const telemetry = instrument();
    const config = resolveHandlerConfig({ apiKey: PERMANENT_KEY }, false, nodeTelemetry);
    expect(config.metering.active).toBe(true);
    const event = USAGE_EVENT;
    const ctx = {};
    const request = nodeTelemetry.startRequest(
      'POST',
      'compatible',
      CHAT_PATH,
      ctx,
      'upstream.test',
    );
    config.metering.report(event, ctx);
    nodeTelemetry.endRequest(request, ctx, { status: 200 });
    const span = spanNamed(telemetry.spans.getFinishedSpans(), 'POST compatible');
    expect(span.attributes).toMatchObject({
      'gen_ai.provider.name': 'dashscope',
      'gen_ai.operation.name': 'chat',
      'gen_ai.request.model': 'qwen-plus',
      'gen_ai.response.model': 'qwen-plus',
      'gen_ai.usage.input_tokens': 12,
      'gen_ai.usage.output_tokens': 30,
    });
    const usage = await telemetry.points('gen_ai.client.token.usage');
    expect(
      usage.map((p) => [
        p.attributes['gen_ai.token.type'],
        p.attributes['gen_ai.request.model'],
        (p.value as Histogram).sum,
      ]),
    ).toEqual([
      ['input', 'qwen-plus', 12],
      ['output', 'qwen-plus', 30],
    ]);
    telemetry.instrumentation.disable();
    t = undefined;
    expect(config.metering.active).toBe(false);
  });

  it('a real chat (JSON and stream) puts its model and token counts on its span and in gen_ai.client.token.usage', async () => {
    const telemetry = instrument();
    h = await startHarness();
    const answer = await send(h.url, 'POST', CHAT_PATH, json(CHAT_BODY));
    const reported = JSON.parse(answer.text).usage;
    await send(
      h.url,
      'POST',
      CHAT_PATH,
      json({ ...CHAT_BODY, stream: true, stream_options: { include_usage: true } }),
    );
    const requests = telemetry.spans.getFinishedSpans().filter((s) => s.name === 'POST compatible');
    expect(requests).toHaveLength(2);
    for (const span of requests) {
      expect(span.attributes).toMatchObject({
        'gen_ai.provider.name': 'dashscope',
        'gen_ai.operation.name': 'chat',
        'gen_ai.response.model': expect.stringContaining('qwen'),
        'gen_ai.usage.input_tokens': expect.any(Number),
        'gen_ai.usage.output_tokens': expect.any(Number),
      });
    }
    expect(requests[0]!.attributes['gen_ai.usage.input_tokens']).toBe(reported.prompt_tokens);
    expect(requests[0]!.attributes['gen_ai.usage.output_tokens']).toBe(reported.completion_tokens);
    const usage = await telemetry.points('gen_ai.client.token.usage');
    const types = usage.map((p) => [
      p.attributes['gen_ai.token.type'],
      (p.value as Histogram).count,
    ]);
    expect(types.sort()).toEqual([
      ['input', 2],
      ['output', 2],
    ]);
    const text = everything(telemetry.spans.getFinishedSpans(), usage);
    expect(text).not.toContain(PERMANENT_KEY);
    expect(text).not.toContain('Hello there');
  });

  it('after disable() nothing more is recorded', async () => {
    const telemetry = instrument();
    telemetry.instrumentation.disable();
    h = await startHarness();
    await send(h.url, 'POST', CHAT_PATH, json(CHAT_BODY));
    expect(telemetry.spans.getFinishedSpans()).toEqual([]);
    expect(await telemetry.points('dashscope_token.requests')).toEqual([]);
  });
});

/** The modules an entry's bundle (for Node, dependencies included) is made of. */
async function bundledModules(entry: string): Promise<string[]> {
  const result = await build({
    entryPoints: [fileURLToPath(new URL(entry, import.meta.url))],
    bundle: true,
    write: false,
    platform: 'node',
    format: 'esm',
    external: NODE_ONLY,
    metafile: true,
    logLevel: 'silent',
  });
  return Object.keys(result.metafile.inputs);
}

describe('the optional peer dependency', () => {
  it('importing @dashscope-token/core (or its neutral entry) never loads @opentelemetry/api', async () => {
    for (const entry of ['../../src/index.ts', '../../src/neutral.ts']) {
      const modules = await bundledModules(entry);
      expect(modules.some((m) => m.includes('@opentelemetry'))).toBe(false);
      expect(modules.some((m) => m.includes('opentelemetry.ts'))).toBe(false);
    }
  });

  it('the check itself sees the OpenTelemetry entry load it', async () => {
    const modules = await bundledModules('../../src/opentelemetry.ts');
    expect(modules.some((m) => m.includes('@opentelemetry/api'))).toBe(true);
  });
});
