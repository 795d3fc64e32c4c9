import type { Exchange } from './exchange.js';
import { sleep } from './sleep.js';

/** A native Model Studio SSE frame: `id:`, `event:`, `:HTTP_STATUS/`, `data:`. */
export function nativeFrame(
  id: number,
  event: 'result' | 'error',
  status: number,
  data: unknown,
): string {
  return `id:${id}\nevent:${event}\n:HTTP_STATUS/${status}\ndata:${JSON.stringify(data)}\n\n`;
}

/** An OpenAI-compatible SSE frame: `data: <json>` (or `data: [DONE]`). */
export function compatibleFrame(data: unknown): string {
  return `data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`;
}

/** How a stream ends after its frames. */
export type StreamEnd = 'end' | 'cut';

/**
 * Streams `frames` for real: headers flushed at once, the first frame right away, then one
 * frame every `chunkDelayMs` (read at each step, so changing it applies mid-stream).
 * Stops as soon as the client goes away or the emulator closes. `cut` destroys the socket
 * after the last frame instead of ending the answer. With `failStreamsOnExpiry`, a stream
 * whose temporary key expired ends early with `expiredFrame(framesSent)`.
 */
export async function runStream(
  ex: Exchange,
  frames: readonly string[],
  end: StreamEnd = 'end',
  expiredFrame?: (framesSent: number) => string,
): Promise<void> {
  ex.startStream();
  for (let i = 0; i < frames.length; i++) {
    if (i > 0 && !(await sleep(ex.state.chunkDelayMs, ex.signal))) return;
    if (i > 0 && expiredFrame && ex.state.failStreamsOnExpiry && ex.credentialExpired) {
      ex.write(expiredFrame(i));
      ex.end();
      return;
    }
    if (!ex.write(frames[i] as string)) return;
  }
  if (end === 'cut') {
    // Give the last frame a moment to leave before the connection dies.
    if (!(await sleep(Math.max(10, ex.state.chunkDelayMs), ex.signal))) return;
    ex.reset();
    return;
  }
  ex.end();
}

/** Whether the request asks for a native SSE answer (`X-DashScope-SSE: enable` or `Accept: text/event-stream`). */
export function wantsNativeSse(ex: Exchange): boolean {
  const sse = ex.req.headers['x-dashscope-sse'];
  if (typeof sse === 'string' && sse.trim().toLowerCase() === 'enable') return true;
  const accept = ex.req.headers.accept;
  return typeof accept === 'string' && /(^|,)\s*text\/event-stream/i.test(accept);
}
