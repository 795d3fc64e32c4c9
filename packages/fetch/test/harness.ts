/**
 * The fetch handler called directly, as Next.js and Bun call it (`handler.fetch(request)`), in
 * front of the real emulator; every answer is recorded so a test file can check at the end that
 * no permanent key reached a client.
 */
import { type Emulator, startEmulator } from '@dashscope-token/emulator';
import { createFetchHandler, type FetchHandler, type FetchHandlerOptions } from '../src/index.js';

/** The permanent key the tests configure; it must never appear in any answer. */
export const PERMANENT_KEY = 'sk-fetch-test-Qz7Vb2Nm5Kx8';
export const SECOND_KEY = 'sk-fetch-test-Hw4Jt9Rc3Ld6';
export const ORIGIN = 'http://app.test';
export const CHAT_PATH = '/dashscope/compatible-mode/v1/chat/completions';
export const NATIVE_PATH = '/dashscope/api/v1/services/aigc/text-generation/generation';
export const CHAT_BODY = {
  model: 'qwen-plus',
  messages: [{ role: 'user', content: 'Hello there' }],
};
export const NATIVE_BODY = { model: 'qwen-plus', input: { prompt: 'Hello there' } };

/** Every answer seen (status, headers, body), as text. */
export const seen: string[] = [];

/** Every 8-character fragment of a permanent key in the recorded answers. */
export function leakedFragments(): string[] {
  const found: string[] = [];
  for (const key of [PERMANENT_KEY, SECOND_KEY]) {
    for (let i = 0; i + 8 <= key.length; i++) {
      const fragment = key.slice(i, i + 8);
      if (seen.some((text) => text.includes(fragment))) found.push(fragment);
    }
  }
  return found;
}

export interface Harness {
  emulator: Emulator;
  handler: FetchHandler;
  close(): Promise<void>;
}

export async function startHarness(
  options:
    | Partial<FetchHandlerOptions>
    | ((emulator: Emulator) => Partial<FetchHandlerOptions>) = {},
): Promise<Harness> {
  const emulator = await startEmulator({ apiKeys: [PERMANENT_KEY, SECOND_KEY] });
  const extra = typeof options === 'function' ? options(emulator) : options;
  const handler = createFetchHandler({
    apiKey: PERMANENT_KEY,
    baseUrl: emulator.url,
    retry: false,
    ...extra,
  });
  return {
    emulator,
    handler,
    async close() {
      await handler.close();
      await emulator.close();
    },
  };
}

/** A request to the app (never to the emulator). */
export function request(
  path: string,
  init: RequestInit & { json?: unknown; duplex?: 'half' } = {},
): Request {
  const { json, ...rest } = init;
  const headers = new Headers(rest.headers);
  if (json !== undefined) headers.set('content-type', 'application/json');
  return new Request(`${ORIGIN}${path}`, {
    ...rest,
    headers,
    ...(json !== undefined && { body: JSON.stringify(json), method: rest.method ?? 'POST' }),
  } as RequestInit);
}

export interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

/** Reads a whole answer and records it. */
export async function read(response: Response): Promise<Answer> {
  const text = await response.text();
  const headers: string[] = [];
  response.headers.forEach((value, name) => {
    headers.push(`${name}: ${value}`);
  });
  seen.push(`${response.status}\n${headers.join('\n')}\n${text}`);
  return { status: response.status, headers: response.headers, text };
}

/** `handler.fetch(request)`, read whole. */
export async function call(h: Harness, req: Request): Promise<Answer> {
  return read(await h.handler.fetch(req));
}
