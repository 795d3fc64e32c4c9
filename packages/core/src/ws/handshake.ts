import { type IncomingMessage, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { type ErrorAnswer, errorBody, newRequestId } from '../handler/error-response.js';

/** `Sec-WebSocket-Key`: base64 of 16 bytes (RFC 6455 §4.1). */
const KEY = /^[+/0-9A-Za-z]{22}==$/;
/** A subprotocol name: an RFC 7230 token. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Most subprotocols a client may offer. */
const MAX_PROTOCOLS = 32;

/** A client handshake that passed the checks: its subprotocols, in the client's order. */
export interface ClientHandshake {
  protocols: string[];
}

/**
 * Checks a client's opening handshake (RFC 6455 §4.2.1) before anything else happens, so that
 * nothing is authorised, minted or connected for a request `ws` would refuse anyway.
 * @returns the handshake, or the answer to refuse it with
 */
export function checkClientHandshake(req: IncomingMessage): ClientHandshake | ErrorAnswer {
  if (req.method !== 'GET') {
    return {
      status: 405,
      code: 'MethodNotAllowed',
      message: 'WebSocket handshakes use GET.',
      headers: { allow: 'GET' },
    };
  }
  const upgrade = req.headers.upgrade;
  if (upgrade === undefined || upgrade.trim().toLowerCase() !== 'websocket') {
    return {
      status: 400,
      code: 'InvalidParameter',
      message: 'Only WebSocket upgrades are accepted here.',
    };
  }
  const key = req.headers['sec-websocket-key'];
  if (key === undefined || !KEY.test(key)) {
    return {
      status: 400,
      code: 'InvalidParameter',
      message: 'Missing or invalid Sec-WebSocket-Key header.',
    };
  }
  if (req.headers['sec-websocket-version'] !== '13') {
    return {
      status: 426,
      code: 'UpgradeRequired',
      message: 'Unsupported WebSocket version; use 13.',
      headers: { 'sec-websocket-version': '13' },
    };
  }
  const protocols: string[] = [];
  const offered = req.headers['sec-websocket-protocol'];
  if (offered !== undefined) {
    for (const raw of offered.split(',')) {
      const name = raw.trim();
      if (!TOKEN.test(name) || protocols.includes(name) || protocols.length >= MAX_PROTOCOLS) {
        return {
          status: 400,
          code: 'InvalidParameter',
          message: 'Invalid Sec-WebSocket-Protocol header.',
        };
      }
      protocols.push(name);
    }
  }
  return { protocols };
}

/**
 * Answers an upgrade request with an HTTP error in Model Studio's shape
 * (`{"code","message","request_id"}`) on the raw socket, then closes the connection: a refused
 * handshake never leaves a dangling socket.
 */
export function refuseUpgrade(
  socket: Duplex,
  answer: ErrorAnswer,
  requestId: string = newRequestId(),
): void {
  if (socket.destroyed || !socket.writable) {
    socket.destroy();
    return;
  }
  // An upstream request id lands in a header: printable ASCII only.
  const id = /^[\x21-\x7e]{1,200}$/.test(requestId) ? requestId : newRequestId();
  const body = errorBody('dashscope', answer, id);
  const lines = [
    `HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status] ?? 'Error'}`,
    'connection: close',
    'content-type: application/json; charset=utf-8',
    `content-length: ${Buffer.byteLength(body)}`,
    'cache-control: no-store',
    `x-request-id: ${id}`,
  ];
  if (answer.retryAfterSeconds !== undefined) {
    lines.push(`retry-after: ${Math.max(0, Math.ceil(answer.retryAfterSeconds))}`);
  }
  if (answer.headers) {
    for (const name in answer.headers) lines.push(`${name}: ${answer.headers[name]}`);
  }
  socket.once('finish', () => socket.destroy());
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
}
