/**
 * The HTTP transport the token engine mints through: one request, one bounded answer. Small
 * enough that `fetch`, undici or any runtime's client can implement it in a few lines.
 */

/** One HTTP request made by the token engine. */
export interface HttpRequest {
  /** Absolute `http:`/`https:` URL. */
  url: string;
  /** HTTP method, upper case (`POST`). */
  method: string;
  /** Request headers, lower-case names. */
  headers: Readonly<Record<string, string>>;
  /** Request body, when there is one. */
  body?: string;
  /** Aborts the request and the reading of its answer (the caller's abort and the overall timeout). */
  signal: AbortSignal;
  /** Milliseconds the whole request may take; the engine also enforces it through `signal`. */
  timeoutMs: number;
}

/** The answer to an {@link HttpRequest}. */
export interface HttpResponse {
  /** HTTP status code. */
  status: number;
  /** The value of a header (name in lower case), `undefined` when absent. */
  header(name: string): string | undefined;
  /**
   * Reads the body as UTF-8 text, at most `maxBytes` bytes. Resolves `undefined` when the body
   * is longer (reading stops there and the rest is discarded).
   */
  text(maxBytes: number): Promise<string | undefined>;
}

/**
 * Sends HTTP requests for the token engine. Rejects only for failures that are not answers
 * (connection refused, DNS, TLS, abort); every answer, whatever its status, resolves.
 *
 * Built in: `undiciTransport()` (the Node default, `@dashscope-token/core`) and
 * `fetchTransport()` (the default of `@dashscope-token/core/neutral`).
 */
export interface HttpTransport {
  request(request: HttpRequest): Promise<HttpResponse>;
}
