import { describe, expect, it } from 'vitest';
import { SYNC_REFUSED } from '../src/async-calls.js';
import { FAIL_MARKER, TASK_PENDING_SECONDS, TASK_RUNNING_SECONDS } from '../src/index.js';
import { bearer, postJson, start } from './helpers.js';

const SYNTHESIS = '/api/v1/services/aigc/text2image/image-synthesis';
const ASYNC = { ...bearer(), 'X-DashScope-Async': 'enable' };

type TaskAnswer = {
  request_id: string;
  output: {
    task_id: string;
    task_status: string;
    results?: Array<{ url: string; orig_prompt: string }>;
    code?: string;
    task_metrics?: { TOTAL: number; SUCCEEDED: number; FAILED: number };
  };
  usage?: { image_count: number };
};

function body(prompt = 'a cat', parameters: Record<string, unknown> = { n: 2 }) {
  return { model: 'wan2.2-t2i-flash', input: { prompt }, parameters };
}

async function poll(url: string, taskId: string): Promise<TaskAnswer> {
  const res = await fetch(`${url}/api/v1/tasks/${taskId}`, { headers: bearer() });
  expect(res.status).toBe(200);
  return (await res.json()) as TaskAnswer;
}

describe('async image synthesis', () => {
  it('answers a task id, then PENDING → RUNNING → SUCCEEDED on the emulator clock, with result URLs it serves', async () => {
    const emulator = await start();
    const res = await postJson(emulator, SYNTHESIS, body(), ASYNC);
    expect(res.status).toBe(200);
    const submitted = (await res.json()) as TaskAnswer;
    expect(submitted.output.task_status).toBe('PENDING');
    const id = submitted.output.task_id;

    expect((await poll(emulator.url, id)).output.task_status).toBe('PENDING');
    emulator.setClockOffset(TASK_PENDING_SECONDS);
    expect((await poll(emulator.url, id)).output.task_status).toBe('RUNNING');
    emulator.setClockOffset(TASK_PENDING_SECONDS + TASK_RUNNING_SECONDS);
    const done = await poll(emulator.url, id);
    expect(done.output.task_status).toBe('SUCCEEDED');
    expect(done.output.task_metrics).toEqual({ TOTAL: 2, SUCCEEDED: 2, FAILED: 0 });
    expect(done.usage).toEqual({ image_count: 2 });
    const urls = done.output.results?.map((r) => r.url) ?? [];
    expect(urls).toHaveLength(2);
    const image = await fetch(urls[0] as string);
    expect(image.status).toBe(200);
    expect(image.headers.get('content-type')).toBe('image/png');
    expect((await image.arrayBuffer()).byteLength).toBeGreaterThan(8);

    // Result URLs expire 24 hours after the task ended.
    emulator.setClockOffset(TASK_PENDING_SECONDS + TASK_RUNNING_SECONDS + 24 * 3600);
    expect((await fetch(urls[0] as string)).status).toBe(403);
  });

  it(`ends FAILED when the prompt contains "${FAIL_MARKER}"`, async () => {
    const emulator = await start();
    const res = await postJson(emulator, SYNTHESIS, body(`a ${FAIL_MARKER} cat`), ASYNC);
    const id = ((await res.json()) as TaskAnswer).output.task_id;
    emulator.setClockOffset(TASK_PENDING_SECONDS + TASK_RUNNING_SECONDS);
    const failed = await poll(emulator.url, id);
    expect(failed.output).toMatchObject({ task_status: 'FAILED', code: 'DataInspectionFailed' });
    expect(failed.output.results).toBeUndefined();
  });

  it('refuses a synchronous image synthesis with 403 AccessDenied', async () => {
    const emulator = await start();
    const res = await postJson(emulator, SYNTHESIS, body());
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ code: 'AccessDenied', message: SYNC_REFUSED });
  });

  it.each([
    ['an unknown model', { ...body(), model: 'Wanx-V1' }],
    ['a chat model', { ...body(), model: 'qwen-plus' }],
    ['a missing prompt', { model: 'wanx-v1', input: {} }],
    ['n 5', body('x', { n: 5 })],
    ['a size out of range', body('x', { size: '4096*4096' })],
  ])('refuses %s with 400 InvalidParameter', async (_n, payload) => {
    const emulator = await start();
    const res = await postJson(emulator, SYNTHESIS, payload, ASYNC);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: 'InvalidParameter' });
  });

  it('answers UNKNOWN for a task id it never issued, and 401 without a key', async () => {
    const emulator = await start();
    expect((await poll(emulator.url, 'nope')).output).toEqual({
      task_id: 'nope',
      task_status: 'UNKNOWN',
    });
    expect((await fetch(`${emulator.url}/api/v1/tasks/nope`)).status).toBe(401);
  });
});
