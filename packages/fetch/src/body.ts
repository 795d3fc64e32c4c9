/**
 * Request bodies as Web streams: read whole within a limit, or streamed through a limit; a
 * body of unknown length is held in memory when it turns out small enough to be replayed.
 */
import { concatBytes } from '@dashscope-token/core/neutral';

/** A request body over the limit: answered 413. */
export class BodyTooLargeError extends Error {
  override readonly name = 'BodyTooLargeError';
}

/** What {@link readUpTo} found: the whole body, or its start and the rest still to read. */
export type Peeked =
  | { done: true; bytes: Uint8Array }
  | {
      done: false;
      head: Uint8Array[];
      size: number;
      reader: ReadableStreamDefaultReader<Uint8Array>;
    };

/**
 * Reads `body` until it ends or more than `hold` bytes came.
 * @throws BodyTooLargeError beyond `limit` bytes (the rest is not read)
 */
export async function readUpTo(
  body: ReadableStream<Uint8Array>,
  hold: number,
  limit: number,
  timeoutMs = 0,
): Promise<Peeked> {
  const reader = body.getReader();
  const head: Uint8Array[] = [];
  let size = 0;
  let timedOut = false;
  const timer =
    timeoutMs > 0
      ? setTimeout(() => {
          timedOut = true;
          reader.cancel().catch(() => {});
        }, timeoutMs)
      : undefined;
  try {
    return await readLoop();
  } finally {
    clearTimeout(timer);
  }

  async function readLoop(): Promise<Peeked> {
    for (;;) {
      const { done, value } = await reader.read();
      if (timedOut) throw new BodyTimeoutError();
      if (done) return { done: true, bytes: concatBytes(head) };
      size += value.byteLength;
      if (size > limit) {
        reader.cancel().catch(() => {});
        throw new BodyTooLargeError();
      }
      head.push(value);
      if (size > hold) return { done: false, head, size, reader };
    }
  }
}

/** The body did not arrive within the time given to {@link readUpTo}. */
export class BodyTimeoutError extends Error {
  override readonly name = 'BodyTimeoutError';
  constructor() {
    super('The request body did not arrive in time.');
  }
}

/**
 * The rest of a peeked body (its `head`, then what `reader` still gives) as a stream that
 * errors with {@link BodyTooLargeError} (and calls `onTooLarge`) beyond `limit` bytes.
 */
export function limitedStream(
  head: readonly Uint8Array[],
  size: number,
  reader: ReadableStreamDefaultReader<Uint8Array>,
  limit: number,
  onTooLarge: () => void,
): ReadableStream<Uint8Array> {
  let pending = head.slice();
  let total = size;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (pending.length > 0) {
        controller.enqueue(pending.shift()!);
        return;
      }
      pending = [];
      const { done, value } = await reader.read();
      if (done) {
        controller.close();
        return;
      }
      total += value.byteLength;
      if (total > limit) {
        onTooLarge();
        reader.cancel().catch(() => {});
        controller.error(new BodyTooLargeError());
        return;
      }
      controller.enqueue(value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
}
