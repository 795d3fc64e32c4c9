import { afterEach } from 'vitest';
import {
  DEFAULT_EMULATOR_API_KEY,
  type Emulator,
  type EmulatorOptions,
  startEmulator,
} from '../src/index.js';

export const KEY = DEFAULT_EMULATOR_API_KEY;

export const PATHS = {
  tokens: '/api/v1/tokens',
  generation: '/api/v1/services/aigc/text-generation/generation',
  multimodal: '/api/v1/services/aigc/multimodal-generation/generation',
  chat: '/compatible-mode/v1/chat/completions',
  models: '/compatible-mode/v1/models',
  nativeEmbeddings: '/api/v1/services/embeddings/text-embedding/text-embedding',
  compatibleEmbeddings: '/compatible-mode/v1/embeddings',
} as const;

const running = new Set<Emulator>();

/** Starts an emulator that is closed after the current test. Streams are fast by default. */
export async function start(options: EmulatorOptions = {}): Promise<Emulator> {
  const emulator = await startEmulator({ chunkDelayMs: 5, ...options });
  running.add(emulator);
  return emulator;
}

afterEach(async () => {
  await Promise.all([...running].map((e) => e.close()));
  running.clear();
});

export function bearer(key: string = KEY): Record<string, string> {
  return { authorization: `Bearer ${key}` };
}

/** POSTs JSON to the emulator. */
export function postJson(
  emulator: Emulator,
  path: string,
  body: unknown,
  headers: Record<string, string> = bearer(),
  init: RequestInit = {},
): Promise<Response> {
  return fetch(emulator.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...init,
  });
}

/** Mints a temporary key with the default permanent key. */
export async function mint(
  emulator: Emulator,
  ttl?: number,
): Promise<{ token: string; expires_at: number }> {
  const query = ttl === undefined ? '' : `?expire_in_seconds=${ttl}`;
  const res = await fetch(`${emulator.url}${PATHS.tokens}${query}`, {
    method: 'POST',
    headers: bearer(),
  });
  if (res.status !== 200) throw new Error(`mint failed: ${res.status} ${await res.text()}`);
  return (await res.json()) as { token: string; expires_at: number };
}

export function chatBody(content = 'Hi there', extra: Record<string, unknown> = {}) {
  return { model: 'qwen-plus', messages: [{ role: 'user', content }], ...extra };
}

export function generationBody(content = 'Hi there', parameters?: Record<string, unknown>) {
  return {
    model: 'qwen-plus',
    input: { messages: [{ role: 'user', content }] },
    ...(parameters ? { parameters } : {}),
  };
}

/** One parsed native SSE frame. */
export interface NativeFrame {
  id?: string;
  event?: string;
  status?: number;
  data: unknown;
}

/** Parses a native Model Studio SSE body (`id:`, `event:`, `:HTTP_STATUS/`, `data:`). */
export function parseNativeSse(text: string): NativeFrame[] {
  return text
    .split('\n\n')
    .filter((block) => block.trim() !== '')
    .map((block) => {
      const frame: NativeFrame = { data: undefined };
      for (const line of block.split('\n')) {
        if (line.startsWith('id:')) frame.id = line.slice(3);
        else if (line.startsWith('event:')) frame.event = line.slice(6);
        else if (line.startsWith(':HTTP_STATUS/')) frame.status = Number(line.slice(13));
        else if (line.startsWith('data:')) frame.data = JSON.parse(line.slice(5));
      }
      return frame;
    });
}

/** Parses an OpenAI-compatible SSE body into its `data:` payloads (`[DONE]` kept as a string). */
export function parseCompatibleSse(text: string): unknown[] {
  return text
    .split('\n\n')
    .filter((block) => block.trim() !== '')
    .map((block) => {
      if (!block.startsWith('data: ')) throw new Error(`unexpected SSE block: ${block}`);
      const payload = block.slice(6);
      return payload === '[DONE]' ? payload : JSON.parse(payload);
    });
}
