import type { Exchange } from '../exchange.js';
import { answerWithFault } from '../fault-answer.js';
import { compatibleError, customError } from '../responses.js';
import { compatibleFrame, runStream } from '../sse.js';
import { countTokens, lastUserText, splitIntoChunks } from '../text.js';
import { allText, checkMessages, checkModel } from './validate.js';

/** Models listed by `GET /compatible-mode/v1/models`. */
export const LISTED_MODELS: readonly string[] = [
  'qwen-plus',
  'qwen-turbo',
  'qwen-max',
  'qwen3-max',
  'qwen-flash',
  'text-embedding-v4',
  'text-embedding-v3',
];

/**
 * OpenAI-compatible `POST /compatible-mode/v1/chat/completions`: a `chat.completion`, or with
 * `stream: true` `chat.completion.chunk` frames ending with `data: [DONE]`.
 */
export async function chatCompletionsRoute(ex: Exchange): Promise<void> {
  const auth = ex.authenticate();
  if (!auth) return;
  const body = ex.jsonBody();
  if (!body) return;
  const problem =
    checkModel(body.model) ??
    checkMessages(body.messages, 'messages') ??
    (body.stream !== undefined && typeof body.stream !== 'boolean'
      ? 'stream must be a boolean.'
      : undefined) ??
    (body.stream_options !== undefined &&
    (typeof body.stream_options !== 'object' ||
      body.stream_options === null ||
      Array.isArray(body.stream_options))
      ? 'stream_options must be an object.'
      : undefined);
  if (problem) {
    ex.sendError('invalid-parameter', problem);
    return;
  }
  const model = body.model as string;
  const messages = body.messages as Array<{ role?: unknown; content?: unknown }>;
  const streamOptions = (body.stream_options ?? {}) as { include_usage?: unknown };
  const reply = ex.state.reply(lastUserText(messages), model);
  const promptTokens = countTokens(allText(messages));
  const completionTokens = countTokens(reply);
  const usage = {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
  };
  const id = `chatcmpl-${ex.id}`;
  const created = Math.floor(ex.state.clock.now());

  if (body.stream !== true) {
    if (ex.streamFault) return answerWithFault(ex, ex.streamFault, 'chat');
    ex.sendJson(200, {
      id,
      object: 'chat.completion',
      created,
      model,
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: reply },
          finish_reason: 'stop',
          logprobs: null,
        },
      ],
      usage,
      system_fingerprint: null,
    });
    return;
  }

  const includeUsage = streamOptions.include_usage === true;
  const chunk = (delta: Record<string, unknown>, finish: string | null) => ({
    id,
    object: 'chat.completion.chunk',
    created,
    model,
    choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }],
    ...(includeUsage ? { usage: null } : {}),
    system_fingerprint: null,
  });
  const content = [
    compatibleFrame(chunk({ role: 'assistant', content: '' }, null)),
    ...splitIntoChunks(reply).map((piece) => compatibleFrame(chunk({ content: piece }, null))),
  ];
  const tail = [compatibleFrame(chunk({}, 'stop'))];
  if (includeUsage) {
    tail.push(
      compatibleFrame({
        id,
        object: 'chat.completion.chunk',
        created,
        model,
        choices: [],
        usage,
        system_fingerprint: null,
      }),
    );
  }
  tail.push(compatibleFrame('[DONE]'));

  const fault = ex.streamFault;
  if (fault) {
    // The role frame plus `afterChunks` content frames.
    const kept = content.slice(0, Math.min((fault.afterChunks ?? 1) + 1, content.length));
    if (fault.type === 'stream-cut') return runStream(ex, kept, 'cut');
    const status = fault.status ?? 500;
    const error = customError(
      'compatible',
      status,
      fault.code ?? 'internal_error',
      fault.message ?? 'An internal error has occurred during streaming.',
      ex.id,
    );
    return runStream(ex, [...kept, compatibleFrame(error)]);
  }
  const expired = () =>
    compatibleFrame(
      compatibleError(
        'invalid_request_error',
        'invalid_api_key',
        'Incorrect API key provided.',
        ex.id,
      ),
    );
  return runStream(ex, [...content, ...tail], 'end', expired);
}

/** OpenAI-compatible `GET /compatible-mode/v1/models`. */
export function modelsRoute(ex: Exchange): void {
  const auth = ex.authenticate();
  if (!auth) return;
  const created = 1_700_000_000;
  ex.sendJson(200, {
    object: 'list',
    data: LISTED_MODELS.map((id) => ({ id, object: 'model', created, owned_by: 'system' })),
  });
}
