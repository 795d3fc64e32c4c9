import type { WebSocket } from 'ws';
import type { EmulatorFault, RecordedRequest } from '../types.js';

/** A `stream-error` / `stream-cut` fault applied to a WebSocket session. */
export type SessionFault = Extract<EmulatorFault, { type: 'stream-error' | 'stream-cut' }>;

/** What a protocol sends when a `stream-error` fault fires: its own error event. */
export type FailureEvent = (code: string, message: string) => unknown;

/**
 * One accepted WebSocket: counts what the client sends (into the recording), sends events, and
 * applies a `stream-error`/`stream-cut` fault once `afterChunks` messages were sent.
 */
export class Session {
  /** Messages sent to the client so far. */
  #sent = 0;
  /** Set once the emulator itself closed or cut the connection. */
  serverClosed = false;
  #failed = false;

  constructor(
    readonly ws: WebSocket,
    readonly record: RecordedRequest,
    readonly fault: SessionFault | undefined,
    readonly failureEvent: FailureEvent,
  ) {}

  /** Whether the session can still send. */
  get open(): boolean {
    return !this.#failed && this.ws.readyState === this.ws.OPEN;
  }

  /**
   * Sends a JSON event (objects) or a binary frame (Buffers). Returns false when nothing was
   * sent (closed, or a fault fired instead).
   */
  send(message: unknown): boolean {
    if (!this.open) return false;
    const fault = this.fault;
    if (fault && this.#sent >= (fault.afterChunks ?? 1)) {
      this.#failed = true;
      this.serverClosed = true;
      if (fault.type === 'stream-cut') {
        // The connection dies without a close frame, as a crashed server's would.
        this.ws.terminate();
      } else {
        const event = this.failureEvent(
          fault.code ?? 'SystemError',
          fault.message ?? 'An internal error has occurred during the session.',
        );
        this.ws.send(JSON.stringify(event));
        this.ws.close(1011, 'stream-error');
      }
      return false;
    }
    this.#sent += 1;
    if (Buffer.isBuffer(message)) this.ws.send(message, { binary: true });
    else this.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
    return true;
  }

  /** Closes the session from the emulator's side (after sending what it had to). */
  close(code: number, reason = ''): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    this.serverClosed = true;
    this.ws.close(code, reason);
  }

  /** Sends a message as received (echo), keeping its opcode. */
  echo(data: Buffer, isBinary: boolean): boolean {
    return this.send(isBinary ? data : data.toString('utf8'));
  }
}
