/**
 * Clients for the matrix. Every byte a server sends back (status line, headers, body) through
 * these helpers is kept in {@link transcript}, so a file can assert at the end that no
 * permanent key ever reached a client.
 */
import { request as httpRequest, type OutgoingHttpHeaders } from 'node:http';
import { connect } from 'node:net';

/** Every response byte seen by the helpers below, as text. */
export const transcript: string[] = [];

function recordHeaders(status: number, headers: Iterable<[string, string]>): void {
  const lines = [`HTTP ${status}`];
  for (const [name, value] of headers) lines.push(`${name}: ${value}`);
  transcript.push(lines.join('\r\n'));
}

/**
 * `fetch`, recording the response. The body is passed through as it streams (nothing is
 * buffered), so streaming tests see chunks as the server sends them.
 */
export const recordingFetch: typeof fetch = (input, init) => recordingFetchVia(fetch)(input, init);

/** POST JSON with {@link recordingFetch}, or with `send` (a {@link recordingFetchVia}). */
export function postJson(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
  signal?: AbortSignal,
  send: typeof fetch = recordingFetch,
): Promise<Response> {
  return send(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
    ...(signal ? { signal } : {}),
  });
}

/** A parsed raw HTTP answer. */
export interface RawResponse {
  /** Status code of the first response, or 0 if the server closed without answering. */
  status: number;
  /** Everything received, as latin1 text. */
  text: string;
}

/**
 * Sends `raw` bytes as they are over a TCP socket (for requests that no HTTP client would
 * send) and collects the answer until the server closes the connection or `timeoutMs`.
 */
export function rawRequest(port: number, raw: string, timeoutMs = 5000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      const text = Buffer.concat(chunks).toString('latin1');
      transcript.push(text);
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      resolve({ status: match ? Number(match[1]) : 0, text });
    };
    const timer = setTimeout(finish, timeoutMs);
    socket.on('data', (chunk) => {
      chunks.push(chunk);
      // One complete answer is enough (the server may keep the connection open).
      const text = Buffer.concat(chunks).toString('latin1');
      const head = text.indexOf('\r\n\r\n');
      if (head < 0) return;
      const length = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, head));
      if (length && text.length - head - 4 >= Number(length[1])) finish();
      if (
        /\r\ntransfer-encoding: *chunked/i.test(text.slice(0, head)) &&
        text.endsWith('0\r\n\r\n')
      ) {
        finish();
      }
    });
    socket.on('end', finish);
    socket.on('close', finish);
    socket.on('error', (error) => {
      if (chunks.length > 0) finish();
      else if ((error as NodeJS.ErrnoException).code === 'ECONNRESET') finish();
      else reject(error);
    });
    socket.write(Buffer.from(raw, 'latin1'));
  });
}

/** A node:http request with arbitrary headers (hop-by-hop ones included), recorded. */
export function nodeRequest(
  url: string,
  options: { method?: string; headers?: OutgoingHttpHeaders; body?: string },
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { method: options.method ?? 'GET', headers: options.headers ?? {}, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          const pairs: [string, string][] = [];
          for (let i = 0; i < res.rawHeaders.length; i += 2) {
            pairs.push([res.rawHeaders[i]!, res.rawHeaders[i + 1]!]);
          }
          recordHeaders(res.statusCode ?? 0, pairs);
          transcript.push(body);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Reads a streamed body chunk by chunk (as text). */
export function chunkReader(response: Response) {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  return {
    /** The next chunk, or `undefined` at the end. */
    async next(): Promise<string | undefined> {
      const { value, done } = await reader.read();
      return done ? undefined : decoder.decode(value, { stream: true });
    },
    /** Everything that is left. */
    async rest(): Promise<string> {
      let text = '';
      for (let chunk = await this.next(); chunk !== undefined; chunk = await this.next()) {
        text += chunk;
      }
      return text;
    },
    cancel: () => reader.cancel().catch(() => {}),
  };
}

/**
 * `fetch` through `transport` (a handler called directly) instead of a socket, recording the
 * response like {@link recordingFetch}.
 */
export function recordingFetchVia(transport: typeof fetch = fetch): typeof fetch {
  return async (input, init) => {
    const response = await transport(input, init);
    recordHeaders(response.status, response.headers.entries());
    if (!response.body) return response;
    const decoder = new TextDecoder();
    const tap = new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        transcript.push(decoder.decode(chunk, { stream: true }));
        controller.enqueue(chunk);
      },
    });
    const copy = new Response(response.body.pipeThrough(tap), {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
    // `new Response` drops the URL; the openai SDK does not need it, but keep it for messages.
    Object.defineProperty(copy, 'url', { value: response.url });
    return copy;
  };
}

/**
 * Raw request bytes as the `Request` a Fetch runtime would make of them, sent through
 * `transport`: the request line and headers parsed as an HTTP/1.1 server would; a request no
 * `Request` can carry (an invalid URL or header value) is answered 400, as the runtime would.
 */
export async function rawViaRequest(transport: typeof fetch, raw: string): Promise<RawResponse> {
  const headEnd = raw.indexOf('\r\n\r\n');
  const lines = raw.slice(0, headEnd < 0 ? raw.length : headEnd).split('\r\n');
  const [method = 'GET', target = '/'] = lines[0]!.split(' ');
  let response: Response;
  try {
    const headers = new Headers();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon > 0) headers.append(line.slice(0, colon), line.slice(colon + 1).trim());
    }
    const url = target.startsWith('/')
      ? `http://${headers.get('host') ?? '127.0.0.1'}${target}`
      : target;
    const request = new Request(url, { method, headers });
    response = await transport(request);
  } catch {
    response = new Response(null, { status: 400 });
  }
  const text = `HTTP/1.1 ${response.status}\r\n${[...response.headers].map(([n, v]) => `${n}: ${v}`).join('\r\n')}\r\n\r\n${await response.text()}`;
  transcript.push(text);
  return { status: response.status, text };
}

/** An OpenAI-compatible chat body for qwen-plus with one user message. */
export function chatBody(prompt: string, extra: Record<string, unknown> = {}) {
  return { model: 'qwen-plus', messages: [{ role: 'user', content: prompt }], ...extra };
}

/** A native generation body for qwen-plus with one user message, incremental output. */
export function generationBody(prompt: string) {
  return {
    model: 'qwen-plus',
    input: { messages: [{ role: 'user', content: prompt }] },
    parameters: { incremental_output: true },
  };
}
