import type { IncomingMessage } from 'node:http';

/** Largest request body accepted (10 MiB); larger ones get 413. */
export const BODY_LIMIT = 10 * 1024 * 1024;

/** Beyond this many bytes an over-limit upload is cut off instead of drained. */
const DRAIN_LIMIT = 64 * 1024 * 1024;

/** A request body as read. */
export interface ReadBody {
  /** The body, or its first {@link BODY_LIMIT} bytes when too large. */
  data: Buffer;
  /** Whether the body exceeded the limit. */
  tooLarge: boolean;
  /** Whether the client finished sending (false when it went away mid-upload). */
  complete: boolean;
}

/**
 * Reads the request body up to `limit` bytes. A larger body is drained and discarded (so the
 * client can still read the 413), unless it exceeds 64 MiB, where the socket is destroyed.
 */
export async function readBody(req: IncomingMessage, limit = BODY_LIMIT): Promise<ReadBody> {
  const chunks: Buffer[] = [];
  let size = 0;
  let total = 0;
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > DRAIN_LIMIT) {
    req.socket.destroy();
    return { data: Buffer.alloc(0), tooLarge: true, complete: false };
  }
  try {
    for await (const chunk of req) {
      const buf = chunk as Buffer;
      total += buf.length;
      if (total > DRAIN_LIMIT) {
        req.socket.destroy();
        return { data: Buffer.concat(chunks), tooLarge: true, complete: false };
      }
      if (size + buf.length <= limit) {
        chunks.push(buf);
        size += buf.length;
      } else if (size < limit) {
        chunks.push(buf.subarray(0, limit - size));
        size = limit;
      }
    }
  } catch {
    return { data: Buffer.concat(chunks), tooLarge: total > limit, complete: false };
  }
  return { data: Buffer.concat(chunks), tooLarge: total > limit, complete: req.complete };
}
