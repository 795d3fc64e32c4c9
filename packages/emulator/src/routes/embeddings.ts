import { refuseAsync } from '../async-calls.js';
import type { Exchange } from '../exchange.js';
import { countTokens } from '../text.js';
import { ALLOWED_DIMENSIONS, DEFAULT_DIMENSION, embed, toBase64 } from '../vectors.js';
import { lookUpModel } from './validate.js';

/** Largest batch of texts in one call (text-embedding-v3/v4 accept 10, older models 25). */
function maxBatch(model: string): number {
  return /-v[34]\b/.test(model) ? 10 : 25;
}

function checkTexts(texts: unknown, field: string, max: number): string | undefined {
  if (!Array.isArray(texts) || texts.length === 0)
    return `${field} must be a non-empty string or array of strings.`;
  if (texts.length > max) return `${field} may hold at most ${max} texts for this model.`;
  if (!texts.every((t) => typeof t === 'string' && t !== ''))
    return `${field} must hold non-empty strings.`;
  return undefined;
}

function checkDimension(value: unknown, field: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !ALLOWED_DIMENSIONS.includes(value)) {
    return `${field} must be one of ${ALLOWED_DIMENSIONS.join(', ')}.`;
  }
  return undefined;
}

/** Native `POST /api/v1/services/embeddings/text-embedding/text-embedding`. */
export function nativeEmbeddingsRoute(ex: Exchange) {
  const auth = ex.authenticate();
  if (!auth) return;
  const body = ex.jsonBody();
  if (!body) return;
  if (refuseAsync(ex)) return;
  const lookup = lookUpModel(body.model, ['embeddings'], 'native');
  if ('problem' in lookup) return ex.sendError('invalid-parameter', lookup.message);
  const model = lookup.model.id;
  const input = body.input;
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return ex.sendError('invalid-parameter', 'Field required: input (an object with texts).');
  }
  const raw = (input as { texts?: unknown }).texts;
  const texts = typeof raw === 'string' ? [raw] : raw;
  const parameters = body.parameters ?? {};
  if (typeof parameters !== 'object' || parameters === null || Array.isArray(parameters)) {
    return ex.sendError('invalid-parameter', 'parameters must be an object.');
  }
  const dimension = (parameters as { dimension?: unknown }).dimension;
  const problem =
    checkTexts(texts, 'input.texts', maxBatch(model)) ??
    checkDimension(dimension, 'parameters.dimension');
  if (problem) return ex.sendError('invalid-parameter', problem);
  const list = texts as string[];
  const dim = (dimension as number | undefined) ?? DEFAULT_DIMENSION;
  ex.sendJson(200, {
    output: { embeddings: list.map((text, i) => ({ text_index: i, embedding: embed(text, dim) })) },
    usage: { total_tokens: list.reduce((n, t) => n + countTokens(t), 0) },
    request_id: ex.id,
  });
}

/** OpenAI-compatible `POST /compatible-mode/v1/embeddings`. */
export function compatibleEmbeddingsRoute(ex: Exchange) {
  const auth = ex.authenticate();
  if (!auth) return;
  const body = ex.jsonBody();
  if (!body) return;
  const lookup = lookUpModel(body.model, ['embeddings'], 'compatible');
  if ('problem' in lookup) {
    return ex.sendError(
      lookup.problem === 'missing' ? 'invalid-parameter' : 'model-not-found',
      lookup.message,
    );
  }
  const model = lookup.model.id;
  const texts = typeof body.input === 'string' ? [body.input] : body.input;
  const format = body.encoding_format ?? 'float';
  const problem =
    checkTexts(texts, 'input', maxBatch(model)) ??
    checkDimension(body.dimensions, 'dimensions') ??
    (format !== 'float' && format !== 'base64'
      ? 'encoding_format must be "float" or "base64".'
      : undefined);
  if (problem) return ex.sendError('invalid-parameter', problem);
  const list = texts as string[];
  const dim = (body.dimensions as number | undefined) ?? DEFAULT_DIMENSION;
  const tokens = list.reduce((n, t) => n + countTokens(t), 0);
  ex.sendJson(200, {
    object: 'list',
    data: list.map((text, index) => {
      const vector = embed(text, dim);
      return {
        object: 'embedding',
        embedding: format === 'base64' ? toBase64(vector) : vector,
        index,
      };
    }),
    model,
    usage: { prompt_tokens: tokens, total_tokens: tokens },
    id: ex.id,
  });
}
