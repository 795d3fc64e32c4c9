/**
 * The upstream half of a WebSocket session: the connection to Model Studio, with every way it
 * can fail mapped to the HTTP answer the client gets instead of a 101.
 */
import WebSocket from 'ws';
import type { DashScopeError } from '../../errors.js';
import { type ErrorAnswer, transportFailureAnswer } from '../../policy/answers.js';
import { errorFromAnswer } from '../../upstream-errors.js';

/** Most bytes of an upstream refusal's body that are read (for its code and message). */
const MAX_REFUSAL_BODY = 64 * 1024;

/** How an upstream handshake ended. */
export type UpstreamOutcome =
  | { kind: 'open'; ws: WebSocket }
  /** Model Studio answered with HTTP instead of 101. */
  | { kind: 'refused'; status: number; error: DashScopeError }
  /** No answer: network failure, timeout, invalid handshake answer. */
  | { kind: 'failed'; answer: ErrorAnswer }
  /** The client went away first (`signal` aborted). */
  | { kind: 'gone' };

const TIMEOUT: ErrorAnswer = transportFailureAnswer('timeout');
const NETWORK_ERROR: ErrorAnswer = transportFailureAnswer('unreachable');
const BAD_HANDSHAKE: ErrorAnswer = transportFailureAnswer('bad-handshake');

export interface ConnectOptions {
  protocols: readonly string[];
  headers: Record<string, string>;
  timeoutMs: number;
  maxPayload: number;
  /** Strings redacted from anything taken from an upstream answer (keys in use). */
  secrets: readonly string[];
  /** Aborted when the client goes away. */
  signal: AbortSignal;
}

/** Opens the upstream WebSocket; never rejects. */
export function connectUpstream(url: string, options: ConnectOptions): Promise<UpstreamOutcome> {
  return new Promise((resolve) => {
    let settled = false;
    const ws = new WebSocket(url, [...options.protocols], {
      headers: options.headers,
      perMessageDeflate: false,
      maxPayload: options.maxPayload,
      followRedirects: false,
    });
    const finish = (outcome: UpstreamOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal.removeEventListener('abort', onAbort);
      if (outcome.kind !== 'open') ws.terminate();
      resolve(outcome);
    };
    const onAbort = () => finish({ kind: 'gone' });
    const timer = setTimeout(() => finish({ kind: 'failed', answer: TIMEOUT }), options.timeoutMs);
    options.signal.addEventListener('abort', onAbort, { once: true });
    if (options.signal.aborted) onAbort();

    // Stays attached for the life of the socket: errors after `open` are the relay's business,
    // which adds its own listener; this one only keeps an error from being unhandled.
    ws.on('error', (error: Error & { code?: unknown }) => {
      const code = typeof error.code === 'string' ? error.code : '';
      finish({
        kind: 'failed',
        answer: code.startsWith('E') || code.startsWith('UND_') ? NETWORK_ERROR : BAD_HANDSHAKE,
      });
    });
    ws.once('open', () => {
      // Nothing is read until the relay is attached (a `session.created` sent at once must not
      // be emitted to nobody); `relay()` resumes it.
      ws.pause();
      finish({ kind: 'open', ws });
    });
    ws.once('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const done = () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const status = res.statusCode ?? 502;
        finish({
          kind: 'refused',
          status,
          error: errorFromAnswer(status, res.headers, body, options.secrets),
        });
      };
      res.on('data', (chunk: Buffer) => {
        if (size >= MAX_REFUSAL_BODY) return;
        size += chunk.length;
        chunks.push(chunk);
        if (size >= MAX_REFUSAL_BODY) done();
      });
      res.on('end', done);
      res.on('error', () => finish({ kind: 'failed', answer: NETWORK_ERROR }));
      res.on('aborted', () => finish({ kind: 'failed', answer: NETWORK_ERROR }));
    });
  });
}
