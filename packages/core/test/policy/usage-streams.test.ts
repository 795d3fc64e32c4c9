import { describe, expect, it } from 'vitest';
import {
  MAX_HELD_EVENT_BYTES,
  streamUsageCandidate,
  UsageChunkStrip,
  withStreamUsage,
} from '../../src/policy/usage-streams.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What the client receives of `text` through the strip, split at `cuts`, chunk by chunk. */
function strip(text: string, cuts: number[] = []): string[] {
  const bytes = encoder.encode(text);
  const s = new UsageChunkStrip();
  const sent: string[] = [];
  let at = 0;
  for (const cut of [...cuts, bytes.length]) {
    const out = s.push(bytes.subarray(at, cut));
    if (out.length > 0) sent.push(decoder.decode(out));
    at = cut;
  }
  const tail = s.end();
  if (tail.length > 0) sent.push(decoder.decode(tail));
  return sent;
}

const chunk = (choices: string, usage?: string) =>
  `data: {"id":"c","object":"chat.completion.chunk","choices":${choices}${usage === undefined ? '' : `,"usage":${usage}`},"system_fingerprint":null}\n\n`;

const unmetered = [
  chunk('[{"index":0,"delta":{"content":"Hé 你"}}]'),
  chunk('[{"index":0,"delta":{},"finish_reason":"stop"}]'),
  'data: [DONE]\n\n',
].join('');

const metered = [
  chunk('[{"index":0,"delta":{"content":"Hé 你"}}]', 'null'),
  chunk('[{"index":0,"delta":{},"finish_reason":"stop"}]', 'null'),
  chunk('[]', '{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}'),
  'data: [DONE]\n\n',
].join('');

describe('meterStreams: what the client gets of a stream it did not ask usage for', () => {
  it('is exactly the unmetered stream, however the metered one is split', () => {
    expect(strip(metered).join('')).toBe(unmetered);
    const length = encoder.encode(metered).length;
    for (let cut = 0; cut <= length; cut++) expect(strip(metered, [cut]).join('')).toBe(unmetered);
    const everyByte = Array.from({ length }, (_, i) => i);
    expect(strip(metered, everyByte).join('')).toBe(unmetered);
  });

  it('passes whole events at once and holds back only the unfinished one', () => {
    const events = metered.split(/(?<=\n\n)/);
    const first = encoder.encode(events[0]!).length;
    // One whole event and half of the next: the whole one goes now.
    const sent = strip(metered, [first + 10]);
    expect(sent[0]).toBe(chunk('[{"index":0,"delta":{"content":"Hé 你"}}]'));
  });

  it('removes "usage": null written with spaces, or first among the members', () => {
    expect(strip('data: {"choices":[1], "usage" : null }\n\n').join('')).toBe(
      'data: {"choices":[1] }\n\n',
    );
    expect(strip('data: {"usage":null,"choices":[1]}\n\n').join('')).toBe(
      'data: {"choices":[1]}\n\n',
    );
  });

  it('leaves events it does not recognise as they are', () => {
    const others = [
      'event: error\ndata: {"error":{"message":"x"}}\n\n',
      'data: {"choices":[],"usage":{"bad json"\n\n',
      'data: {"choices":[{"delta":{"content":"\\"usage\\":null"}}]}\n\n',
      ': keep-alive\n\n',
    ].join('');
    expect(strip(others).join('')).toBe(others);
  });

  it('lets an event longer than the bound through as it comes', () => {
    const long = `data: {"pad":"${'x'.repeat(MAX_HELD_EVENT_BYTES)}","choices":[]}\n\n`;
    const sent = strip(long, [100, MAX_HELD_EVENT_BYTES + 10]);
    expect(sent.length).toBeGreaterThan(1);
    expect(sent.join('')).toBe(long);
  });

  it('sends an unfinished last event at the end', () => {
    expect(strip('data: {"choices":[1],"usage":null}').join('')).toBe('data: {"choices":[1]}');
  });
});

describe('meterStreams: the forwarded body', () => {
  const decode = (bytes: Uint8Array | undefined) =>
    bytes === undefined ? undefined : JSON.parse(decoder.decode(bytes));

  it('asks for the usage of a stream, keeping the other stream options', () => {
    expect(decode(withStreamUsage({ model: 'm', stream: true }))).toEqual({
      model: 'm',
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(
      decode(withStreamUsage({ stream: true, stream_options: { include_usage: false, x: 1 } })),
    ).toEqual({ stream: true, stream_options: { include_usage: true, x: 1 } });
  });

  it('changes nothing for requests that do not stream or ask for usage already', () => {
    expect(withStreamUsage({ stream: false })).toBeUndefined();
    expect(
      withStreamUsage({ stream: true, stream_options: { include_usage: true } }),
    ).toBeUndefined();
    expect(withStreamUsage([1])).toBeUndefined();
    expect(withStreamUsage(undefined)).toBeUndefined();
  });

  it('applies to OpenAI-compatible chat and text completions only', () => {
    expect(streamUsageCandidate('POST', '/compatible-mode/v1/chat/completions')).toBe(true);
    expect(streamUsageCandidate('POST', '/compatible-mode/v1/completions?x=1')).toBe(true);
    expect(streamUsageCandidate('GET', '/compatible-mode/v1/chat/completions')).toBe(false);
    expect(streamUsageCandidate('POST', '/compatible-mode/v1/embeddings')).toBe(false);
    expect(streamUsageCandidate('POST', '/api/v1/services/aigc/text-generation/generation')).toBe(
      false,
    );
  });
});
