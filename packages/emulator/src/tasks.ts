/**
 * Async tasks (image synthesis): submitted with `X-DashScope-Async: enable`, then polled with
 * `GET /api/v1/tasks/{task_id}` (Text-to-image API reference,
 * https://www.alibabacloud.com/help/en/model-studio/text-to-image-v2-api-reference). A task
 * moves PENDING → RUNNING → SUCCEEDED (or FAILED) on the emulator's clock, so a test advances
 * it with `setClockOffset` instead of sleeping. Result URLs stay valid for 24 hours, as
 * documented.
 */
import { randomUUID } from 'node:crypto';

/** Seconds a task waits in the queue (PENDING) after its submission. */
export const TASK_PENDING_SECONDS = 1;
/** Seconds a task runs (RUNNING) before it ends. */
export const TASK_RUNNING_SECONDS = 2;
/** Seconds a result URL stays valid after the task ended (documented: 24 hours). */
export const RESULT_URL_SECONDS = 24 * 3600;
/** A prompt containing this ends its task FAILED (`DataInspectionFailed`), for failure tests. */
export const FAIL_MARKER = 'emulator-fail';

export type TaskStatus = 'PENDING' | 'RUNNING' | 'SUCCEEDED' | 'FAILED';

/** One submitted task. */
export interface Task {
  id: string;
  model: string;
  prompt: string;
  /** Images asked for. */
  n: number;
  size: string;
  /** Emulator time of submission, UNIX seconds. */
  submittedAt: number;
  fails: boolean;
}

/** The status of `task` at emulator time `now`. */
export function statusAt(task: Task, now: number): TaskStatus {
  const age = now - task.submittedAt;
  if (age < TASK_PENDING_SECONDS) return 'PENDING';
  if (age < TASK_PENDING_SECONDS + TASK_RUNNING_SECONDS) return 'RUNNING';
  return task.fails ? 'FAILED' : 'SUCCEEDED';
}

/** When `task` ended (or will end), emulator UNIX seconds. */
export function endsAt(task: Task): number {
  return task.submittedAt + TASK_PENDING_SECONDS + TASK_RUNNING_SECONDS;
}

/** Model Studio's time format in task answers: `2025-01-08 16:03:59.840` (UTC here). */
export function taskTime(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace('T', ' ').replace('Z', '');
}

/** The tasks submitted to one emulator. */
export class TaskStore {
  readonly #tasks = new Map<string, Task>();

  submit(fields: Omit<Task, 'id' | 'fails'>): Task {
    const task: Task = { ...fields, id: randomUUID(), fails: fields.prompt.includes(FAIL_MARKER) };
    this.#tasks.set(task.id, task);
    return task;
  }

  get(id: string): Task | undefined {
    return this.#tasks.get(id);
  }
}
