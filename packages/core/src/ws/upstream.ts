/**
 * The upstream half of a WebSocket session: the URL and headers of the handshake to Model
 * Studio (with the injected key and without the client's credentials), and the connection,
 * with every way it can fail mapped to the HTTP answer the client gets instead of a 101.
 */
import WebSocket from 'ws';
import type { DashScopeError } from '../errors.js';
import type { ErrorAnswer } from '../handler/error-response.js';
import { readClientHeaders } from '../proxy/headers.js';
import { errorFromAnswer } from '../upstream-errors.js';

/** Query parameters that carry a credential (Alibaba's browser samples use `?api_key=`). */
const CREDENTIAL_PARAMS: ReadonlySet<string> = new Set([
  'api_key',
  'apikey',
  'api-key',
  'access_token',
]);

/** Most bytes of an upstream refusal's body that are read (for its code and message). */
const MAX_REFUSAL_BODY = 64 * 1024;

/**
 * The query without credential parameters (`api_key`, `apikey`, `api-key`, `access_token`, in
 * any case, encoded or not); every other parameter is kept byte for byte, in order.
 */
export function withoutCredentialParams(query: string): string {
  if (query === '') return '';
  const kept: string[] = [];
  for (const part of query.split('&')) {
    const eq = part.indexOf('=');
    const rawName = eq < 0 ? part : part.slice(0, eq);
    let name: string;
    try {
      name = decodeURIComponent(rawName.replace(/\+/g, ' ')).toLowerCase();
    } catch {
      continue; // unreadable name: dropped rather than risk forwarding a credential
    }
    if (!CREDENTIAL_PARAMS.has(name.trim())) kept.push(part);
  }
  return kept.join('&');
}

/**
 * Headers of the upstream handshake: the client's headers filtered as for the HTTP proxy (no
 * `Authorization`, `Cookie`, hop-by-hop, `Host`, and no identity headers such as `Origin`
 * unless `forwardClientIdentity`), without the client's `Sec-WebSocket-*` (the upstream
 * handshake has its own), plus `Authorization: Bearer <token>`.
 */
export function upstreamHeaders(
  rawHeaders: readonly string[],
  forwardClientIdentity: boolean,
  token: string,
): Record<string, string> {
  const flat = readClientHeaders(rawHeaders, forwardClientIdentity).headers;
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const name = flat[i]!.toLowerCase();
    if (name.startsWith('sec-websocket-')) continue;
    const value = flat[i + 1]!;
    out[name] = out[name] === undefined ? value : `${out[name]}, ${value}`;
  }
  out.authorization = `Bearer ${token}`;
  return out;
}

/** How an upstream handshake ended. */
export type UpstreamOutcome =
  | { kind: 'open'; ws: WebSocket }
  /** Model Studio answered with HTTP instead of 101. */
  | { kind: 'refused'; status: number; error: DashScopeError }
  /** No answer: network failure, timeout, invalid handshake answer. */
  | { kind: 'failed'; answer: ErrorAnswer }
  /** The client went away first (`signal` aborted). */
  | { kind: 'gone' };

const TIMEOUT: ErrorAnswer = Object.freeze({
  status: 504,
  code: 'Timeout',
  message: 'Model Studio did not accept the WebSocket handshake in time.',
});
const NETWORK_ERROR: ErrorAnswer = Object.freeze({
  status: 502,
  code: 'NetworkError',
  message: 'Model Studio could not be reached.',
});
const BAD_HANDSHAKE: ErrorAnswer = Object.freeze({
  status: 502,
  code: 'BadGateway',
  message: 'Model Studio answered the WebSocket handshake with an invalid response.',
});

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

/**
 * The answer for an upstream refusal. Model Studio's own status is kept for client-side
 * problems (400, 403, 404) and throttling (429, with `Retry-After`); a 401 means it rejected
 * the key the server injected, which is not the client's fault: 502 `InvalidApiKey`, as for a
 * failed mint. 5xx become 502 (503 kept), anything else (1xx, 2xx, 3xx) 502 `BadGateway`.
 */
export function refusalAnswer(error: DashScopeError): ErrorAnswer {
  if (error.code === 'InvalidApiKey' || error.status === 401) {
    return {
      status: 502,
      code: 'InvalidApiKey',
      message:
        "Model Studio rejected the temporary key injected for this WebSocket (the client's " +
        'credentials are not the problem); check the configured key and its region.',
    };
  }
  const answer: ErrorAnswer = { status: error.status, code: error.code, message: error.message };
  if (error.status === 429) answer.retryAfterSeconds = error.retryAfterSeconds ?? 1;
  else if (error.retryAfterSeconds !== undefined)
    answer.retryAfterSeconds = error.retryAfterSeconds;
  return answer;
}
