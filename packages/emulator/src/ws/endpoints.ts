/**
 * The WebSocket endpoints of the emulator, `/api-ws/v1/inference` and `/api-ws/v1/realtime`,
 * attached to the HTTP server's `upgrade` event. Handshakes are recorded like requests
 * (routes `ws-inference` / `ws-realtime`), take faults from the same queue, and are
 * authenticated like Model Studio does it: `Authorization: Bearer <key>` on the handshake, a
 * permanent key or a live `st-` key, checked once, when the connection opens.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import { findModel, NATIVE_MODEL_NOT_FOUND } from '../catalogue.js';
import { sleep } from '../sleep.js';
import type { EmulatorState } from '../state.js';
import type { EmulatorFault, RecordedRequest } from '../types.js';
import {
  answerHandshake,
  answerHandshakeError,
  answerHandshakeHtml502,
  baseHeaders,
  resetSocket,
} from './handshake.js';
import { InferenceProtocol, taskFailed } from './inference.js';
import { RealtimeProtocol, realtimeError } from './realtime.js';
import { Session, type SessionFault } from './session.js';

/** Largest message the emulator accepts on its WebSockets (larger ones: close 1009). */
export const WS_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

type WsRoute = 'ws-inference' | 'ws-realtime';

const WS_ROUTES: Readonly<Record<string, WsRoute>> = {
  '/api-ws/v1/inference': 'ws-inference',
  '/api-ws/v1/inference/': 'ws-inference',
  '/api-ws/v1/realtime': 'ws-realtime',
};

/** The WebSocket side of a running emulator. */
export interface WebSocketEndpoints {
  /** The `upgrade` listener of the emulator's HTTP server. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Closes every open session with `code`/`reason`; returns how many were open. */
  closeAll(code?: number, reason?: string): number;
  /** Sessions open now. */
  readonly open: number;
  /** Ends everything now: open sessions, pending and hanging handshakes. */
  close(): void;
}

function bearer(header: string | undefined): string | undefined {
  if (!header) return undefined;
  return /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header)?.[1];
}

function copyHeaders(req: IncomingMessage): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? [...value] : value;
  }
  return out;
}

const SECRET_PARAM = /key|token|secret|signature|auth|password/i;

/** A log line for a handshake: no header values, secret-looking query values redacted. */
function logLine(record: RecordedRequest, ms: number): string {
  const raw = record.path;
  const q = raw.indexOf('?');
  const params = [...new URLSearchParams(q < 0 ? '' : raw.slice(q + 1)).entries()].map(
    ([k, v]) =>
      `${encodeURIComponent(k)}=${SECRET_PARAM.test(k) ? '[redacted]' : encodeURIComponent(v)}`,
  );
  const path = (
    (q < 0 ? raw : raw.slice(0, q)) + (params.length > 0 ? `?${params.join('&')}` : '')
  ).replace(/\b(sk|st)-[A-Za-z0-9_-]+/g, '$1-[redacted]');
  return `${record.method} ${path} ${record.status ?? '-'} ${record.route} ${Math.round(ms)}ms`;
}

/** Checks a close code given to `closeAll` (ws throws on codes it may not send). */
function checkCloseCode(code: number): void {
  const valid =
    Number.isInteger(code) &&
    ((code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) ||
      (code >= 3000 && code <= 4999));
  if (!valid) throw new RangeError(`invalid WebSocket close code: ${code}`);
}

/** Creates the WebSocket endpoints over the emulator's state. */
export function createWebSocketEndpoints(
  state: EmulatorState,
  log?: (line: string) => void,
): WebSocketEndpoints {
  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    perMessageDeflate: false,
    maxPayload: WS_MAX_MESSAGE_BYTES,
  });
  /** Sockets between the upgrade request and the 101 (or a hanging fault). */
  const pending = new Set<Duplex>();
  const sessions = new Set<Session>();
  const controller = new AbortController();
  let closed = false;
  let sessionCount = 0;

  function answerFault(
    socket: Duplex,
    record: RecordedRequest,
    fault: Exclude<EmulatorFault, SessionFault>,
  ): void {
    const id = record.id;
    switch (fault.type) {
      case 'throttle':
        record.status = answerHandshakeError(
          socket,
          state.clock,
          id,
          'throttle',
          undefined,
          fault.retryAfterSeconds === undefined
            ? {}
            : { 'Retry-After': String(fault.retryAfterSeconds) },
        );
        return;
      case 'system-error':
        record.status = answerHandshakeError(socket, state.clock, id, 'system-error');
        return;
      case 'invalid-api-key':
        record.status = answerHandshakeError(socket, state.clock, id, 'invalid-api-key');
        return;
      case 'html-502':
        record.status = answerHandshakeHtml502(socket, state.clock, id);
        return;
      case 'malformed-json':
        record.status = 200;
        answerHandshake(socket, 200, '{"output":{"text":"Hello from', {
          ...baseHeaders(state.clock, id),
          'Content-Type': 'application/json; charset=utf-8',
        });
        return;
      case 'reset':
        resetSocket(socket);
        return;
      case 'hang':
        // No answer: the socket stays pending until the client gives up or close().
        return;
      case 'status': {
        const headers = fault.headers ?? {};
        const hasType = Object.keys(headers).some((h) => h.toLowerCase() === 'content-type');
        const text =
          typeof fault.body === 'string' ? fault.body : JSON.stringify(fault.body ?? null);
        const type =
          typeof fault.body === 'string'
            ? 'text/plain; charset=utf-8'
            : 'application/json; charset=utf-8';
        record.status = fault.status;
        answerHandshake(socket, fault.status, text, {
          ...baseHeaders(state.clock, id),
          ...(hasType ? {} : { 'Content-Type': type }),
          ...headers,
        });
        return;
      }
    }
  }

  function startSession(
    ws: WebSocket,
    route: WsRoute,
    record: RecordedRequest,
    fault: SessionFault | undefined,
    model: string,
  ): void {
    let protocol: InferenceProtocol | RealtimeProtocol | undefined;
    const failure = (code: string, message: string) =>
      protocol instanceof RealtimeProtocol
        ? realtimeError(protocol.nextEventId(), code, message)
        : taskFailed(protocol?.taskId ?? '', code, message);
    const session = new Session(ws, record, fault, failure);
    sessions.add(session);
    state.openWebSockets = sessions.size;
    record.messagesReceived = 0;
    record.bytesReceived = 0;
    if (ws.protocol) record.protocol = ws.protocol;
    ws.on('error', () => {
      // Protocol errors (too large, invalid UTF-8) close the connection; nothing to add.
    });
    ws.on('close', (code, reason) => {
      sessions.delete(session);
      state.openWebSockets = sessions.size;
      record.closeCode = code;
      record.closeReason = reason.toString('utf8');
      state.recorder.sessionEnded(record, !session.serverClosed);
    });
    ws.on('message', (data, isBinary) => {
      const bytes = Array.isArray(data)
        ? Buffer.concat(data)
        : Buffer.isBuffer(data)
          ? data
          : Buffer.from(data);
      record.messagesReceived = (record.messagesReceived ?? 0) + 1;
      record.bytesReceived = (record.bytesReceived ?? 0) + bytes.length;
      protocol?.onMessage(bytes, isBinary);
    });
    if (route === 'ws-realtime') {
      sessionCount += 1;
      const realtime = new RealtimeProtocol(session, `sess_${sessionCount}`, model);
      protocol = realtime;
      realtime.start();
    } else {
      protocol = new InferenceProtocol(session);
    }
  }

  async function handle(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    onRecord: (r: RecordedRequest) => void,
  ): Promise<void> {
    const raw = req.url ?? '/';
    const q = raw.indexOf('?');
    const pathname = q < 0 ? raw : raw.slice(0, q);
    const query = new URLSearchParams(q < 0 ? '' : raw.slice(q + 1));
    const route = Object.hasOwn(WS_ROUTES, pathname) ? WS_ROUTES[pathname] : undefined;
    const record: RecordedRequest = {
      id: randomUUID(),
      method: req.method ?? '',
      path: raw,
      headers: copyHeaders(req),
      body: '',
      receivedAt: Date.now(),
      route: route ?? 'unknown',
      clientClosedEarly: false,
    };
    state.recorder.record(record);
    onRecord(record);
    if (route === undefined) {
      record.status = answerHandshakeError(socket, state.clock, record.id, 'not-found');
      return;
    }
    if (req.method !== 'GET') {
      record.status = answerHandshakeError(
        socket,
        state.clock,
        record.id,
        'method-not-allowed',
        undefined,
        { Allow: 'GET' },
      );
      return;
    }
    if (!(await sleep(state.latencyMs, controller.signal)) || socket.destroyed) return;

    const fault = state.faults.take(route);
    let sessionFault: SessionFault | undefined;
    if (fault) {
      if (fault.type === 'stream-error' || fault.type === 'stream-cut') sessionFault = fault;
      else {
        answerFault(socket, record, fault);
        return;
      }
    }

    let key = bearer(req.headers.authorization);
    if (key === undefined && route === 'ws-inference') key = query.get('api_key') ?? undefined;
    const check = state.keys.check(key, state.clock.now());
    const workspace = req.headers['x-dashscope-workspace'];
    if (
      check.kind === 'invalid' ||
      !state.workspaces.allows(
        typeof workspace === 'string' ? workspace.trim() : undefined,
        check.workspace,
      )
    ) {
      record.status = answerHandshakeError(socket, state.clock, record.id, 'invalid-api-key');
      return;
    }
    const model = query.get('model') ?? '';
    if (route === 'ws-realtime' && model === '') {
      record.status = answerHandshakeError(
        socket,
        state.clock,
        record.id,
        'invalid-parameter',
        'The model query parameter is required.',
      );
      return;
    }
    if (route === 'ws-realtime' && !findModel(model, ['realtime'])) {
      record.status = answerHandshakeError(
        socket,
        state.clock,
        record.id,
        'invalid-parameter',
        NATIVE_MODEL_NOT_FOUND,
      );
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      pending.delete(socket);
      if (closed) {
        ws.terminate();
        return;
      }
      record.status = 101;
      startSession(ws, route, record, sessionFault, model);
    });
  }

  return {
    handleUpgrade(req, socket, head) {
      socket.on('error', () => {
        // A client that resets mid-handshake is not the emulator's problem.
      });
      if (closed) {
        socket.destroy();
        return;
      }
      pending.add(socket);
      const started = performance.now();
      let record: RecordedRequest | undefined;
      const onRecord = (r: RecordedRequest) => {
        record ??= r;
      };
      socket.once('close', () => pending.delete(socket));
      const logOnce = () => {
        if (!log || record === undefined) return;
        try {
          log(logLine(record, performance.now() - started));
        } catch {
          // A failing logger must not break the emulator.
        }
      };
      handle(req, socket, head, onRecord)
        .then(logOnce)
        .catch(() => {
          if (!socket.destroyed) socket.destroy();
        });
    },
    closeAll(code = 1000, reason = '') {
      checkCloseCode(code);
      if (Buffer.byteLength(reason) > 123) throw new RangeError('reason must be at most 123 bytes');
      const open = [...sessions];
      for (const session of open) {
        session.serverClosed = true;
        session.ws.close(code, reason);
      }
      return open.length;
    },
    get open() {
      return sessions.size;
    },
    close() {
      if (closed) return;
      closed = true;
      controller.abort();
      for (const socket of pending) socket.destroy();
      pending.clear();
      for (const session of sessions) {
        session.serverClosed = true;
        session.ws.terminate();
      }
      wss.close();
    },
  };
}
