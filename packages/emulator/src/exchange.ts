import { randomUUID } from 'node:crypto';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { corsHeaders } from './cors.js';
import type { KeyCheck } from './keys.js';
import { type Dialect, dialectOf, type ErrorKind, errorFor } from './responses.js';
import type { EmulatorState } from './state.js';
import type { EmulatorFault, RecordedRequest } from './types.js';

/** One request and its answer: parsed URL, request id, body, and the ways to answer. */
export class Exchange {
  /** Request id, sent as `x-request-id` and `request_id`. */
  readonly id = randomUUID();
  readonly pathname: string;
  readonly query: URLSearchParams;
  readonly dialect: Dialect;
  /** Aborted when the client goes away, the answer ends, or the emulator closes. */
  readonly controller = new AbortController();
  body: Buffer = Buffer.alloc(0);
  record: RecordedRequest | undefined;
  /** Set when the emulator itself cut the connection (reset faults, `close()`). */
  serverClosed = false;
  /** The credential that authenticated this request, once checked. */
  auth: Exclude<KeyCheck, { kind: 'invalid' }> | undefined;
  /** A `stream-error`/`stream-cut` fault for a handler that may stream. */
  streamFault: Extract<EmulatorFault, { type: 'stream-error' | 'stream-cut' }> | undefined;

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly state: EmulatorState,
  ) {
    const raw = req.url ?? '/';
    const q = raw.indexOf('?');
    this.pathname = q === -1 ? raw : raw.slice(0, q);
    this.query = new URLSearchParams(q === -1 ? '' : raw.slice(q + 1));
    this.dialect = dialectOf(this.pathname);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Whether the temporary key that authenticated this request has expired since. */
  get credentialExpired(): boolean {
    return this.auth?.kind === 'temporary' && this.state.clock.now() >= this.auth.expiresAt;
  }

  /** Whether nothing more can be written (client gone, answer ended, emulator closing). */
  get closed(): boolean {
    return this.signal.aborted || this.res.destroyed || this.res.writableEnded;
  }

  /** Headers every answer carries: `Date` on the emulator's clock, `x-request-id`, CORS. */
  baseHeaders(): Record<string, string> {
    return {
      Date: this.state.clock.httpDate(),
      'x-request-id': this.id,
      ...corsHeaders(this.req.headers.origin, this.state.cors),
    };
  }

  /** Sends a complete answer. */
  send(status: number, body: string | Buffer, headers: OutgoingHttpHeaders = {}): void {
    if (this.closed || this.res.headersSent) return;
    const buf = typeof body === 'string' ? Buffer.from(body) : body;
    this.res.writeHead(status, {
      ...this.baseHeaders(),
      ...(status === 204 || status === 304 ? {} : { 'Content-Length': String(buf.length) }),
      ...headers,
    });
    this.res.end(buf);
  }

  sendJson(status: number, value: unknown, headers: OutgoingHttpHeaders = {}): void {
    this.send(status, JSON.stringify(value), {
      'Content-Type': 'application/json; charset=utf-8',
      ...headers,
    });
  }

  /** Sends one of the emulator's own errors in this path's dialect. */
  sendError(kind: ErrorKind, message?: string, headers: OutgoingHttpHeaders = {}): void {
    const { status, body } = errorFor(kind, this.dialect, this.id, message);
    this.sendJson(status, body, headers);
  }

  /** Starts a `text/event-stream` answer and flushes its headers at once. */
  startStream(status = 200): void {
    if (this.closed || this.res.headersSent) return;
    this.res.writeHead(status, {
      ...this.baseHeaders(),
      'Content-Type': 'text/event-stream;charset=UTF-8',
      'Cache-Control': 'no-cache',
      'X-Accel-Buffering': 'no',
    });
    this.res.flushHeaders();
  }

  /** Writes a chunk of a started stream; returns false when the client is gone. */
  write(chunk: string): boolean {
    if (this.closed) return false;
    this.res.write(chunk);
    return true;
  }

  end(): void {
    if (!this.res.writableEnded && !this.res.destroyed) this.res.end();
  }

  /** Destroys the connection without (finishing) an answer. */
  reset(): void {
    this.serverClosed = true;
    const socket = this.req.socket as typeof this.req.socket & { resetAndDestroy?: () => void };
    if (typeof socket.resetAndDestroy === 'function' && !socket.destroyed) socket.resetAndDestroy();
    else socket.destroy();
  }

  /** The credential of `Authorization: Bearer <key>`, if present. */
  bearer(): string | undefined {
    const header = this.req.headers.authorization;
    if (!header) return undefined;
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    return m?.[1];
  }

  /** Checks the bearer credential; answers 401 and returns undefined when it is not valid. */
  authenticate(allowTemporary = true): Exclude<KeyCheck, { kind: 'invalid' }> | undefined {
    const check = this.state.keys.check(this.bearer(), this.state.clock.now());
    if (check.kind === 'invalid' || (check.kind === 'temporary' && !allowTemporary)) {
      this.sendError('invalid-api-key');
      return undefined;
    }
    const workspace = this.req.headers['x-dashscope-workspace'];
    if (
      !this.state.workspaces.allows(
        typeof workspace === 'string' ? workspace.trim() : undefined,
        check.workspace,
      )
    ) {
      this.sendError('invalid-api-key');
      return undefined;
    }
    this.auth = check;
    return check;
  }

  /**
   * Parses the body as a JSON object; answers 400 and returns undefined when the content
   * type is not JSON, the body is empty or not valid JSON, or not an object.
   */
  jsonBody(): Record<string, unknown> | undefined {
    const type = this.req.headers['content-type'] ?? '';
    if (!/^application\/json\s*(;|$)/i.test(type)) {
      this.sendError('invalid-parameter', 'Content-Type must be application/json.');
      return undefined;
    }
    let value: unknown;
    try {
      value = JSON.parse(this.body.toString('utf8'));
    } catch {
      this.sendError('invalid-parameter', 'The request body is not valid JSON.');
      return undefined;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      this.sendError('invalid-parameter', 'The request body must be a JSON object.');
      return undefined;
    }
    return value as Record<string, unknown>;
  }
}
