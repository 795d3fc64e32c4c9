/** Writes the handler's own answers (decided by the policy) onto a node:http response. */
import type { ServerResponse } from 'node:http';
import {
  type Answer,
  type ErrorAnswer,
  type ErrorDialect,
  errorAnswer,
} from '../policy/answers.js';
import { mergeVary } from '../policy/headers.js';

/** Sets flat `[name, value, …]` headers on `res`; a `Vary` is merged with the one already set. */
export function setHeaders(res: ServerResponse, headers: readonly string[]): void {
  for (let i = 0; i < headers.length; i += 2) setHeader(res, headers[i]!, headers[i + 1]!);
}

function setHeader(res: ServerResponse, name: string, value: string): void {
  if (name === 'vary') {
    const own = res.getHeader('vary');
    res.setHeader('vary', mergeVary(own === undefined ? undefined : String(own), value));
  } else res.setHeader(name, value);
}

/**
 * Writes `answer`. Headers already set on `res` (CORS) are kept. When the response has already
 * started (mid-stream), the connection is cut instead: the client sees a truncated response
 * rather than a spliced one.
 */
export function writeAnswer(res: ServerResponse, answer: Answer): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (res.destroyed || res.writableEnded) return;
  res.statusCode = answer.status;
  for (const name in answer.headers) setHeader(res, name, answer.headers[name]!);
  res.end(answer.body);
}

/** Writes the error `error` in `dialect` (see {@link writeAnswer}). */
export function sendError(
  res: ServerResponse,
  dialect: ErrorDialect,
  error: ErrorAnswer,
  requestId?: string,
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (res.destroyed || res.writableEnded) return;
  writeAnswer(res, errorAnswer(dialect, error, requestId));
}
