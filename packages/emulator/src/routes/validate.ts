/** Shared checks of request bodies (model names, chat messages). */

import {
  compatibleModelNotFoundMessage,
  type Endpoint,
  findModel,
  type ModelInfo,
  NATIVE_MODEL_NOT_FOUND,
} from '../catalogue.js';
import type { Dialect } from '../responses.js';
import { contentText } from '../text.js';

const ROLES = new Set(['system', 'user', 'assistant', 'tool']);

/** A problem with a request body, as a message for a 400 answer; undefined when fine. */
export type Problem = string | undefined;

/** `model` must be a non-empty string. */
export function checkModel(model: unknown): Problem {
  if (typeof model !== 'string' || model.trim() === '')
    return 'Field required: model (a non-empty string).';
  return undefined;
}

/** `messages` must be a non-empty array of `{role, content}` with a known role. */
export function checkMessages(messages: unknown, field: string): Problem {
  if (!Array.isArray(messages) || messages.length === 0) {
    return `${field} must be a non-empty array of messages.`;
  }
  for (const [i, m] of messages.entries()) {
    if (typeof m !== 'object' || m === null || Array.isArray(m))
      return `${field}[${i}] must be an object.`;
    const { role, content } = m as { role?: unknown; content?: unknown };
    if (typeof role !== 'string' || !ROLES.has(role)) {
      return `${field}[${i}].role must be one of system, user, assistant, tool.`;
    }
    const ok =
      typeof content === 'string' ||
      Array.isArray(content) ||
      (role === 'assistant' && (content === null || content === undefined));
    if (!ok) return `${field}[${i}].content must be a string or an array of content parts.`;
  }
  return undefined;
}

/** All the text of a message list (for input token counts). */
export function allText(messages: ReadonlyArray<{ content?: unknown }>): string {
  return messages.map((m) => contentText(m.content)).join(' ');
}

/** A model looked up for an endpoint: found, or why not (`missing`: no model field at all). */
export type ModelLookup =
  | { model: ModelInfo }
  | { problem: 'missing'; message: string }
  | { problem: 'unknown'; message: string };

/**
 * Looks `model` up among the models `endpoints` serve. Unknown names, names in another case
 * and models of another endpoint are all unknown to the endpoint, as on Model Studio.
 */
export function lookUpModel(
  model: unknown,
  endpoints: readonly Endpoint[],
  dialect: Dialect,
): ModelLookup {
  const missing = checkModel(model);
  if (missing) return { problem: 'missing', message: missing };
  const found = findModel(model as string, endpoints);
  if (found) return { model: found };
  return {
    problem: 'unknown',
    message:
      dialect === 'compatible'
        ? compatibleModelNotFoundMessage(model as string)
        : NATIVE_MODEL_NOT_FOUND,
  };
}
