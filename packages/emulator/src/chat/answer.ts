/**
 * What an emulated chat model answers, decided deterministically from the request, and the
 * pieces it is streamed in. The rule for tools (documented in the README):
 *
 * 1. No tools, or `tool_choice: "none"` → a text answer.
 * 2. The last message is a `tool` result → a text answer that quotes the results.
 * 3. `tool_choice` names a function → a call to it.
 * 4. Otherwise the tools whose names appear in the last user message are called (all of them
 *    when `parallel_tool_calls` is true, else the first); with `tool_choice: "required"` and
 *    no name mentioned, the first tool is called.
 *
 * Arguments (and `json_schema` answers) are generated from the JSON Schema
 * ({@link valueFor}); `json_object` answers `{"answer": <text>}`.
 */
import { contentText, countTokens, lastUserText, splitIntoChunks } from '../text.js';
import type { ChatMessage, ChatRequest, ToolSpec } from './request.js';
import { valueFor } from './schema-value.js';

/** One tool call of an answer. */
export interface ToolCall {
  id: string;
  name: string;
  arguments: string;
}

/** A decided answer. */
export interface ChatAnswer {
  reasoning: string;
  content: string;
  toolCalls: ToolCall[];
  finishReason: 'stop' | 'tool_calls' | 'length';
  usage: { input: number; output: number; reasoning: number };
}

/** A streamed piece: reasoning text, content text, or (part of) a tool call. */
export type AnswerPiece =
  | { kind: 'reasoning'; text: string }
  | { kind: 'content'; text: string }
  | { kind: 'tool'; index: number; id: string; name: string; arguments: string; first: boolean };

function mentioned(tools: ToolSpec[], text: string): ToolSpec[] {
  return tools.filter((t) =>
    new RegExp(
      `(^|[^A-Za-z0-9_])${t.name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}($|[^A-Za-z0-9_])`,
    ).test(text),
  );
}

function toolsToCall(req: ChatRequest, lastUser: string): ToolSpec[] {
  const { tools, toolChoice } = req;
  if (tools.length === 0 || toolChoice === 'none') return [];
  const last = req.messages[req.messages.length - 1];
  if (last?.role === 'tool') return [];
  if (typeof toolChoice === 'object') return tools.filter((t) => t.name === toolChoice.name);
  const named = mentioned(tools, lastUser);
  const chosen = named.length > 0 ? named : toolChoice === 'required' ? [tools[0] as ToolSpec] : [];
  return req.parallelToolCalls ? chosen : chosen.slice(0, 1);
}

function toolResultsText(messages: ChatMessage[]): string {
  const results: string[] = [];
  const names = new Map<unknown, string>();
  for (const m of messages) {
    if (m.role === 'assistant' && Array.isArray(m.tool_calls)) {
      for (const c of m.tool_calls as Array<{ id?: unknown; function?: { name?: unknown } }>)
        names.set(c?.id, typeof c?.function?.name === 'string' ? c.function.name : 'tool');
    }
  }
  for (let i = messages.length - 1; i >= 0 && messages[i]?.role === 'tool'; i--) {
    const m = messages[i] as ChatMessage;
    results.unshift(`${names.get(m.tool_call_id) ?? 'tool'} returned ${contentText(m.content)}`);
  }
  return `The tool results: ${results.join('; ')}.`;
}

/** Cuts `text` after `max` whitespace-separated tokens; whether it was cut. */
function truncate(text: string, max: number | undefined): [string, boolean] {
  if (max === undefined || countTokens(text) <= max) return [text, false];
  const words = text.match(/\s*\S+/g) ?? [];
  return [words.slice(0, max).join(''), true];
}

/**
 * Decides the answer to `req`. `reply` is the emulator's text for a prompt (the `reply`
 * option); `idSeed` makes tool-call ids unique per request.
 */
export function decideAnswer(
  req: ChatRequest,
  reply: (prompt: string, model: string) => string,
  idSeed: string,
  inputText: string,
): ChatAnswer {
  const lastUser = lastUserText(req.messages);
  const input = countTokens(inputText);
  let reasoning = '';
  if (req.thinking) {
    [reasoning] = truncate(
      `Thinking about "${lastUser}": the emulator reasons deterministically before it answers.`,
      req.thinking.budget,
    );
  }
  const calls = toolsToCall(req, lastUser);
  if (calls.length > 0) {
    const toolCalls = calls.map((t, i) => ({
      id: `call_${idSeed.replace(/-/g, '').slice(0, 16)}_${i}`,
      name: t.name,
      arguments: JSON.stringify(valueFor(t.parameters)),
    }));
    const output = toolCalls.reduce((n, c) => n + countTokens(c.arguments), 0);
    return {
      reasoning,
      content: '',
      toolCalls,
      finishReason: 'tool_calls',
      usage: { input, output: output + countTokens(reasoning), reasoning: countTokens(reasoning) },
    };
  }
  const last = req.messages[req.messages.length - 1];
  const text =
    last?.role === 'tool' ? toolResultsText(req.messages) : reply(lastUser, req.model.id);
  let content: string;
  let cut = false;
  const format = req.responseFormat;
  if (format.type === 'json_schema') content = JSON.stringify(valueFor(format.schema));
  else if (format.type === 'json_object') content = JSON.stringify({ answer: text });
  else [content, cut] = truncate(text, req.maxTokens);
  return {
    reasoning,
    content,
    toolCalls: [],
    finishReason: cut ? 'length' : 'stop',
    usage: {
      input,
      output: countTokens(content) + countTokens(reasoning),
      reasoning: countTokens(reasoning),
    },
  };
}

/** Splits a JSON text into at least two pieces (argument deltas). */
function argumentPieces(json: string): string[] {
  if (json.length < 2) return [json];
  const size = Math.max(1, Math.ceil(json.length / 4));
  const out: string[] = [];
  for (let i = 0; i < json.length; i += size) out.push(json.slice(i, i + size));
  return out;
}

/**
 * The pieces an answer is streamed in: reasoning first, then content, then each tool call
 * (its id and name with the first argument piece empty, then argument deltas), as Model Studio
 * streams them (Function calling guide, "streaming output").
 */
export function answerPieces(answer: ChatAnswer): AnswerPiece[] {
  const pieces: AnswerPiece[] = [];
  if (answer.reasoning !== '')
    for (const text of splitIntoChunks(answer.reasoning)) pieces.push({ kind: 'reasoning', text });
  if (answer.content !== '' || answer.toolCalls.length === 0)
    for (const text of splitIntoChunks(answer.content)) pieces.push({ kind: 'content', text });
  answer.toolCalls.forEach((call, index) => {
    pieces.push({ kind: 'tool', index, id: call.id, name: call.name, arguments: '', first: true });
    for (const args of argumentPieces(call.arguments))
      pieces.push({
        kind: 'tool',
        index,
        id: call.id,
        name: call.name,
        arguments: args,
        first: false,
      });
  });
  return pieces;
}
