import type { IncomingMessage } from 'node:http';
import { type Readable, Transform } from 'node:stream';
import { DashScopeError } from '../errors.js';
import { ClientGoneError } from './client-gone.js';

/** The 413 answer for a body larger than `limit` bytes. */
export function payloadTooLarge(limit: number): DashScopeError {
  return new DashScopeError({
    code: 'PayloadTooLarge',
    status: 413,
    retryable: false,
    message: `The request body exceeds the limit of ${limit} bytes.`,
  });
}

/** Whether `error` is the 413 of {@link payloadTooLarge} (also when undici hands it back). */
export function isPayloadTooLarge(error: unknown): error is DashScopeError {
  return error instanceof DashScopeError && error.code === 'PayloadTooLarge';
}

/** The body did not arrive within the time given to {@link readBody}. */
export class BodyTimeoutError extends Error {
  override readonly name = 'BodyTimeoutError';
  constructor() {
    super('The request body did not arrive in time.');
  }
}

/**
 * Reads the whole body of `req` into memory, refusing (413) beyond `limit` bytes without reading
 * the rest. Rejects with {@link ClientGoneError} when the client aborts, and with
 * {@link BodyTimeoutError} after `timeoutMs` (0 = never).
 */
export function readBody(req: IncomingMessage, limit: number, timeoutMs = 0): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const timer =
      timeoutMs > 0
        ? setTimeout(() => {
            if (settled) return;
            settled = true;
            cleanup();
            req.pause();
            reject(new BodyTimeoutError());
          }, timeoutMs)
        : undefined;
    const cleanup = (): void => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onGone);
      req.off('close', onGone);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        settled = true;
        cleanup();
        req.pause();
        reject(payloadTooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    // After the end, the listeners stay (nothing more is read; `close` follows and is ignored):
    // removing them costs more than it saves on the hot path.
    const onEnd = (): void => {
      settled = true;
      clearTimeout(timer);
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onGone = (): void => {
      if (settled) return;
      settled = true;
      cleanup();
      reject(new ClientGoneError());
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onGone);
    req.on('close', onGone);
  });
}

const ignore = (): void => {};

/**
 * `req` as a stream for undici that errors with 413 once more than `limit` bytes went through.
 * undici destroys the stream it is given when a request fails; handing it this pass-through
 * instead of `req` itself keeps the client's connection alive for the error answer.
 */
export function limitedBodyStream(req: IncomingMessage, limit: number): Readable {
  let size = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      size += chunk.length;
      if (size > limit) callback(payloadTooLarge(limit));
      else callback(null, chunk);
    },
  });
  // Failures are read from `stream.errored` (and by the exchange's own listener): none is
  // unhandled, even when the body fails before undici starts reading it.
  stream.on('error', ignore);
  req.once('error', () => stream.destroy(new ClientGoneError()));
  req.pipe(stream);
  return stream;
}

/** Whether a request body can be sent a second time (no body, or bytes in memory). */
export function isReplayable(body: unknown): boolean {
  return body === null || Buffer.isBuffer(body);
}

/**
 * A body a body parser already consumed, as bytes: Buffers and strings as they are, anything
 * else as JSON (`json: true`).
 */
export function serialiseParsedBody(parsed: unknown): { data: Buffer; json: boolean } {
  if (Buffer.isBuffer(parsed)) return { data: parsed, json: false };
  if (parsed instanceof Uint8Array) return { data: Buffer.from(parsed), json: false };
  if (typeof parsed === 'string') return { data: Buffer.from(parsed, 'utf8'), json: false };
  const text = JSON.stringify(parsed);
  return { data: Buffer.from(text === undefined ? '' : text, 'utf8'), json: true };
}
