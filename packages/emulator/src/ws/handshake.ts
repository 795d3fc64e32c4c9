import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Clock } from '../clock.js';
import { type ErrorKind, errorFor, HTML_502 } from '../responses.js';

/**
 * Answers a WebSocket handshake with a plain HTTP response (an error, a fault) and closes the
 * connection, as Model Studio's gateway does when it refuses an upgrade.
 */
export function answerHandshake(
  socket: Duplex,
  status: number,
  body: string,
  headers: Record<string, string>,
): void {
  if (socket.destroyed || !socket.writable) {
    socket.destroy();
    return;
  }
  const bytes = Buffer.from(body);
  const lines = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}`];
  const all: Record<string, string> = {
    Connection: 'close',
    'Content-Length': String(bytes.length),
    ...headers,
  };
  for (const [name, value] of Object.entries(all)) lines.push(`${name}: ${value}`);
  socket.once('finish', () => socket.destroy());
  socket.end(Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), bytes]));
}

/** Headers every handshake answer carries: `Date` on the emulator's clock and `x-request-id`. */
export function baseHeaders(clock: Clock, requestId: string): Record<string, string> {
  return { Date: clock.httpDate(), 'x-request-id': requestId };
}

/** Answers with one of the emulator's own errors (native dialect) and returns its status. */
export function answerHandshakeError(
  socket: Duplex,
  clock: Clock,
  requestId: string,
  kind: ErrorKind,
  message?: string,
  headers: Record<string, string> = {},
): number {
  const { status, body } = errorFor(kind, 'native', requestId, message);
  answerHandshake(socket, status, JSON.stringify(body), {
    ...baseHeaders(clock, requestId),
    'Content-Type': 'application/json; charset=utf-8',
    ...headers,
  });
  return status;
}

/** The page a gateway answers with when the service behind it is down. */
export function answerHandshakeHtml502(socket: Duplex, clock: Clock, requestId: string): number {
  answerHandshake(socket, 502, HTML_502, {
    ...baseHeaders(clock, requestId),
    'Content-Type': 'text/html',
  });
  return 502;
}

/** Destroys the connection without any answer (a connection reset when possible). */
export function resetSocket(socket: Duplex): void {
  const s = socket as Duplex & { resetAndDestroy?: () => void };
  if (typeof s.resetAndDestroy === 'function' && !s.destroyed) s.resetAndDestroy();
  else socket.destroy();
}
