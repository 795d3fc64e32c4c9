/**
 * Watches every HTTP request undici sends (through any dispatcher) on its diagnostics channels,
 * so a test can see what went to Model Studio without wrapping or mocking anything: how many
 * token requests were made per API key, and how many were in flight at once.
 */
import diagnostics from 'node:diagnostics_channel';

interface UndiciRequest {
  method: string;
  path: string;
  headers: string[] | string;
}

function authorizationOf(request: UndiciRequest): string {
  const headers = request.headers;
  if (Array.isArray(headers)) {
    for (let i = 0; i + 1 < headers.length; i += 2) {
      if (String(headers[i]).toLowerCase() === 'authorization') return String(headers[i + 1]);
    }
    return '';
  }
  return /^authorization: *(.*)$/im.exec(headers)?.[1]?.trim() ?? '';
}

/** Token requests seen on the wire. */
export interface MintWatch {
  /** Token requests started, per `Authorization` value. */
  readonly started: Map<string, number>;
  /**
   * Most token requests in flight at the same time, per cache entry: `Authorization` value and
   * path (which carries the TTL).
   */
  readonly maxInFlight: Map<string, number>;
  /** Token requests in flight now (all keys). */
  inFlight(): number;
  /** Token requests started (all keys). */
  total(): number;
  reset(): void;
  stop(): void;
}

/** Starts watching `POST …/api/v1/tokens` requests made through undici in this process. */
export function watchMints(): MintWatch {
  const open = new Map<UndiciRequest, string>();
  const inFlight = new Map<string, number>();
  const started = new Map<string, number>();
  const maxInFlight = new Map<string, number>();
  const onCreate = (message: unknown): void => {
    const request = (message as { request: UndiciRequest }).request;
    if (!request.path.includes('/api/v1/tokens')) return;
    const auth = authorizationOf(request);
    const entry = `${auth} ${request.path}`;
    open.set(request, entry);
    started.set(auth, (started.get(auth) ?? 0) + 1);
    const now = (inFlight.get(entry) ?? 0) + 1;
    inFlight.set(entry, now);
    if (now > (maxInFlight.get(entry) ?? 0)) maxInFlight.set(entry, now);
  };
  const onDone = (message: unknown): void => {
    const request = (message as { request: UndiciRequest }).request;
    const entry = open.get(request);
    if (entry === undefined) return;
    open.delete(request);
    inFlight.set(entry, (inFlight.get(entry) ?? 1) - 1);
  };
  diagnostics.subscribe('undici:request:create', onCreate);
  diagnostics.subscribe('undici:request:trailers', onDone);
  diagnostics.subscribe('undici:request:error', onDone);
  return {
    started,
    maxInFlight,
    inFlight: () => open.size,
    total: () => [...started.values()].reduce((a, b) => a + b, 0),
    reset() {
      started.clear();
      maxInFlight.clear();
      for (const [auth, n] of inFlight) maxInFlight.set(auth, n);
    },
    stop() {
      diagnostics.unsubscribe('undici:request:create', onCreate);
      diagnostics.unsubscribe('undici:request:trailers', onDone);
      diagnostics.unsubscribe('undici:request:error', onDone);
    },
  };
}
