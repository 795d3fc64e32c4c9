import { describe, expect, it } from 'vitest';
import type { RecordedRequest } from '../src/index.js';
import { bearer, chatBody, generationBody, KEY, mint, PATHS, postJson, start } from './helpers.js';

describe('request recording', () => {
  it('records method, path with query, headers incl. authorization and cookie, body', async () => {
    const emulator = await start({ workspaces: ['ws-1'] });
    const { token } = await mint(emulator, 30);
    await postJson(emulator, `${PATHS.chat}?trace=1`, chatBody('recorded'), {
      ...bearer(token),
      cookie: 'session=abc; theme=dark',
      'x-dashscope-workspace': 'ws-1',
    });
    const requests = emulator.requests;
    expect(requests.map((r) => r.route)).toEqual(['tokens', 'chat']);
    const [tokens, chat] = requests as [RecordedRequest, RecordedRequest];
    expect(tokens.path).toBe('/api/v1/tokens?expire_in_seconds=30');
    expect(tokens.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(chat.method).toBe('POST');
    expect(chat.path).toBe(`${PATHS.chat}?trace=1`);
    expect(chat.headers.authorization).toBe(`Bearer ${token}`);
    expect(chat.headers.cookie).toBe('session=abc; theme=dark');
    expect(chat.headers['x-dashscope-workspace']).toBe('ws-1');
    expect(JSON.parse(chat.body)).toEqual(chatBody('recorded'));
    expect(chat.clientClosedEarly).toBe(false);
    expect(chat.status).toBe(200);
    expect(chat.receivedAt).toBeGreaterThanOrEqual(tokens.receivedAt);
  });

  it('returns copies, and clearRequests() forgets', async () => {
    const emulator = await start();
    await mint(emulator);
    const copy = emulator.requests;
    copy.length = 0;
    expect(emulator.requests).toHaveLength(1);
    emulator.clearRequests();
    expect(emulator.requests).toHaveLength(0);
    expect(emulator.stats().requests.tokens).toBe(1);
  });

  it('keeps only the first 64 KiB of a body', async () => {
    const emulator = await start();
    await postJson(emulator, PATHS.chat, chatBody('x'.repeat(100_000)));
    expect(emulator.requests[0]?.body.length).toBe(64 * 1024);
  });

  it('marks clientClosedEarly and closedAt when a stream is aborted', async () => {
    const emulator = await start({ chunkDelayMs: 60_000 });
    const controller = new AbortController();
    const res = await postJson(
      emulator,
      PATHS.generation,
      generationBody(),
      { ...bearer(), 'x-dashscope-sse': 'enable' },
      {
        signal: controller.signal,
      },
    );
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    controller.abort();
    const closed = await emulator.waitForRequest(
      (r) => r.route === 'generation' && r.clientClosedEarly,
    );
    expect(closed.closedAt).toBeGreaterThanOrEqual(closed.receivedAt);
    expect(closed.status).toBe(200);
    expect(emulator.requests[0]?.clientClosedEarly).toBe(true);
  });

  it('emits request and request-closed events', async () => {
    const emulator = await start({ chunkDelayMs: 60_000 });
    const seen: string[] = [];
    emulator.on('request', (r) => seen.push(`request:${r.route}`));
    emulator.on('request-closed', (r) => seen.push(`closed:${r.route}`));
    const controller = new AbortController();
    const res = await postJson(emulator, PATHS.chat, chatBody('x', { stream: true }), bearer(), {
      signal: controller.signal,
    });
    await (res.body as ReadableStream<Uint8Array>).getReader().read();
    controller.abort();
    await emulator.waitForRequest((r) => r.clientClosedEarly);
    expect(seen).toEqual(['request:chat', 'closed:chat']);
  });

  it('waitForRequest resolves for past and future requests and times out otherwise', async () => {
    const emulator = await start();
    await mint(emulator);
    expect((await emulator.waitForRequest((r) => r.route === 'tokens')).route).toBe('tokens');
    const future = emulator.waitForRequest((r) => r.route === 'embeddings');
    await postJson(emulator, PATHS.compatibleEmbeddings, {
      model: 'text-embedding-v4',
      input: 'x',
    });
    expect((await future).route).toBe('embeddings');
    await expect(emulator.waitForRequest((r) => r.route === 'models', 50)).rejects.toThrow(
      /within 50 ms/,
    );
  });

  it('rejects pending waitForRequest calls on close', async () => {
    const emulator = await start();
    const pending = emulator.waitForRequest(() => false, 60_000);
    await emulator.close();
    await expect(pending).rejects.toThrow(/closed/);
  });

  it('records unknown paths but not control routes; stats count both', async () => {
    const emulator = await start();
    await fetch(`${emulator.url}/api/v1/nothing-here`);
    await fetch(`${emulator.url}/__emulator/stats`);
    expect(emulator.requests.map((r) => r.route)).toEqual(['unknown']);
    const stats = emulator.stats();
    expect(stats.requests.unknown).toBe(1);
    expect(stats.requests.control).toBe(1);
  });

  it('logs one line per request without keys or bodies', async () => {
    const lines: string[] = [];
    const emulator = await start({ log: (line) => lines.push(line) });
    const { token } = await mint(emulator, 30);
    await postJson(
      emulator,
      `${PATHS.chat}?api_key=${token}`,
      chatBody('secret body text'),
      bearer(token),
    );
    await emulator.close();
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^POST \/api\/v1\/tokens\?expire_in_seconds=30 200 tokens \d+ms$/);
    const joined = lines.join('\n');
    expect(joined).not.toContain(KEY);
    expect(joined).not.toContain(token);
    expect(joined).not.toContain('secret body text');
    expect(lines[1]).toContain('api_key=[redacted]');
  });
});
