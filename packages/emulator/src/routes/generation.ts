import type { Exchange } from '../exchange.js';
import { answerWithFault } from '../fault-answer.js';
import { nativeError } from '../responses.js';
import { nativeFrame, runStream, wantsNativeSse } from '../sse.js';
import { countTokens, lastUserText, splitIntoChunks } from '../text.js';
import { allText, checkMessages, checkModel } from './validate.js';

type ResultFormat = 'text' | 'message';

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
  const modelProblem = checkModel(body.model);
  if (modelProblem) return fail(modelProblem);
  const model = body.model as string;

  const input = body.input;
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return fail('Field required: input (an object with messages or prompt).');
  }
  const { messages, prompt } = input as { messages?: unknown; prompt?: unknown };
  let promptText: string;
  let inputText: string;
  if (messages !== undefined) {
    const problem = checkMessages(messages, 'input.messages');
    if (problem) return fail(problem);
    const list = messages as Array<{ role?: unknown; content?: unknown }>;
    promptText = lastUserText(list);
    inputText = allText(list);
  } else if (typeof prompt === 'string' && prompt !== '') {
    promptText = prompt;
    inputText = prompt;
  } else {
    return fail('input must contain messages (a non-empty array) or prompt (a non-empty string).');
  }

  const parameters = body.parameters ?? {};
  if (typeof parameters !== 'object' || parameters === null || Array.isArray(parameters)) {
    return fail('parameters must be an object.');
  }
  const { result_format, incremental_output } = parameters as Record<string, unknown>;
  if (result_format !== undefined && result_format !== 'text' && result_format !== 'message') {
    return fail('parameters.result_format must be "text" or "message".');
  }
  if (incremental_output !== undefined && typeof incremental_output !== 'boolean') {
    return fail('parameters.incremental_output must be a boolean.');
  }
  const format: ResultFormat =
    (result_format as ResultFormat | undefined) ?? (multimodal ? 'message' : 'text');
  const incremental = incremental_output === true;

  const reply = ex.state.reply(promptText, model);
  const inputTokens = countTokens(inputText);
  const answer = (text: string, finish: 'stop' | 'null') => {
    const outputTokens = countTokens(text);
    const output =
      format === 'text'
        ? { text, finish_reason: finish }
        : {
            choices: [
              {
                finish_reason: finish,
                message: { role: 'assistant', content: multimodal ? [{ text }] : text },
              },
            ],
          };
    return {
      output,
      usage: {
        input_tokens: inputTokens,
        output_tokens: outputTokens,
        total_tokens: inputTokens + outputTokens,
      },
      request_id: ex.id,
    };
  };

  if (!sse) {
    if (ex.streamFault) return answerWithFault(ex, ex.streamFault, 'generation');
    ex.sendJson(200, answer(reply, 'stop'));
    return;
  }

  const chunks = splitIntoChunks(reply);
  let cumulative = '';
  const frames = chunks.map((chunk, i) => {
    cumulative += chunk;
    const last = i === chunks.length - 1;
    const data = answer(incremental ? chunk : cumulative, last ? 'stop' : 'null');
    // Usage always counts everything produced so far.
    const outputTokens = countTokens(cumulative);
    data.usage = {
      input_tokens: inputTokens,
      output_tokens: outputTokens,
      total_tokens: inputTokens + outputTokens,
    };
    return nativeFrame(i + 1, 'result', 200, data);
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
