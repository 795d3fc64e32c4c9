/**
 * The models the emulator serves, per endpoint, with what each supports. Taken from Model
 * Studio's model list and API references (https://www.alibabacloud.com/help/en/model-studio/models,
 * "Qwen API reference" https://www.alibabacloud.com/help/en/model-studio/use-qwen-by-calling-api,
 * deep thinking https://www.alibabacloud.com/help/en/model-studio/deep-thinking, embeddings
 * https://www.alibabacloud.com/help/en/model-studio/embedding, CosyVoice
 * https://www.alibabacloud.com/help/en/model-studio/cosyvoice-websocket-api, image generation
 * https://www.alibabacloud.com/help/en/model-studio/text-to-image). Model names are matched
 * exactly, case included, as Model Studio does (`Qwen-Plus` is unknown).
 */

/** An endpoint family: the set of models one API path serves. */
export type Endpoint = 'chat' | 'multimodal' | 'embeddings' | 'speech' | 'realtime' | 'image';

/**
 * Whether and how a model thinks (deep thinking): `none` (cannot), `optional` (with
 * `enable_thinking`; `defaultOn` says what happens without it), `always` (thinking-only).
 */
export type Thinking =
  | { kind: 'none' }
  | { kind: 'optional'; defaultOn: boolean; maxBudget: number }
  | { kind: 'always'; maxBudget: number };

/** One model of the catalogue. */
export interface ModelInfo {
  id: string;
  endpoint: Endpoint;
  /** Chat models: deep thinking. */
  thinking: Thinking;
  /** Chat models: function calling (`tools`). */
  tools: boolean;
  /** Chat models: image input. */
  vision: boolean;
  /** Context window, tokens (0 when not a chat model). */
  contextTokens: number;
  /** Largest `max_tokens` accepted. */
  maxOutputTokens: number;
  /** Native `result_format` values the model answers with; the first is the default. */
  resultFormats: readonly ('text' | 'message')[];
  /** Largest `n` (candidates per request); 1 when `n` is not supported. */
  maxN: number;
  /** Structured output (`response_format`). */
  structuredOutput: boolean;
}

const NO_THINKING: Thinking = { kind: 'none' };

function chat(
  id: string,
  contextTokens: number,
  maxOutputTokens: number,
  more: Partial<ModelInfo> = {},
): ModelInfo {
  return {
    id,
    endpoint: 'chat',
    thinking: NO_THINKING,
    tools: true,
    vision: false,
    contextTokens,
    maxOutputTokens,
    resultFormats: ['text', 'message'],
    maxN: 1,
    structuredOutput: true,
    ...more,
  };
}

function other(id: string, endpoint: Endpoint): ModelInfo {
  return {
    id,
    endpoint,
    thinking: NO_THINKING,
    tools: false,
    vision: false,
    contextTokens: 0,
    maxOutputTokens: 0,
    resultFormats: ['message'],
    maxN: 1,
    structuredOutput: false,
  };
}

/**
 * The catalogue. Limits are the documented ones (model list, "Models" page): e.g. qwen-max
 * 32,768 context / 8,192 output; qwen-plus 131,072 / 16,384 with optional thinking and `n` up
 * to 4; qwen3-max 262,144 / 65,536 answering only `message` (API reference: "qwen3-max …
 * only supports message"); qwq-plus thinks always and only streams.
 */
export const MODELS: readonly ModelInfo[] = [
  chat('qwen-max', 32_768, 8_192),
  chat('qwen-max-latest', 131_072, 8_192),
  chat('qwen-plus', 131_072, 16_384, {
    thinking: { kind: 'optional', defaultOn: false, maxBudget: 38_912 },
    maxN: 4,
  }),
  chat('qwen-plus-latest', 131_072, 16_384, {
    thinking: { kind: 'optional', defaultOn: false, maxBudget: 38_912 },
    maxN: 4,
  }),
  chat('qwen-turbo', 1_000_000, 16_384, {
    thinking: { kind: 'optional', defaultOn: false, maxBudget: 38_912 },
  }),
  chat('qwen-flash', 1_000_000, 32_768, {
    thinking: { kind: 'optional', defaultOn: false, maxBudget: 81_920 },
  }),
  chat('qwen3-max', 262_144, 65_536, { resultFormats: ['message'] }),
  // Open-source Qwen3 on Model Studio: thinking on unless `enable_thinking: false`.
  chat('qwen3-32b', 131_072, 16_384, {
    thinking: { kind: 'optional', defaultOn: true, maxBudget: 38_912 },
    resultFormats: ['message'],
  }),
  chat('qwen3-235b-a22b', 131_072, 16_384, {
    thinking: { kind: 'optional', defaultOn: true, maxBudget: 38_912 },
    resultFormats: ['message'],
  }),
  chat('qwq-plus', 131_072, 8_192, {
    thinking: { kind: 'always', maxBudget: 32_768 },
    resultFormats: ['message'],
    structuredOutput: false,
  }),
  chat('qwen-vl-max', 131_072, 8_192, {
    endpoint: 'multimodal',
    vision: true,
    resultFormats: ['message'],
  }),
  chat('qwen-vl-plus', 131_072, 8_192, {
    endpoint: 'multimodal',
    vision: true,
    resultFormats: ['message'],
  }),
  other('text-embedding-v1', 'embeddings'),
  other('text-embedding-v2', 'embeddings'),
  other('text-embedding-v3', 'embeddings'),
  other('text-embedding-v4', 'embeddings'),
  other('cosyvoice-v1', 'speech'),
  other('cosyvoice-v2', 'speech'),
  other('cosyvoice-v3-flash', 'speech'),
  other('cosyvoice-v3-plus', 'speech'),
  other('paraformer-realtime-v1', 'speech'),
  other('paraformer-realtime-v2', 'speech'),
  other('fun-asr-realtime', 'speech'),
  other('qwen-omni-turbo-realtime', 'realtime'),
  other('qwen3-omni-flash-realtime', 'realtime'),
  other('qwen-tts-realtime', 'realtime'),
  other('qwen3-tts-flash-realtime', 'realtime'),
  other('wanx-v1', 'image'),
  other('wanx2.1-t2i-turbo', 'image'),
  other('wan2.2-t2i-flash', 'image'),
  other('wan2.2-t2i-plus', 'image'),
];

const BY_ID = new Map(MODELS.map((m) => [m.id, m]));

/** The model `id` if it exists and is served by one of `endpoints`. */
export function findModel(id: string, endpoints: readonly Endpoint[]): ModelInfo | undefined {
  const model = BY_ID.get(id);
  return model && endpoints.includes(model.endpoint) ? model : undefined;
}

/** Ids of the models served by `endpoints`, in catalogue order. */
export function modelIds(endpoints: readonly Endpoint[]): string[] {
  return MODELS.filter((m) => endpoints.includes(m.endpoint)).map((m) => m.id);
}

/** Compatible-mode answer to an unknown model (404 `model_not_found`), as Model Studio words it. */
export function compatibleModelNotFoundMessage(model: string): string {
  return `The model \`${model}\` does not exist or you do not have access to it.`;
}

/** Native answer to an unknown model (400 `InvalidParameter`). */
export const NATIVE_MODEL_NOT_FOUND = 'Model not exist.';
