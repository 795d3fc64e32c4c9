import { refuseAsync } from '../async-calls.js';
import { type AnswerPiece, answerPieces, type ChatAnswer, decideAnswer } from '../chat/answer.js';
import {
  type ChatMessage,
  type ChatRequest,
  RequestProblem,
  readChatRequest,
} from '../chat/request.js';
import type { Exchange } from '../exchange.js';
import { answerWithFault } from '../fault-answer.js';
import { nativeError } from '../responses.js';
import { nativeFrame, runStream, wantsNativeSse } from '../sse.js';
import { countTokens } from '../text.js';
import { allText, checkMessages, lookUpModel } from './validate.js';

type ResultFormat = 'text' | 'message';

interface NativeToolCall {
  index: number;
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** The text of a native answer so far (or of one delta). */
interface NativeState {
  reasoning: string;
  content: string;
  toolCalls: NativeToolCall[];
}

function emptyState(): NativeState {
  return { reasoning: '', content: '', toolCalls: [] };
}

function wholeState(answer: ChatAnswer): NativeState {
  return {
    reasoning: answer.reasoning,
    content: answer.content,
    toolCalls: answer.toolCalls.map((c, index) => ({
      index,
      id: c.id,
      type: 'function',
      function: { name: c.name, arguments: c.arguments },
    })),
  };
}

/** Adds a streamed piece to `state`. */
function apply(state: NativeState, piece: AnswerPiece): void {
  if (piece.kind === 'reasoning') state.reasoning += piece.text;
  else if (piece.kind === 'content') state.content += piece.text;
  else {
    let call = state.toolCalls.find((c) => c.index === piece.index);
    if (!call) {
      call = {
        index: piece.index,
        id: piece.id,
        type: 'function',
        function: { name: piece.name, arguments: '' },
      };
      state.toolCalls.push(call);
    }
    call.function.arguments += piece.arguments;
  }
}

/**
 * Native generation: `POST /api/v1/services/aigc/text-generation/generation` and
 * `/api/v1/services/aigc/multimodal-generation/generation`. Plain JSON, or SSE when the
 * request has `X-DashScope-SSE: enable` or `Accept: text/event-stream`.
 */
export async function generationRoute(ex: Exchange): Promise<void> {
  const auth = ex.authenticate();
  if (!auth) return;
  const sse = wantsNativeSse(ex);
  const multimodal = ex.pathname.includes('/multimodal-generation/');
  const fail = (message: string) => {
    if (!sse) {
      ex.sendError('invalid-parameter', message);
      return;
    }
    // In SSE mode Model Studio reports request errors as an `event:error` frame.
    ex.startStream(400);
    ex.write(nativeFrame(1, 'error', 400, nativeError('InvalidParameter', message, ex.id)));
    ex.end();
  };

  const body = ex.jsonBody();
  if (!body) return;
  if (refuseAsync(ex)) return;
  const lookup = lookUpModel(body.model, [multimodal ? 'multimodal' : 'chat'], 'native');
  if ('problem' in lookup) return fail(lookup.message);
  const info = lookup.model;

  const input = body.input;
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return fail('Field required: input (an object with messages or prompt).');
  }
  const { messages, prompt } = input as { messages?: unknown; prompt?: unknown };
  let list: ChatMessage[];
  if (messages !== undefined) {
    const problem = checkMessages(messages, 'input.messages');
    if (problem) return fail(problem);
    list = messages as ChatMessage[];
  } else if (typeof prompt === 'string' && prompt !== '') {
    list = [{ role: 'user', content: prompt }];
  } else {
    return fail('input must contain messages (a non-empty array) or prompt (a non-empty string).');
  }

  const parameters = body.parameters ?? {};
  if (typeof parameters !== 'object' || parameters === null || Array.isArray(parameters)) {
    return fail('parameters must be an object.');
  }
  const params = parameters as Record<string, unknown>;
  const { result_format, incremental_output } = params;
  if (result_format !== undefined && result_format !== 'text' && result_format !== 'message') {
    return fail('parameters.result_format must be "text" or "message".');
  }
  if (incremental_output !== undefined && typeof incremental_output !== 'boolean') {
    return fail('parameters.incremental_output must be a boolean.');
  }
  let request: ChatRequest;
  try {
    request = readChatRequest(info, list, params, sse);
  } catch (error) {
    if (!(error instanceof RequestProblem)) throw error;
    return fail(error.message);
  }
  const asked =
    (result_format as ResultFormat | undefined) ?? (multimodal ? 'message' : info.resultFormats[0]);
  // A model that only answers `message` does so even when asked for `text` (API reference:
  // "qwen3-max … only supports message"); tools and thinking answer in `message` too (Function
  // calling and Deep thinking guides: "set result_format to message").
  const format: ResultFormat =
    asked === 'text' &&
    info.resultFormats.includes('text') &&
    request.tools.length === 0 &&
    !request.thinking
      ? 'text'
      : 'message';
  const incremental = incremental_output === true;
  const answer = decideAnswer(request, ex.state.reply, ex.id, allText(list));

  const usage = (output: number, reasoning: number) => ({
    input_tokens: answer.usage.input,
    output_tokens: output,
    total_tokens: answer.usage.input + output,
    ...(answer.reasoning !== '' ? { output_tokens_details: { reasoning_tokens: reasoning } } : {}),
  });
  const render = (state: NativeState, finish: string) => {
    const output =
      format === 'text'
        ? { text: state.content, finish_reason: finish }
        : {
            choices: [
              {
                finish_reason: finish,
                message: {
                  role: 'assistant',
                  content: multimodal ? [{ text: state.content }] : state.content,
                  ...(state.reasoning !== '' ? { reasoning_content: state.reasoning } : {}),
                  ...(state.toolCalls.length > 0 ? { tool_calls: state.toolCalls } : {}),
                },
              },
            ],
          };
    return { output, request_id: ex.id };
  };

  if (!sse) {
    if (ex.streamFault) return answerWithFault(ex, ex.streamFault, 'generation');
    ex.sendJson(200, {
      ...render(wholeState(answer), answer.finishReason),
      usage: usage(answer.usage.output, answer.usage.reasoning),
    });
    return;
  }

  const pieces = answerPieces(answer);
  const sofar = emptyState();
  let reasoningTokens = 0;
  let outputTokens = 0;
  const frames = pieces.map((piece, i) => {
    const delta = emptyState();
    apply(delta, piece);
    apply(sofar, piece);
    if (piece.kind === 'reasoning') reasoningTokens = countTokens(sofar.reasoning);
    outputTokens =
      countTokens(sofar.reasoning) +
      countTokens(sofar.content) +
      sofar.toolCalls.reduce((n, c) => n + countTokens(c.function.arguments), 0);
    const last = i === pieces.length - 1;
    const data = render(
      incremental ? delta : structuredClone(sofar),
      last ? answer.finishReason : 'null',
    );
    // Usage always counts everything produced so far.
    return nativeFrame(i + 1, 'result', 200, {
      ...data,
      usage: usage(outputTokens, reasoningTokens),
    });
  });

  const fault = ex.streamFault;
  if (fault) {
    const kept = frames.slice(0, Math.min(fault.afterChunks ?? 1, frames.length));
    if (fault.type === 'stream-cut') return runStream(ex, kept, 'cut');
    const status = fault.status ?? 500;
    const error = nativeError(
      fault.code ?? 'SystemError',
      fault.message ?? 'An internal error has occurred during streaming.',
      ex.id,
    );
    return runStream(ex, [...kept, nativeFrame(kept.length + 1, 'error', status, error)]);
  }
  const expired = (sent: number) =>
    nativeFrame(
      sent + 1,
      'error',
      401,
      nativeError('InvalidApiKey', 'Invalid API-key provided.', ex.id),
    );
  return runStream(ex, frames, 'end', expired);
}
