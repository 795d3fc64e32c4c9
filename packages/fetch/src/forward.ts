/**
 * One upstream exchange through `fetch`: the request (streamed with `duplex: 'half'` when its
 * body is a stream), the wait for response headers bounded by `headersTimeoutMs`, and the
 * relay of the answer body chunk by chunk (SSE unbuffered), cut after `bodyTimeoutMs` without
 * bytes; the upstream call is aborted when the client goes away.
 */
import {
  filterResponseHeaders,
  type RelayMeter,
  type TransportFailure,
} from '@dashscope-token/core/neutral';
import { appendHeaders, isBodyless } from './answer.js';

/** One request to send upstream. */
export interface UpstreamCall {
  url: string;
  method: string;
  /** Flat `[name, value, …]`, the injected `authorization` last. */
  headers: readonly string[];
  body: Uint8Array | ReadableStream<Uint8Array> | null;
  headersTimeoutMs: number;
  /** Aborts the call: the client went away, or the handler closes. */
  signal: AbortSignal;
}

/** How the exchange went before any byte of the answer. */
export type Exchange =
  | { kind: 'answer'; response: Response }
  | { kind: 'failed'; failure: TransportFailure }
  /** The call was aborted by `signal`. */
  | { kind: 'aborted' };

function pairs(flat: readonly string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i]!, flat[i + 1]!]);
  return out;
}

/** Sends `call` with `fetchImpl`; never rejects. */
export async function exchange(fetchImpl: typeof fetch, call: UpstreamCall): Promise<Exchange> {
  const controller = new AbortController();
  let timedOut = false;
  const onAbort = () => controller.abort();
  if (call.signal.aborted) return { kind: 'aborted' };
  call.signal.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, call.headersTimeoutMs);
  const init: RequestInit & { duplex?: 'half' } = {
    method: call.method,
    headers: pairs(call.headers),
    redirect: 'manual',
    signal: controller.signal,
  };
  if (call.body !== null) {
    init.body = call.body as NonNullable<RequestInit['body']>;
    if (!(call.body instanceof Uint8Array)) init.duplex = 'half';
  }
  try {
    // `call.signal` keeps aborting the call while its answer body is relayed.
    const response = await fetchImpl(call.url, init);
    return { kind: 'answer', response };
  } catch {
    call.signal.removeEventListener('abort', onAbort);
    if (call.signal.aborted) return { kind: 'aborted' };
    return { kind: 'failed', failure: timedOut ? 'timeout' : 'unreachable' };
  } finally {
    clearTimeout(timer);
  }
}

/** Headers of a relayed answer: upstream's, filtered, after the request's CORS headers. */
function relayHeaders(
  upstream: Response,
  cors: readonly string[],
): { headers: Headers; eventStream: boolean } {
  const record: Record<string, string | string[]> = {};
  upstream.headers.forEach((value, name) => {
    record[name] = value;
  });
  // fetch decoded the body already: its encoding and length are not the ones relayed.
  if (record['content-encoding'] !== undefined) {
    delete record['content-encoding'];
    delete record['content-length'];
  }
  const filtered = filterResponseHeaders(record);
  const headers = new Headers();
  appendHeaders(headers, cors);
  appendHeaders(headers, filtered.headers);
  if (filtered.eventStream) headers.set('x-accel-buffering', 'no');
  return { headers, eventStream: filtered.eventStream };
}

/**
 * The answer for the client: upstream's status and filtered headers, and its body relayed
 * chunk by chunk. `done` is called once, when the body ended, failed, was cut or cancelled.
 * A `meter` (metering active) reads each chunk on the side and says what the client gets of it.
 */
export function relay(
  upstream: Response,
  method: string,
  cors: readonly string[],
  bodyTimeoutMs: number,
  abortUpstream: () => void,
  done: () => void,
  sendTimeoutMs = 0,
  meter?: RelayMeter,
): Response {
  const { headers } = relayHeaders(upstream, cors);
  const source = upstream.body;
  meter?.answer(upstream.status, (name) => upstream.headers.get(name) ?? undefined);
  if (source === null || isBodyless(upstream.status, method)) {
    source?.cancel().catch(() => {});
    meter?.end(true);
    done();
    return new Response(null, { status: upstream.status, headers });
  }
  const reader = source.getReader();
  let finished = false;
  let idle: ReturnType<typeof setTimeout> | undefined;
  /** Armed after a chunk is queued; the client's next read (a pull) disarms it. */
  let stall: ReturnType<typeof setTimeout> | undefined;
  /** `complete`: the body reached its end (else it failed, was cut or cancelled). */
  const finish = (complete = false) => {
    if (finished) return;
    finished = true;
    clearTimeout(idle);
    clearTimeout(stall);
    meter?.end(complete);
    done();
  };
  /** Stops reading upstream, aborts the call and cuts the client's answer with `message`. */
  const cut = (controller: ReadableStreamDefaultController<Uint8Array>, message: string) => {
    abortUpstream();
    reader.cancel().catch(() => {});
    controller.error(new Error(message));
    finish();
  };
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      clearTimeout(stall);
      let chunk: Awaited<ReturnType<typeof reader.read>>;
      let value!: Uint8Array;
      try {
        // A chunk the meter holds back whole (`meterStreams`) is followed by the next one.
        do {
          if (bodyTimeoutMs > 0) {
            clearTimeout(idle);
            idle = setTimeout(
              () => cut(controller, 'Model Studio sent nothing within bodyTimeoutMs.'),
              bodyTimeoutMs,
            );
          }
          chunk = await reader.read();
          if (chunk.done) break;
          value = meter === undefined ? chunk.value : meter.chunk(chunk.value);
        } while (value.length === 0 && !finished);
      } catch (error) {
        // Mid-body failure (reset, abort): the client's answer is cut, not completed.
        if (!finished) controller.error(error);
        finish();
        return;
      } finally {
        clearTimeout(idle);
      }
      if (finished) return;
      if (chunk.done) {
        const tail = meter?.tail();
        if (tail !== undefined) controller.enqueue(tail);
        controller.close();
        finish(true);
      } else {
        controller.enqueue(value);
        if (sendTimeoutMs > 0 && (controller.desiredSize ?? 1) <= 0) {
          // The client stopped reading: free the upstream connection and cut the answer.
          stall = setTimeout(
            () => cut(controller, 'The client did not read the answer within sendTimeoutMs.'),
            sendTimeoutMs,
          );
        }
      }
    },
    cancel() {
      // The client went away: stop reading and abort the upstream call.
      abortUpstream();
      reader.cancel().catch(() => {});
      finish();
    },
  });
  return new Response(body, { status: upstream.status, headers });
}
