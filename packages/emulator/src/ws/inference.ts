/**
 * `/api-ws/v1/inference`: the speech protocol of Model Studio (CosyVoice / Sambert synthesis,
 * Paraformer / Fun-ASR recognition). The client sends JSON `run-task`, `continue-task` and
 * `finish-task` actions (and, for recognition, binary audio frames); the server answers with
 * `task-started`, `result-generated`, `task-finished` or `task-failed` events.
 */
import { findModel, NATIVE_MODEL_NOT_FOUND } from '../catalogue.js';
import type { Session } from './session.js';

/**
 * Billed characters of a text (CosyVoice "character calculation": a Chinese character —
 * also a Japanese kana or a Korean syllable — counts as 2, every other character as 1;
 * https://www.alibabacloud.com/help/en/model-studio/cosyvoice-websocket-api, "Billing").
 */
export function billedCharacters(text: string): number {
  let n = 0;
  for (const ch of text)
    n += /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]/u.test(ch)
      ? 2
      : 1;
  return n;
}

/** Bytes per second of the audio a recognition task is assumed to receive (16 kHz, 16-bit mono). */
const AUDIO_BYTES_PER_SECOND = 32_000;

interface Task {
  id: string;
  kind: 'asr' | 'tts';
  model: string;
  /** Recognition: binary frames and bytes received. */
  frames: number;
  bytes: number;
  /** Synthesis: characters synthesised and sentences sent. */
  characters: number;
  sentences: number;
}

/** A `task-failed` event. */
export function taskFailed(taskId: string, code: string, message: string): unknown {
  return {
    header: {
      task_id: taskId,
      event: 'task-failed',
      error_code: code,
      error_message: message,
      attributes: {},
    },
    payload: {},
  };
}

function event(taskId: string, name: string, payload: unknown): unknown {
  return { header: { task_id: taskId, event: name, attributes: {} }, payload };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The deterministic "audio" synthesised for `text`. */
export function synthesisedAudio(text: string): Buffer {
  return Buffer.from(`emulated-audio:${text}`, 'utf8');
}

/** One connection's protocol state. A connection runs one task at a time, any number in turn. */
export class InferenceProtocol {
  #task: Task | undefined;

  constructor(readonly session: Session) {}

  /** The id of the running task, or `''`. */
  get taskId(): string {
    return this.#task?.id ?? '';
  }

  /**
   * Sends `task-failed` and closes the connection: the server events reference says the
   * connection is closed after a task-failed event (CosyVoice server-side events,
   * https://www.alibabacloud.com/help/en/model-studio/cosyvoice-server-events).
   */
  #fail(taskId: string, code: string, message: string): void {
    this.#task = undefined;
    this.session.send(taskFailed(taskId, code, message));
    this.session.close(1000, 'task-failed');
  }

  onMessage(data: Buffer, isBinary: boolean): void {
    if (isBinary) {
      this.#onAudio(data);
      return;
    }
    let message: unknown;
    try {
      message = JSON.parse(data.toString('utf8'));
    } catch {
      this.#fail(this.taskId, 'InvalidParameter', 'The message is not valid JSON.');
      return;
    }
    const header = isObject(message) && isObject(message.header) ? message.header : undefined;
    const payload = isObject(message) && isObject(message.payload) ? message.payload : undefined;
    const taskId = typeof header?.task_id === 'string' ? header.task_id : '';
    if (header === undefined || taskId === '') {
      this.#fail(taskId, 'InvalidParameter', 'header.task_id is required.');
      return;
    }
    switch (header.action) {
      case 'run-task':
        this.#runTask(taskId, payload);
        return;
      case 'continue-task':
        this.#continueTask(taskId, payload);
        return;
      case 'finish-task':
        this.#finishTask(taskId);
        return;
      default:
        this.#fail(
          taskId,
          'InvalidParameter',
          'header.action must be run-task, continue-task or finish-task.',
        );
    }
  }

  #runTask(taskId: string, payload: Record<string, unknown> | undefined): void {
    if (this.#task !== undefined) {
      this.#fail(taskId, 'InvalidParameter', 'A task is already running on this connection.');
      return;
    }
    for (const field of ['task_group', 'task', 'function', 'model'] as const) {
      if (typeof payload?.[field] !== 'string' || payload[field] === '') {
        this.#fail(taskId, 'InvalidParameter', `payload.${field} is required.`);
        return;
      }
    }
    const task = payload?.task;
    if (task !== 'asr' && task !== 'tts') {
      this.#fail(taskId, 'InvalidParameter', 'payload.task must be asr or tts.');
      return;
    }
    if (!findModel(payload?.model as string, ['speech'])) {
      this.#fail(taskId, 'InvalidParameter', NATIVE_MODEL_NOT_FOUND);
      return;
    }
    const parameters = isObject(payload?.parameters) ? payload.parameters : {};
    // run-task reference: payload.parameters.voice is required for synthesis.
    if (task === 'tts' && (typeof parameters.voice !== 'string' || parameters.voice === '')) {
      this.#fail(taskId, 'InvalidParameter', 'payload.parameters.voice is required.');
      return;
    }
    this.#task = {
      id: taskId,
      kind: task,
      model: payload?.model as string,
      frames: 0,
      bytes: 0,
      characters: 0,
      sentences: 0,
    };
    this.session.send(event(taskId, 'task-started', {}));
  }

  #current(taskId: string): Task | undefined {
    const task = this.#task;
    if (task === undefined || task.id !== taskId) {
      this.#fail(taskId, 'InvalidParameter', 'No task with this task_id is running.');
      return undefined;
    }
    return task;
  }

  #continueTask(taskId: string, payload: Record<string, unknown> | undefined): void {
    const task = this.#current(taskId);
    if (task === undefined || task.kind === 'asr') return; // audio arrives in binary frames
    const input = isObject(payload?.input) ? payload.input : undefined;
    const text = input?.text;
    // `streaming_flush()` of the official SDK sends `input: {flush: true}` and no text
    // (dashscope-sdk-python, audio/tts_v2/speech_synthesizer.py, get_flush_request): the
    // emulator synthesises every text at once, so there is nothing buffered to flush.
    if (input?.flush === true && text === undefined) return;
    if (typeof text !== 'string' || text === '') {
      this.#fail(taskId, 'InvalidParameter', 'payload.input.text is required.');
      return;
    }
    // Server events reference: sentence-begin (original_text), sentence-synthesis followed by
    // one binary audio frame, sentence-end with the cumulative characters.
    task.characters += billedCharacters(text);
    const index = task.sentences++;
    const result = (output: Record<string, unknown>, usage?: unknown) =>
      event(taskId, 'result-generated', {
        output: { sentence: { index, words: [] }, ...output },
        ...(usage === undefined ? {} : { usage }),
      });
    if (!this.session.send(result({ type: 'sentence-begin', original_text: text }))) return;
    if (!this.session.send(result({ type: 'sentence-synthesis' }))) return;
    if (!this.session.send(synthesisedAudio(text))) return;
    this.session.send(
      result(
        {
          type: 'sentence-end',
          original_text: text,
          sentence: {
            index,
            words: [...text].map((ch, i) => ({
              text: ch,
              begin_index: i,
              end_index: i + 1,
              begin_time: i * 100,
              end_time: (i + 1) * 100,
            })),
          },
        },
        { characters: task.characters },
      ),
    );
  }

  #onAudio(data: Buffer): void {
    const task = this.#task;
    if (task === undefined || task.kind !== 'asr') {
      this.#fail(
        this.taskId,
        'InvalidParameter',
        'Binary audio frames need a running recognition (asr) task.',
      );
      return;
    }
    task.frames += 1;
    task.bytes += data.length;
    this.session.send(
      event(task.id, 'result-generated', {
        output: {
          sentence: {
            begin_time: 0,
            end_time: null,
            text: `Received ${task.frames} audio frames (${task.bytes} bytes).`,
            sentence_end: false,
            words: [],
          },
          frames_received: task.frames,
          bytes_received: task.bytes,
        },
        usage: null,
      }),
    );
  }

  #finishTask(taskId: string): void {
    const task = this.#current(taskId);
    if (task === undefined) return;
    this.#task = undefined;
    if (task.kind === 'asr') {
      const sent = this.session.send(
        event(taskId, 'result-generated', {
          output: {
            sentence: {
              begin_time: 0,
              end_time: Math.round((task.bytes / AUDIO_BYTES_PER_SECOND) * 1000),
              text: `Received ${task.frames} audio frames (${task.bytes} bytes).`,
              sentence_end: true,
              words: [],
            },
            frames_received: task.frames,
            bytes_received: task.bytes,
          },
          usage: { duration: Math.ceil(task.bytes / AUDIO_BYTES_PER_SECOND) },
        }),
      );
      if (!sent) return;
      this.session.send(
        event(taskId, 'task-finished', {
          output: { frames_received: task.frames, bytes_received: task.bytes },
          usage: { duration: Math.ceil(task.bytes / AUDIO_BYTES_PER_SECOND) },
        }),
      );
    } else {
      this.session.send(
        event(taskId, 'task-finished', { output: {}, usage: { characters: task.characters } }),
      );
    }
  }
}
