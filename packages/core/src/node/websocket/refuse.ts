import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { type ErrorAnswer, errorAnswer, newRequestId } from '../../policy/answers.js';

/**
 * Answers an upgrade request with an HTTP error in Model Studio's shape
 * (`{"code","message","request_id"}`) on the raw socket, then closes the connection: a refused
 * handshake never leaves a dangling socket.
 */
export function refuseUpgrade(
  socket: Duplex,
  error: ErrorAnswer,
  requestId: string = newRequestId(),
): void {
  if (socket.destroyed || !socket.writable) {
    socket.destroy();
    return;
  }
  // An upstream request id lands in a header: printable ASCII only.
  const id = /^[\x21-\x7e]{1,200}$/.test(requestId) ? requestId : newRequestId();
  const answer = errorAnswer('dashscope', error, id);
  const lines = [
    `HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status] ?? 'Error'}`,
    'connection: close',
  ];
  for (const name in answer.headers) lines.push(`${name}: ${answer.headers[name]}`);
  socket.once('finish', () => socket.destroy());
  socket.end(`${lines.join('\r\n')}\r\n\r\n${answer.body}`);
}
