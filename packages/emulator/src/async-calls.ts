/**
 * `X-DashScope-Async: enable`: which endpoints take it. Image synthesis only answers async
 * (a task id, then `GET /api/v1/tasks/{task_id}`); text generation, multimodal generation and
 * embeddings refuse it. Both refusals are 403 `AccessDenied` (Error messages page,
 * https://www.alibabacloud.com/help/en/model-studio/error-code: "current user api does not
 * support asynchronous calls" / "… synchronous calls"; spring-ai-alibaba/spring-ai-extensions#166).
 */
import type { Exchange } from './exchange.js';

/** Message of the 403 a synchronous-only endpoint answers to an async request. */
export const ASYNC_REFUSED = 'current user api does not support asynchronous calls';
/** Message of the 403 an async-only endpoint answers to a synchronous request. */
export const SYNC_REFUSED = 'current user api does not support synchronous calls';

/** Whether the request has `X-DashScope-Async: enable`. */
export function asksAsync(ex: Exchange): boolean {
  const value = ex.req.headers['x-dashscope-async'];
  return typeof value === 'string' && value.trim().toLowerCase() === 'enable';
}

/** On a synchronous-only native endpoint: answers 403 and returns true when async was asked. */
export function refuseAsync(ex: Exchange): boolean {
  if (!asksAsync(ex)) return false;
  ex.sendError('access-denied', ASYNC_REFUSED);
  return true;
}
