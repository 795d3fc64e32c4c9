/**
 * Image synthesis (`POST /api/v1/services/aigc/text2image/image-synthesis`), `GET
 * /api/v1/tasks/{task_id}` and the result files. Shapes from the Text-to-image API reference
 * (https://www.alibabacloud.com/help/en/model-studio/text-to-image-v2-api-reference) and the
 * official SDK (dashscope-sdk-python `dashscope/aigc/image_synthesis.py`: task group `aigc`,
 * task `text2image`, function `image-synthesis`, submitted with `X-DashScope-Async: enable`).
 * Limits: `prompt` at most 800 characters, `n` 1..4, `size` `W*H` with W and H in 512..1440.
 */
import { asksAsync, SYNC_REFUSED } from '../async-calls.js';
import type { Exchange } from '../exchange.js';
import { nativeError } from '../responses.js';
import {
  endsAt,
  RESULT_URL_SECONDS,
  statusAt,
  TASK_PENDING_SECONDS,
  type Task,
  taskTime,
} from '../tasks.js';
import { lookUpModel } from './validate.js';

/** Path prefix of the result files the emulator serves. */
export const FILES_PREFIX = '/emulator-files/';
/** Path prefix of task queries. */
export const TASKS_PREFIX = '/api/v1/tasks/';

/** A valid 1×1 PNG: the "image" every task produces. */
export const EMULATED_PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==',
  'base64',
);

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `POST /api/v1/services/aigc/text2image/image-synthesis`: only async; answers a task id. */
export function imageSynthesisRoute(ex: Exchange) {
  const auth = ex.authenticate();
  if (!auth) return;
  const body = ex.jsonBody();
  if (!body) return;
  if (!asksAsync(ex)) return ex.sendError('access-denied', SYNC_REFUSED);
  const lookup = lookUpModel(body.model, ['image'], 'native');
  if ('problem' in lookup) return ex.sendError('invalid-parameter', lookup.message);
  const input = isObject(body.input) ? body.input : undefined;
  const prompt = input?.prompt;
  if (typeof prompt !== 'string' || prompt === '')
    return ex.sendError('invalid-parameter', 'Field required: input.prompt');
  if ([...prompt].length > 800)
    return ex.sendError('invalid-parameter', 'input.prompt must be at most 800 characters.');
  const params = body.parameters ?? {};
  if (!isObject(params)) return ex.sendError('invalid-parameter', 'parameters must be an object.');
  const n = params.n ?? 4;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 4)
    return ex.sendError('invalid-parameter', 'parameters.n must be an integer between 1 and 4.');
  const size = params.size ?? '1024*1024';
  const m = typeof size === 'string' ? /^(\d+)\*(\d+)$/.exec(size) : null;
  const inRange = (v: string | undefined) => Number(v) >= 512 && Number(v) <= 1440;
  if (!m || !inRange(m[1]) || !inRange(m[2])) {
    return ex.sendError(
      'invalid-parameter',
      'parameters.size must be "W*H" with W and H between 512 and 1440.',
    );
  }
  const task = ex.state.tasks.submit({
    model: lookup.model.id,
    prompt,
    n,
    size: size as string,
    submittedAt: ex.state.clock.now(),
  });
  ex.sendJson(200, { output: { task_status: 'PENDING', task_id: task.id }, request_id: ex.id });
}

function taskOutput(ex: Exchange, task: Task): Record<string, unknown> {
  const now = ex.state.clock.now();
  const status = statusAt(task, now);
  const base = {
    task_id: task.id,
    task_status: status,
    submit_time: taskTime(task.submittedAt),
    ...(status !== 'PENDING'
      ? { scheduled_time: taskTime(task.submittedAt + TASK_PENDING_SECONDS) }
      : {}),
  };
  if (status === 'PENDING' || status === 'RUNNING') {
    return { ...base, task_metrics: { TOTAL: task.n, SUCCEEDED: 0, FAILED: 0 } };
  }
  const end = { end_time: taskTime(endsAt(task)) };
  if (status === 'FAILED') {
    return {
      ...base,
      ...end,
      code: 'DataInspectionFailed',
      message: 'Input data may contain inappropriate content.',
      task_metrics: { TOTAL: task.n, SUCCEEDED: 0, FAILED: task.n },
    };
  }
  return {
    ...base,
    ...end,
    results: Array.from({ length: task.n }, (_, i) => ({
      orig_prompt: task.prompt,
      actual_prompt: task.prompt,
      url: `${ex.state.baseUrl}${FILES_PREFIX}${task.id}/${i}.png`,
    })),
    task_metrics: { TOTAL: task.n, SUCCEEDED: task.n, FAILED: 0 },
  };
}

/**
 * `GET /api/v1/tasks/{task_id}`: the task's state now. An unknown id answers 200 with
 * `task_status: "UNKNOWN"` (API reference: "UNKNOWN: the task does not exist or its status
 * cannot be determined").
 */
export function taskRoute(ex: Exchange): void {
  const auth = ex.authenticate();
  if (!auth) return;
  const id = decodeURIComponent(ex.pathname.slice(TASKS_PREFIX.length));
  const task = ex.state.tasks.get(id);
  if (!task) {
    ex.sendJson(200, { request_id: ex.id, output: { task_id: id, task_status: 'UNKNOWN' } });
    return;
  }
  const output = taskOutput(ex, task);
  ex.sendJson(200, {
    request_id: ex.id,
    output,
    ...(output.task_status === 'SUCCEEDED' ? { usage: { image_count: task.n } } : {}),
  });
}

/**
 * `GET /emulator-files/{task_id}/{n}.png`: a result image. Like the signed URLs Model Studio
 * hands out, it needs no key, exists once the task succeeded and expires 24 hours later.
 */
export function fileRoute(ex: Exchange): void {
  const m = /^([^/]+)\/(\d+)\.png$/.exec(ex.pathname.slice(FILES_PREFIX.length));
  const task = m ? ex.state.tasks.get(m[1] as string) : undefined;
  const now = ex.state.clock.now();
  if (!m || !task || statusAt(task, now) !== 'SUCCEEDED' || Number(m[2]) >= task.n) {
    ex.sendJson(404, nativeError('NotFound', 'The requested file does not exist.', ex.id));
    return;
  }
  if (now >= endsAt(task) + RESULT_URL_SECONDS) {
    ex.sendJson(403, nativeError('AccessDenied', 'Request has expired.', ex.id));
    return;
  }
  ex.send(200, EMULATED_PNG, { 'Content-Type': 'image/png' });
}
