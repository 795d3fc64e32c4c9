/** A small WebSocket client for the tests: connect (or get the HTTP refusal), queue messages. */
import type { IncomingHttpHeaders } from 'node:http';
import WebSocket, { type ClientOptions } from 'ws';

/** A message as received: text or binary. */
export interface Received {
  binary: boolean;
  data: Buffer;
  /** Text messages parsed as JSON (`undefined` for binary or invalid JSON). */
  json?: unknown;
}

/** An open connection with a queue of received messages. */
export interface Connection {
  ws: WebSocket;
  /** The next message (waits up to `timeoutMs`). */
  next(timeoutMs?: number): Promise<Received>;
  /** The next `n` messages. */
  take(n: number, timeoutMs?: number): Promise<Received[]>;
  /** Resolves with the close code and reason. */
  closed: Promise<{ code: number; reason: string }>;
}

/** An HTTP answer instead of a 101. */
export interface Refusal {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export type Outcome = { kind: 'open'; conn: Connection } | { kind: 'refused'; refusal: Refusal };

function track(ws: WebSocket): Connection {
  const queue: Received[] = [];
  const waiters: ((r: Received) => void)[] = [];
  ws.on('message', (data, isBinary) => {
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer);
    let json: unknown;
    if (!isBinary) {
      try {
        json = JSON.parse(buf.toString('utf8'));
      } catch {
        json = undefined;
      }
    }
    const r: Received = { binary: isBinary, data: buf, json };
    const waiter = waiters.shift();
    if (waiter) waiter(r);
    else queue.push(r);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString('utf8') }));
  });
  const next = (timeoutMs = 5000) =>
    new Promise<Received>((resolve, reject) => {
      const queued = queue.shift();
      if (queued) {
        resolve(queued);
        return;
      }
      const timer = setTimeout(() => {
        const i = waiters.indexOf(done);
        if (i >= 0) waiters.splice(i, 1);
        reject(new Error(`no message within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (r: Received) => {
        clearTimeout(timer);
        resolve(r);
      };
      waiters.push(done);
    });
  return {
    ws,
    next,
    async take(n, timeoutMs) {
      const out: Received[] = [];
      for (let i = 0; i < n; i++) out.push(await next(timeoutMs));
      return out;
    },
    closed,
  };
}

/** Connects; resolves with the open connection, or with the HTTP answer that refused it. */
export function connect(
  url: string,
  options: ClientOptions & { protocols?: string[] } = {},
): Promise<Outcome> {
  const { protocols, ...rest } = options;
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols ?? [], { perMessageDeflate: false, ...rest });
    const conn = track(ws);
    ws.once('open', () => resolve({ kind: 'open', conn }));
    ws.once('unexpected-response', (req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        resolve({
          kind: 'refused',
          refusal: {
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          },
        });
        req.destroy();
      });
      res.on('error', reject);
    });
    ws.on('error', (error) => reject(error));
  });
}

/** Connects and expects a 101. */
export async function open(
  url: string,
  options?: ClientOptions & { protocols?: string[] },
): Promise<Connection> {
  const outcome = await connect(url, options);
  if (outcome.kind !== 'open') {
    throw new Error(`expected 101, got ${outcome.refusal.status} ${outcome.refusal.body}`);
  }
  return outcome.conn;
}

/** Connects and expects a refusal. */
export async function refused(
  url: string,
  options?: ClientOptions & { protocols?: string[] },
): Promise<Refusal> {
  const outcome = await connect(url, options);
  if (outcome.kind !== 'refused') {
    outcome.conn.ws.terminate();
    throw new Error('expected the handshake to be refused, but it opened');
  }
  return outcome.refusal;
}
