/**
 * A chat request of either dialect (native `parameters.*` or OpenAI-compatible top-level
 * fields), read into one shape and checked against Model Studio's documented ranges and rules.
 *
 * Sources of the rules and their wording (Model Studio answers `<400>
 * InternalError.Algo.InvalidParameter: …` in both dialects):
 * - temperature in [0, 2): API reference "temperature … Range: [0, 2)"; message as answered live
 *   (mnfst/modelparams.dev#232: "Temperature should be in [0.0, 2.0)").
 * - top_p in (0, 1]: API reference "Required range: 0 < x <= 1"; message "Range of top_p should
 *   be (0.0, 1.0]" (ChatGPTNextWeb/NextChat#4772 shows the older "(0.0, 1.0)").
 * - max_tokens in [1, model limit]: message "Range of max_tokens should be [1, 8192]" for
 *   qwen-max (open-webui/open-webui#10507, anomalyco/opencode#16971).
 * - n in [1, 4]: API reference "n … Value range: 1 to 4" (message worded like the others).
 * - a `tool` message needs an assistant `tool_calls` before it: 'messages with role "tool" must
 *   be a response to a preceeding message with "tool_calls".' (philschmid/mcp-openai-gemini-llama-example#5);
 *   an assistant `tool_calls` message must be answered: agentscope-ai/agentscope#772.
 * - `response_format: json_object` needs the word "json" in the messages: "'messages' must
 *   contain the word 'json' in some form, to use 'response_format' of type 'json_object'."
 *   (agno-agi/agno#5317; Structured output guide: "the prompt must contain the keyword JSON").
 * - thinking: "parameter.enable_thinking must be set to false for non-streaming calls"
 *   (infiniflow/ragflow#8972, OpenBMB/UltraRAG#287); a thinking-only model without stream:
 *   "This model only support stream mode, please enable the stream parameter to access the
 *   model." (Error messages page, https://www.alibabacloud.com/help/en/model-studio/error-code).
 */
import type { ModelInfo } from '../catalogue.js';
import { contentText } from '../text.js';

/** A chat message as received (OpenAI shape, also used natively). */
export interface ChatMessage {
  role: string;
  content?: unknown;
  tool_calls?: unknown;
  tool_call_id?: unknown;
  name?: unknown;
}

/** A function tool offered to the model. */
export interface ToolSpec {
  name: string;
  description?: string;
  parameters: unknown;
}

/** What the request asks the answer to look like. */
export type ResponseFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | { type: 'json_schema'; name: string; schema: unknown };

/** `tool_choice`, normalised. */
export type ToolChoice = 'auto' | 'none' | 'required' | { name: string };

/** A checked chat request. */
export interface ChatRequest {
  model: ModelInfo;
  messages: ChatMessage[];
  stream: boolean;
  maxTokens: number | undefined;
  n: number;
  tools: ToolSpec[];
  toolChoice: ToolChoice;
  parallelToolCalls: boolean;
  responseFormat: ResponseFormat;
  /** Whether the answer thinks, and its budget in tokens. */
  thinking: { budget: number } | undefined;
}

/** The prefix Model Studio's algorithm layer puts on parameter errors. */
export const ALGO = '<400> InternalError.Algo.InvalidParameter:';

/** A failed check: a message for a 400 `InvalidParameter` answer. */
export class RequestProblem extends Error {}

function fail(message: string): never {
  throw new RequestProblem(message);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optionalNumber(value: unknown, name: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) fail(`${name} must be a number.`);
  return value;
}

function checkRanges(p: Record<string, unknown>, model: ModelInfo): void {
  const temperature = optionalNumber(p.temperature, 'temperature');
  if (temperature !== undefined && !(temperature >= 0 && temperature < 2))
    fail(`${ALGO} Temperature should be in [0.0, 2.0)`);
  const topP = optionalNumber(p.top_p, 'top_p');
  if (topP !== undefined && !(topP > 0 && topP <= 1))
    fail(`${ALGO} Range of top_p should be (0.0, 1.0]`);
  const presence = optionalNumber(p.presence_penalty, 'presence_penalty');
  if (presence !== undefined && !(presence >= -2 && presence <= 2))
    fail(`${ALGO} Range of presence_penalty should be [-2.0, 2.0]`);
  const maxTokens = optionalNumber(p.max_tokens, 'max_tokens');
  if (
    maxTokens !== undefined &&
    !(Number.isInteger(maxTokens) && maxTokens >= 1 && maxTokens <= model.maxOutputTokens)
  ) {
    fail(`${ALGO} Range of max_tokens should be [1, ${model.maxOutputTokens}]`);
  }
  const n = optionalNumber(p.n, 'n');
  if (n !== undefined && !(Number.isInteger(n) && n >= 1 && n <= 4))
    fail(`${ALGO} Range of n should be [1, 4]`);
}

function toolCallIds(m: ChatMessage): string[] {
  if (!Array.isArray(m.tool_calls)) return [];
  return m.tool_calls.map((c) => (isObject(c) && typeof c.id === 'string' ? c.id : ''));
}

/** Message-ordering rules of tool calling. */
function checkOrdering(messages: ChatMessage[]): void {
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i] as ChatMessage;
    if (m.role === 'tool') {
      let j = i - 1;
      while (j >= 0 && messages[j]?.role === 'tool') j--;
      const before = messages[j];
      if (before?.role !== 'assistant' || toolCallIds(before).length === 0) {
        fail(
          `${ALGO} messages with role "tool" must be a response to a preceeding message with "tool_calls".`,
        );
      }
    }
    const ids = m.role === 'assistant' ? toolCallIds(m) : [];
    if (ids.length > 0) {
      const answered = new Set<unknown>();
      for (let j = i + 1; j < messages.length && messages[j]?.role === 'tool'; j++)
        answered.add(messages[j]?.tool_call_id);
      if (ids.some((id) => !answered.has(id))) {
        fail(
          `${ALGO} An assistant message with "tool_calls" must be followed by tool messages responding to each "tool_call_id". The following tool_call_ids did not have response messages: message[${i + 1}].role`,
        );
      }
    }
  }
}

function readTools(value: unknown): ToolSpec[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) fail('tools must be an array.');
  return value.map((t, i) => {
    const fn = isObject(t) ? t.function : undefined;
    if (!isObject(t) || t.type !== 'function' || !isObject(fn) || typeof fn.name !== 'string')
      fail(`tools[${i}] must be {"type":"function","function":{"name",…}}.`);
    return {
      name: fn.name,
      ...(typeof fn.description === 'string' ? { description: fn.description } : {}),
      parameters: fn.parameters ?? { type: 'object', properties: {} },
    };
  });
}

function readToolChoice(value: unknown, tools: ToolSpec[]): ToolChoice {
  if (value === undefined || value === null || value === 'auto') return 'auto';
  if (value === 'none' || value === 'required') return value;
  const fn = isObject(value) ? value.function : undefined;
  if (isObject(value) && value.type === 'function' && isObject(fn) && typeof fn.name === 'string') {
    if (!tools.some((t) => t.name === fn.name))
      fail(`${ALGO} tool_choice names a function that is not in tools: ${fn.name}`);
    return { name: fn.name };
  }
  return fail(
    'tool_choice must be "auto", "none", "required" or {"type":"function","function":{"name"}}.',
  );
}

function readResponseFormat(value: unknown, messages: ChatMessage[]): ResponseFormat {
  if (value === undefined || value === null) return { type: 'text' };
  if (!isObject(value)) fail('response_format must be an object.');
  switch (value.type) {
    case 'text':
      return { type: 'text' };
    case 'json_object': {
      const text = messages.map((m) => contentText(m.content)).join(' ');
      if (!/json/i.test(text)) {
        fail(
          `${ALGO} 'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.`,
        );
      }
      return { type: 'json_object' };
    }
    case 'json_schema': {
      const spec = value.json_schema;
      if (!isObject(spec) || !isObject(spec.schema))
        fail('response_format.json_schema.schema must be a JSON Schema object.');
      return {
        type: 'json_schema',
        name: typeof spec.name === 'string' ? spec.name : 'response',
        schema: spec.schema,
      };
    }
    default:
      return fail('response_format.type must be text, json_object or json_schema.');
  }
}

function readThinking(
  p: Record<string, unknown>,
  model: ModelInfo,
  stream: boolean,
): { budget: number } | undefined {
  const { enable_thinking, thinking_budget } = p;
  if (enable_thinking !== undefined && typeof enable_thinking !== 'boolean')
    fail('enable_thinking must be a boolean.');
  const t = model.thinking;
  if (t.kind === 'none') return undefined; // documented: no effect on models that cannot think
  if (t.kind === 'always' && !stream)
    fail(
      'This model only support stream mode, please enable the stream parameter to access the model.',
    );
  const on = t.kind === 'always' || (enable_thinking ?? t.defaultOn);
  if (!on) return undefined;
  if (!stream) fail('parameter.enable_thinking must be set to false for non-streaming calls');
  const budget = optionalNumber(thinking_budget, 'thinking_budget');
  if (budget !== undefined && !(Number.isInteger(budget) && budget >= 1 && budget <= t.maxBudget))
    fail(`${ALGO} Range of thinking_budget should be [1, ${t.maxBudget}]`);
  return { budget: budget ?? t.maxBudget };
}

/**
 * Reads and checks the chat fields of a request. `p` holds the parameters (top level in
 * compatible mode, `parameters` natively); `messages` were shape-checked already. Throws a
 * {@link RequestProblem} on the first rule broken.
 */
export function readChatRequest(
  model: ModelInfo,
  messages: ChatMessage[],
  p: Record<string, unknown>,
  stream: boolean,
): ChatRequest {
  checkRanges(p, model);
  checkOrdering(messages);
  const tools = readTools(p.tools);
  const toolChoice = readToolChoice(p.tool_choice, tools);
  if (p.parallel_tool_calls !== undefined && typeof p.parallel_tool_calls !== 'boolean')
    fail('parallel_tool_calls must be a boolean.');
  const responseFormat = readResponseFormat(p.response_format, messages);
  return {
    model,
    messages,
    stream,
    maxTokens: p.max_tokens as number | undefined,
    n: model.maxN > 1 ? ((p.n as number | undefined) ?? 1) : 1,
    tools,
    toolChoice,
    // Model Studio's default is false (API reference: parallel_tool_calls, default false).
    parallelToolCalls: p.parallel_tool_calls === true,
    responseFormat,
    thinking: readThinking(p, model, stream),
  };
}
