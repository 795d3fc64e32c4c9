import { describe, expect, it } from 'vitest';
import { AnswerMeter, type MeterFacts, meterStreamsReads } from '../../src/policy/meter.js';
import { Metering, type UsageEvent } from '../../src/policy/usage.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const KEY = 'sk-meter-test-permanent-key-0001';

function setup(options: { meterStreams?: boolean } = {}) {
  const events: UsageEvent[] = [];
  const metering = new Metering<string>({
    onUsage: (event) => {
      events.push(event);
    },
    meterStreams: options.meterStreams,
  });
  const config = { metering, limits: undefined };
  const meter = (facts: Partial<MeterFacts<string>> = {}, method = 'POST') =>
    new AnswerMeter(
      config,
      {
        ctx: 'ctx',
        admitted: { apiKey: KEY, identity: { id: 'alice' } },
        client: { address: '10.0.0.1', headers: {} },
        target: '/compatible-mode/v1/chat/completions',
        query: '',
        dialect: 'openai',
        service: undefined,
        read: undefined,
        started: performance.now(),
        ...facts,
      },
      method,
    );
  return { events, meter, config };
}

const json =
  (headers: Record<string, string> = {}) =>
  (name: string) =>
    ({ 'content-type': 'application/json', ...headers })[name];

describe('the meter of one answer', () => {
  it('reports once, with who spent it, the key hash and the request id header', () => {
    const { events, meter } = setup();
    const m = meter();
    m.answer(200, json({ 'x-request-id': 'req-1' }));
    m.chunk(encoder.encode('{"model":"qwen-plus","usage":{"prompt_tokens":1,'));
    m.chunk(encoder.encode('"completion_tokens":2,"total_tokens":3}}'));
    m.end(true);
    m.end(false);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      identity: 'alice',
      route: 'compatible',
      model: 'qwen-plus',
      totalTokens: 3,
      requestId: 'req-1',
      status: 200,
      complete: true,
    });
    expect(events[0]!.keyHash).toMatch(/^[0-9a-f]{16}$/);
    expect(JSON.stringify(events)).not.toContain(KEY);
  });

  it('reports nothing for an error answer or a complete answer without usage', () => {
    const { events, meter } = setup();
    const refused = meter();
    refused.answer(429, json());
    refused.chunk(encoder.encode('{"usage":{"total_tokens":3}}'));
    refused.end(true);
    const none = meter();
    none.answer(200, json());
    none.chunk(encoder.encode('{"output":{}}'));
    none.end(true);
    expect(events).toEqual([]);
  });

  it('reports a cut answer as incomplete even without usage, with the model the request named', () => {
    const { events, meter } = setup();
    const body = encoder.encode('{"model":"qwen-max","input":{}}');
    const m = meter({
      target: '/api/v1/services/aigc/text-generation/generation',
      dialect: 'dashscope',
      read: { bytes: body },
    });
    m.answer(200, (name) => (name === 'content-type' ? 'text/event-stream' : undefined));
    m.chunk(encoder.encode('id:1\nevent:result\n'));
    m.end(false);
    expect(events).toMatchObject([
      { route: 'native', model: 'qwen-max', totalTokens: undefined, complete: false },
    ]);
  });

  it('names PAI-EAS calls and hashes the service, not a key', () => {
    const { events, meter } = setup();
    const m = meter({ service: 'llm', admitted: { apiKey: '' } });
    m.answer(200, json());
    m.chunk(encoder.encode('{"usage":{"total_tokens":3}}'));
    m.end(true);
    expect(events[0]).toMatchObject({ route: 'pai-eas', identity: '10.0.0.1' });
  });
});

describe('meterStreams in the meter', () => {
  const streaming = encoder.encode('{"model":"qwen-plus","stream":true,"messages":[]}');

  it('rewrites a streaming chat body and strips the stream it causes', () => {
    const { events, meter } = setup({ meterStreams: true });
    const m = meter({ read: { bytes: streaming } });
    expect(JSON.parse(decoder.decode(m.body))).toMatchObject({
      stream: true,
      stream_options: { include_usage: true },
    });
    m.answer(200, (name) => (name === 'content-type' ? 'text/event-stream' : undefined));
    const sent = [
      'data: {"choices":[{"delta":{"content":"hi"}}],"usage":null}\n\n',
      'data: {"choices":[],"usage":{"total_tokens":9}}\n\n',
      'data: [DONE]\n\n',
    ].map((event) => decoder.decode(m.chunk(encoder.encode(event))));
    expect(m.tail()).toBeUndefined();
    m.end(true);
    expect(sent).toEqual([
      'data: {"choices":[{"delta":{"content":"hi"}}]}\n\n',
      '',
      'data: [DONE]\n\n',
    ]);
    expect(events[0]!.totalTokens).toBe(9);
  });

  it('leaves bodies alone when meterStreams is off, or the client asked for usage', () => {
    expect(setup().meter({ read: { bytes: streaming } }).body).toBeUndefined();
    const asked = encoder.encode('{"stream":true,"stream_options":{"include_usage":true}}');
    expect(setup({ meterStreams: true }).meter({ read: { bytes: asked } }).body).toBeUndefined();
  });

  it('has a streamed body read whole only for the endpoints it rewrites', () => {
    const { config } = setup({ meterStreams: true });
    const chat = { body: 'stream' as const };
    meterStreamsReads(config, chat, 'POST', '/compatible-mode/v1/chat/completions', undefined);
    expect(chat.body).toBe('read');
    const upload = { body: 'stream' as const };
    meterStreamsReads(config, upload, 'POST', '/api/v1/uploads', undefined);
    expect(upload.body).toBe('stream');
    const off = { body: 'stream' as const };
    meterStreamsReads(
      setup().config,
      off,
      'POST',
      '/compatible-mode/v1/chat/completions',
      undefined,
    );
    expect(off.body).toBe('stream');
  });
});
