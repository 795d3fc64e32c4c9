import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { filterResponseHeaders, mergeVary } from '../policy/headers.js';
import type { RelayMeter } from '../policy/meter.js';
import { ClientGoneError } from './client-gone.js';
import { noteUpstreamRequestId } from './telemetry.js';

/** One request to send upstream. */
export interface UpstreamRequest {
  /** `https://host[:port]`. */
  origin: string;
  /** Path + query on the upstream origin (already checked). */
  path: string;
  method: string;
  /** Flat `[name, value, …]`, including the injected `authorization`. */
  headers: string[];
  /** `null` (no body), bytes held in memory (replayable), or a stream (sent once). */
  body: Buffer | Readable | null;
  headersTimeout: number;
  bodyTimeout: number;
  /** Milliseconds `res` may stay unwritable (the client not reading) before the exchange is cut; 0 = never. */
  sendTimeout: number;
  /** Hold back a 401 answer (instead of relaying it) so that the caller can replay. */
  holdUnauthorized: boolean;
  /** The answer's usage meter, when metering is active (`undefined`: no work per chunk). */
  meter?: RelayMeter | undefined;
}

/** How one upstream exchange ended. */
export type ForwardOutcome =
  /** The upstream answer was relayed to the client (completely, or cut when upstream failed mid-body). */
  | { kind: 'relayed' }
  /** Upstream answered 401 and `holdUnauthorized` was set: nothing was sent to the client yet. */
  | { kind: 'unauthorized'; headers: IncomingHttpHeaders; body: Buffer }
  /** Upstream failed before its response headers: nothing was sent to the client. */
  | { kind: 'failed'; error: Error }
  /** The client went away; the upstream request was aborted. */
  | { kind: 'client-gone' };

/** Largest 401 body held back for a replay; a larger one is relayed instead. */
const MAX_HELD_BODY = 64 * 1024;

type Flushable = ServerResponse & { flush?: () => void };

/**
 * Relays one upstream exchange straight into `res` (no intermediate streams): headers are
 * written when upstream's arrive (flushed at once for `text/event-stream`), each body chunk is
 * written as it arrives with backpressure (undici is paused while `res` drains), and the
 * upstream request is aborted as soon as the client's connection closes.
 */
class RelayHandler implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined;
  private started = false;
  private holding = false;
  /** Allocated only when a 401 is held back. */
  private held: Buffer[] | undefined;
  private heldSize = 0;
  private heldHeaders: IncomingHttpHeaders | undefined;
  private waitingForDrain = false;
  private flushEachChunk = false;
  private settled = false;
  private clientGone = false;
  private pendingAbort: Error | undefined;

  /** Armed while `res` is not writable: the client stopped reading. */
  private stallTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly res: Flushable,
    private readonly holdUnauthorized: boolean,
    private readonly sendTimeout: number,
    private readonly done: (outcome: ForwardOutcome) => void,
    private readonly meter: RelayMeter | undefined,
  ) {
    res.on('close', this.onClientClose);
  }

  private readonly onClientClose = (): void => {
    if (this.settled || this.res.writableFinished) return;
    this.clientGone = true;
    this.abort(new ClientGoneError());
    this.settle({ kind: 'client-gone' });
  };

  /** Aborts the upstream request now, or as soon as undici starts it. */
  abort(reason: Error): void {
    if (this.controller === undefined) this.pendingAbort ??= reason;
    else if (!this.controller.aborted) this.controller.abort(reason);
  }

  /** Created on the first backpressure only (most answers never need it). */
  private onDrain: (() => void) | undefined;

  private settle(outcome: ForwardOutcome): void {
    if (this.settled) return;
    this.settled = true;
    // The `close` listener stays: once settled it does nothing, and removing it from every
    // response costs more than the call it would save.
    if (this.waitingForDrain && this.onDrain !== undefined) this.res.off('drain', this.onDrain);
    clearTimeout(this.stallTimer);
    // A relayed answer that did not reach its end was cut (client gone, upstream failed).
    if (this.meter !== undefined && this.started) this.meter.end(false);
    this.done(outcome);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.pendingAbort !== undefined) controller.abort(this.pendingAbort);
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: IncomingHttpHeaders,
  ): void {
    if (statusCode < 200 || this.settled) return;
    if (statusCode === 401 && this.holdUnauthorized) {
      this.holding = true;
      this.heldHeaders = headers;
      return;
    }
    try {
      this.startRelay(statusCode, headers);
    } catch (error) {
      // Headers Node refuses to write: nothing was sent, answer 502.
      this.started = false;
      this.abort(error as Error);
      this.settle({ kind: 'failed', error: error as Error });
    }
  }

  private startRelay(statusCode: number, upstreamHeaders: IncomingHttpHeaders): void {
    const res = this.res;
    const { headers, eventStream } = filterResponseHeaders(upstreamHeaders);
    if (eventStream) headers.push('x-accel-buffering', 'no');
    noteUpstreamRequestId(res, upstreamHeaders['x-request-id']);
    writeHeadKeepingVary(res, statusCode, headers);
    this.started = true;
    if (this.meter !== undefined) {
      const meter = this.meter;
      meter.answer(statusCode, (name) => {
        const value = upstreamHeaders[name];
        return Array.isArray(value) ? value[0] : value;
      });
    }
    if (eventStream) {
      res.flushHeaders();
      // compression middleware buffers unless flushed after each write.
      this.flushEachChunk = typeof res.flush === 'function';
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.settled) return;
    if (this.holding) {
      this.heldSize += chunk.length;
      if (this.heldSize > MAX_HELD_BODY) {
        // Too big to be a plain auth error: relay it after all.
        this.holding = false;
        this.startRelay(401, this.heldHeaders ?? {});
        for (const held of this.held ?? []) this.res.write(held);
        this.held = undefined;
      } else {
        if (this.held === undefined) this.held = [chunk];
        else this.held.push(chunk);
        return;
      }
    }
    let out: Uint8Array = chunk;
    if (this.meter !== undefined) {
      out = this.meter.chunk(chunk);
      if (out.length === 0) return;
    }
    if (!this.res.write(out) && !this.waitingForDrain) {
      this.waitingForDrain = true;
      controller.pause();
      this.onDrain ??= () => {
        this.waitingForDrain = false;
        clearTimeout(this.stallTimer);
        this.controller?.resume();
      };
      this.res.once('drain', this.onDrain);
      if (this.sendTimeout > 0) {
        this.stallTimer = setTimeout(() => {
          // The client stopped reading: free the upstream connection and drop the client.
          this.clientGone = true;
          this.abort(new ClientGoneError());
          this.res.destroy();
          this.settle({ kind: 'client-gone' });
        }, this.sendTimeout);
      }
    }
    if (this.flushEachChunk) this.res.flush!();
  }

  onResponseEnd(): void {
    if (this.settled) return;
    if (this.holding) {
      this.settle({
        kind: 'unauthorized',
        headers: this.heldHeaders ?? {},
        body: Buffer.concat(this.held ?? [], this.heldSize),
      });
      return;
    }
    if (this.meter !== undefined) {
      const tail = this.meter.tail();
      if (tail !== undefined) this.res.write(tail);
      this.meter.end(true);
    }
    this.res.end();
    this.settle({ kind: 'relayed' });
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    if (this.settled) return;
    if (this.clientGone) {
      this.settle({ kind: 'client-gone' });
    } else if (this.started) {
      // Mid-body failure (reset, body timeout): cut the client's response so that it is not
      // mistaken for a complete one.
      this.res.destroy();
      this.settle({ kind: 'relayed' });
    } else {
      this.settle({ kind: 'failed', error });
    }
  }
}

/**
 * `res.writeHead(status, flatHeaders)`, except that a `Vary` the handler already set (CORS:
 * `Vary: Origin`) is merged with upstream's instead of being replaced by it.
 */
function writeHeadKeepingVary(res: ServerResponse, statusCode: number, headers: string[]): void {
  const own = res.getHeader('vary');
  if (own !== undefined) {
    let vary = String(own);
    const rest: string[] = [];
    for (let i = 0; i < headers.length; i += 2) {
      if (headers[i] === 'vary') vary = mergeVary(vary, headers[i + 1]!);
      else rest.push(headers[i]!, headers[i + 1]!);
    }
    res.setHeader('vary', vary);
    res.writeHead(statusCode, rest);
    return;
  }
  res.writeHead(statusCode, headers);
}

/** Sends `request` through `dispatcher` and relays the answer into `res`. Never rejects. */
export function forward(
  dispatcher: Dispatcher,
  request: UpstreamRequest,
  res: ServerResponse,
): Promise<ForwardOutcome> {
  return new Promise((resolve) => {
    if (res.destroyed) {
      resolve({ kind: 'client-gone' });
      return;
    }
    const handler = new RelayHandler(
      res,
      request.holdUnauthorized,
      request.sendTimeout,
      resolve,
      request.meter,
    );
    const body = request.body;
    if (body !== null && !Buffer.isBuffer(body)) {
      // A body stream that fails (413 while streaming, client gone) aborts the exchange.
      if (body.errored || body.destroyed) {
        handler.onResponseError(undefined as never, body.errored ?? new ClientGoneError());
        return;
      }
      body.on('error', (error: Error) => handler.abort(error));
    }
    try {
      dispatcher.dispatch(
        {
          origin: request.origin,
          path: request.path,
          method: request.method as Dispatcher.HttpMethod,
          headers: request.headers,
          body: request.body,
          headersTimeout: request.headersTimeout,
          bodyTimeout: request.bodyTimeout,
        },
        handler,
      );
    } catch (error) {
      handler.onResponseError(undefined as never, error as Error);
    }
  });
}
