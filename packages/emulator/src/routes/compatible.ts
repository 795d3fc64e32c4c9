import { modelIds } from '../catalogue.js';
import { type AnswerPiece, answerPieces, type ChatAnswer, decideAnswer } from '../chat/answer.js';
import {
  type ChatMessage,
  type ChatRequest,
  RequestProblem,
  readChatRequest,
} from '../chat/request.js';
import type { Exchange } from '../exchange.js';
import { answerWithFault } from '../fault-answer.js';
import { compatibleError, customError } from '../responses.js';
import { compatibleFrame, runStream } from '../sse.js';
import { allText, checkMessages, lookUpModel } from './validate.js';

/** Models listed by `GET /compatible-mode/v1/models`: every chat, multimodal and embedding model. */
export const LISTED_MODELS: readonly string[] = modelIds(['chat', 'multimodal', 'embeddings']);

type Delta = Record<string, unknown>;

/** The `delta` of a compatible-mode chunk for one streamed piece. */
function deltaFor(piece: AnswerPiece): Delta {
  switch (piece.kind) {
    case 'reasoning':
      return { content: null, reasoning_content: piece.text };
    case 'content':
      return { content: piece.text };
    case 'tool':
      return {
        content: null,
        tool_calls: [
          piece.first
            ? {
                index: piece.index,
                id: piece.id,
                type: 'function',
                function: { name: piece.name, arguments: '' },
              }
            : { index: piece.index, function: { arguments: piece.arguments } },
        ],
      };
  }
}

function compatibleUsage(answer: ChatAnswer, n: number) {
  const completion = answer.usage.output * n;
  return {
    prompt_tokens: answer.usage.input,
    completion_tokens: completion,
    total_tokens: answer.usage.input + completion,
    ...(answer.reasoning !== ''
      ? { completion_tokens_details: { reasoning_tokens: answer.usage.reasoning * n } }
      : {}),
  };
}

function compatibleMessage(answer: ChatAnswer): Record<string, unknown> {
  return {
    role: 'assistant',
    content: answer.content,
    ...(answer.reasoning !== '' ? { reasoning_content: answer.reasoning } : {}),
    ...(answer.toolCalls.length > 0
      ? {
          tool_calls: answer.toolCalls.map((c, index) => ({
            index,
            id: c.id,
            type: 'function',
            function: { name: c.name, arguments: c.arguments },
          })),
        }
      : {}),
  };
}

/**
 * A model server that serves one model under its own name (vLLM's `--served-model-name`, as
 * deployed on PAI-EAS), answering like one of the catalogue's chat models.
 */
export interface ModelServer {
  /** The name clients must send as `model`, and the one answers carry. */
  name: string;
  lookUp(model: unknown): ReturnType<typeof lookUpModel>;
}

/**
 * OpenAI-compatible `POST /compatible-mode/v1/chat/completions`: a `chat.completion`, or with
 * `stream: true` `chat.completion.chunk` frames ending with `data: [DONE]`.
 */
export async function chatCompletionsRoute(ex: Exchange, modelServer?: ModelServer): Promise<void> {
  const auth = ex.authenticate();
  if (!auth) return;
  const body = ex.jsonBody();
  if (!body) return;
  const lookup =
    modelServer === undefined
      ? lookUpModel(body.model, ['chat', 'multimodal'], 'compatible')
      : modelServer.lookUp(body.model);
  if ('problem' in lookup) {
    ex.sendError(
      lookup.problem === 'missing' ? 'invalid-parameter' : 'model-not-found',
      lookup.message,
    );
    return;
  }
  const problem =
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
  const model = modelServer?.name ?? lookup.model.id;
  const messages = body.messages as ChatMessage[];
  let request: ChatRequest;
  try {
    request = readChatRequest(lookup.model, messages, body, body.stream === true);
  } catch (error) {
    if (!(error instanceof RequestProblem)) throw error;
    ex.sendError('invalid-parameter', error.message);
    return;
  }
  const answer = decideAnswer(request, ex.state.reply, ex.id, allText(messages));
  const streamOptions = (body.stream_options ?? {}) as { include_usage?: unknown };
  const id = `chatcmpl-${ex.id}`;
  const created = Math.floor(ex.state.clock.now());

  if (body.stream !== true) {
    if (ex.streamFault) return answerWithFault(ex, ex.streamFault, 'chat');
    ex.sendJson(200, {
      id,
      object: 'chat.completion',
      created,
      model,
      choices: Array.from({ length: request.n }, (_, index) => ({
        index,
        message: compatibleMessage(answer),
        finish_reason: answer.finishReason,
        logprobs: null,
      })),
      usage: compatibleUsage(answer, request.n),
      system_fingerprint: null,
    });
    return;
  }

  const includeUsage = streamOptions.include_usage === true;
  const chunk = (delta: Record<string, unknown>, finish: string | null, index = 0) => ({
    id,
    object: 'chat.completion.chunk',
    created,
    model,
    choices: [{ index, delta, finish_reason: finish, logprobs: null }],
    ...(includeUsage ? { usage: null } : {}),
    system_fingerprint: null,
  });
  const content = [
    compatibleFrame(chunk({ role: 'assistant', content: '' }, null)),
    ...answerPieces(answer).map((piece) => compatibleFrame(chunk(deltaFor(piece), null))),
  ];
  // With n > 1 each candidate streams under its own choice index, one after the other.
  for (let index = 1; index < request.n; index++) {
    content.push(compatibleFrame(chunk({ role: 'assistant', content: '' }, null, index)));
    for (const piece of answerPieces(answer))
      content.push(compatibleFrame(chunk(deltaFor(piece), null, index)));
  }
  const tail = Array.from({ length: request.n }, (_, index) =>
    compatibleFrame(chunk({}, answer.finishReason, index)),
  );
  if (includeUsage) {
    tail.push(
      compatibleFrame({
        id,
        object: 'chat.completion.chunk',
        created,
        model,
        choices: [],
        usage: compatibleUsage(answer, request.n),
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
