/**
 * `/api-ws/v1/realtime?model=…`: the realtime protocol of Qwen-Omni / TTS realtime, reduced to
 * what a proxy test needs. On connect the server sends `session.created`; `session.update`
 * gets `session.updated` (the session with the update merged in); every other message, text or
 * binary, is echoed back unchanged, in order.
 */
import type { Session } from './session.js';

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
    }
    this.session.echo(data, isBinary);
  }
}
