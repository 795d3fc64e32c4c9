/**
 * `/api-ws/v1/realtime?model=…`: the realtime protocol of Qwen-Omni / TTS realtime, reduced to
 * what a proxy test needs. On connect the server sends `session.created`; `session.update`
 * gets `session.updated` (the session with the update merged in); `response.create` gets a
 * response (`response.created`, `response.text.delta`, `response.text.done`, `response.done`
 * with `response.usage`, as the Qwen-Omni-Realtime server events reference describes it);
 * every other message, text or binary, is echoed back unchanged, in order (the text of
 * `conversation.item.create` and the audio of `input_audio_buffer.append` are counted as the
 * next response's input).
 */
import { countTokens } from '../text.js';
import type { Session } from './session.js';

/** Bytes of input audio per second (pcm16, 16 kHz mono). */
const INPUT_AUDIO_BYTES_PER_SECOND = 32_000;
/** Tokens per second of input audio (Qwen-Omni: 25 tokens per second). */
const AUDIO_TOKENS_PER_SECOND = 25;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** An `error` event (sent by `stream-error` faults). */
export function realtimeError(eventId: string, code: string, message: string): unknown {
  return {
    event_id: eventId,
    type: 'error',
    error: { type: 'server_error', code, message, param: null, event_id: null },
  };
}

/** One connection's protocol state. */
export class RealtimeProtocol {
  #events = 0;
  #responses = 0;
  /** Input since the last response: texts of `conversation.item.create`, bytes of audio appended. */
  #inputText: string[] = [];
  #inputAudioBytes = 0;
  readonly #config: Record<string, unknown>;

  constructor(
    readonly session: Session,
    sessionId: string,
    model: string,
  ) {
    this.#config = {
      id: sessionId,
      object: 'realtime.session',
      model,
      modalities: ['text', 'audio'],
      voice: 'Chelsie',
      input_audio_format: 'pcm16',
      output_audio_format: 'pcm24',
      instructions: '',
      turn_detection: { type: 'server_vad', threshold: 0.5, silence_duration_ms: 800 },
    };
  }

  /** The next deterministic event id: `event_1`, `event_2`, … per connection. */
  nextEventId(): string {
    this.#events += 1;
    return `event_${this.#events}`;
  }

  start(): void {
    this.session.send({
      event_id: this.nextEventId(),
      type: 'session.created',
      session: { ...this.#config },
    });
  }

  onMessage(data: Buffer, isBinary: boolean): void {
    if (!isBinary) {
      let message: unknown;
      try {
        message = JSON.parse(data.toString('utf8'));
      } catch {
        message = undefined;
      }
      if (isObject(message) && message.type === 'session.update') {
        if (isObject(message.session)) {
          for (const [key, value] of Object.entries(message.session)) {
            if (key !== 'id' && key !== 'object' && key !== 'model') this.#config[key] = value;
          }
        }
        this.session.send({
          event_id: this.nextEventId(),
          type: 'session.updated',
          session: { ...this.#config },
        });
        return;
      }
      if (isObject(message) && message.type === 'response.create') {
        this.#respond();
        return;
      }
      if (isObject(message)) this.#noteInput(message);
    }
    this.session.echo(data, isBinary);
  }

  #noteInput(message: Record<string, unknown>): void {
    if (message.type === 'input_audio_buffer.append' && typeof message.audio === 'string') {
      this.#inputAudioBytes += Buffer.from(message.audio, 'base64').length;
    }
    const item = isObject(message.item) ? message.item : undefined;
    if (message.type === 'conversation.item.create' && Array.isArray(item?.content)) {
      for (const part of item.content) {
        if (isObject(part) && typeof part.text === 'string') this.#inputText.push(part.text);
      }
    }
  }

  /**
   * One response: the reply `Emulated reply to: <the input's text>`; usage counts whitespace
   * words as tokens, and 25 tokens per second of input audio (rounded up).
   */
  #respond(): void {
    this.#responses += 1;
    const id = `resp_${this.#responses}`;
    const said = this.#inputText.join(' ');
    const text = said === '' ? 'Emulated reply.' : `Emulated reply to: ${said}`;
    const textTokens = countTokens(said);
    const audioTokens = Math.ceil(
      (this.#inputAudioBytes / INPUT_AUDIO_BYTES_PER_SECOND) * AUDIO_TOKENS_PER_SECOND,
    );
    this.#inputText = [];
    this.#inputAudioBytes = 0;
    const outputTokens = countTokens(text);
    const response = { id, object: 'realtime.response', conversation_id: 'conv_1' };
    const item = {
      id: `item_${this.#responses}`,
      object: 'realtime.item',
      type: 'message',
      role: 'assistant',
      content: [{ type: 'text', text }],
    };
    const send = (type: string, fields: Record<string, unknown>) =>
      this.session.send({ event_id: this.nextEventId(), type, ...fields });
    if (
      !send('response.created', {
        response: { ...response, status: 'in_progress', output: [], usage: null },
      })
    )
      return;
    const at = { response_id: id, item_id: item.id, output_index: 0, content_index: 0 };
    if (!send('response.text.delta', { ...at, delta: text })) return;
    if (!send('response.text.done', { ...at, text })) return;
    send('response.done', {
      response: {
        ...response,
        status: 'completed',
        modalities: ['text'],
        output: [item],
        usage: {
          total_tokens: textTokens + audioTokens + outputTokens,
          input_tokens: textTokens + audioTokens,
          output_tokens: outputTokens,
          input_tokens_details: {
            text_tokens: textTokens,
            audio_tokens: audioTokens,
            cached_tokens: 0,
          },
          output_tokens_details: { text_tokens: outputTokens, audio_tokens: 0 },
        },
      },
    });
  }
}
