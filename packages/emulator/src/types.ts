/**
 * Public types of the emulator: its options, faults, recorded requests and
 * the running {@link Emulator} handle.
 */
import type { EmulatorPaiEasOptions } from './pai-eas/options.js';

/** Options of {@link startEmulator}. Every option is optional. */
export interface EmulatorOptions {
  /**
   * TCP port to listen on; `0` picks a random free port (read it back from `emulator.port`).
   * @default 0
   */
  port?: number;
  /**
   * Interface to listen on. Keep the loopback default unless another machine must reach it.
   * @default '127.0.0.1'
   */
  host?: string;
  /**
   * Permanent API keys (`sk-…`) the emulator accepts, both for minting temporary keys and
   * for inference calls.
   * @default [DEFAULT_EMULATOR_API_KEY]
   */
  apiKeys?: string[];
  /**
   * Workspace ids the emulator knows: a request whose `X-DashScope-WorkSpace` names another
   * one is refused (401 `InvalidApiKey`). Keys given in `apiKeys` are not bound to a workspace
   * and may call any known one; bind a key with `addApiKey(key, { workspace })`.
   * @default [DEFAULT_EMULATOR_WORKSPACE]
   */
  workspaces?: string[];
  /**
   * Delay between two streamed chunks (SSE frames), in milliseconds.
   * @default 30
   */
  chunkDelayMs?: number;
  /**
   * Latency added before every answer (not to control routes), in milliseconds.
   * @default 0
   */
  latencyMs?: number;
  /**
   * Seconds added to the local clock to make the emulator's clock. Token expiry
   * (`expires_at`) and the `Date` header use the emulator's clock, so a non-zero offset
   * simulates clock skew between your machine and Model Studio.
   * @default 0
   */
  clockOffsetSeconds?: number;
  /**
   * CORS for browsers that call the emulator directly with a temporary key: `true` allows
   * any origin (the request's `Origin` is echoed), `false` sends no CORS headers, an array
   * is an allow-list of exact origins (e.g. `['http://localhost:5173']`).
   * @default true
   */
  cors?: boolean | string[];
  /**
   * Whether a temporary key (`st-…`) may itself mint temporary keys on `POST /api/v1/tokens`.
   * Model Studio does not document this, so the strict default refuses it with 401.
   * @default false
   */
  allowTemporaryKeyMinting?: boolean;
  /**
   * Whether a stream authenticated with a temporary key fails when that key expires
   * mid-stream (an `event:error` / error chunk with `InvalidApiKey`, then the end), as
   * Model Studio warns in-flight requests may. Off by default so short-TTL tests stay stable.
   * @default false
   */
  failStreamsOnExpiry?: boolean;
  /**
   * Whether the `/__emulator/…` control routes (fault injection, recorded requests, clock,
   * latency, keys, stats) are served. When `false` they answer 404 like any unknown path.
   * @default true
   */
  controlRoutes?: boolean;
  /**
   * The text the models answer, given the last user message (or the `prompt`) and the model.
   * @default a deterministic sentence: `Hello from the DashScope emulator (<model>). You said: "<prompt>".`
   */
  reply?: (prompt: string, model: string) => string;
  /**
   * Receives one line per answered request (method, path with secret-looking query values
   * redacted, status, route, duration). Never includes header values or bodies.
   * @default no logging
   */
  log?: (line: string) => void;
  /**
   * The emulated PAI-EAS: the AccessKeys its OpenAPI accepts (V3 signatures verified
   * strictly), its region and deployed services, and how long Workbench URLs last.
   * @default DEFAULT_EMULATOR_ACCESS_KEY and DEFAULT_EMULATOR_STS_CREDENTIALS; region
   * 'cn-shanghai'; one service DEFAULT_EMULATOR_EAS_SERVICE; Workbench URLs 300 s
   */
  paiEas?: EmulatorPaiEasOptions;
}

/**
 * A group of emulated endpoints, used to target faults and to label recorded requests.
 * `'*'` (faults only) means any of them.
 *
 * - `tokens`: `POST /api/v1/tokens`
 * - `generation`: native text and multimodal generation
 * - `chat`: `POST /compatible-mode/v1/chat/completions`
 * - `embeddings`: native and OpenAI-compatible embeddings
 * - `models`: `GET /compatible-mode/v1/models`
 * - `images`: `POST /api/v1/services/aigc/text2image/image-synthesis` (async image synthesis)
 * - `tasks`: `GET /api/v1/tasks/{task_id}`
 * - `files`: `GET /emulator-files/…` (the result files of tasks)
 * - `ws-inference`: WebSocket handshakes on `/api-ws/v1/inference` (speech)
 * - `ws-realtime`: WebSocket handshakes on `/api-ws/v1/realtime` (Qwen-Omni / TTS realtime)
 * - `pai-eas`: the PAI-EAS OpenAPI (`/api/v2/…`); faults answer in its shape (`Throttling.User`, `InternalError`)
 * - `pai-eas-workbench`: the one-time Workbench login page
 * - `pai-eas-service`: the emulated EAS services (`/api/predict/{service}/…`)
 */
export type EmulatorRoute =
  | 'tokens'
  | 'generation'
  | 'chat'
  | 'embeddings'
  | 'models'
  | 'images'
  | 'tasks'
  | 'files'
  | 'ws-inference'
  | 'ws-realtime'
  | 'pai-eas'
  | 'pai-eas-workbench'
  | 'pai-eas-service'
  | '*';

/**
 * A failure the emulator answers with instead of the normal answer. Faults fire before
 * authentication, as an upstream gateway's would, so they hit even requests with a bad key.
 */
export type EmulatorFault =
  /** 429 `Throttling.RateQuota` (`limit_requests` on compatible-mode); a `Retry-After` header only when `retryAfterSeconds` is given. */
  | { type: 'throttle'; retryAfterSeconds?: number }
  /** 500 `SystemError` (`internal_error` on compatible-mode). */
  | { type: 'system-error' }
  /** 502 with a `text/html` page, like a load balancer in front of the service. */
  | { type: 'html-502' }
  /** 200 `application/json` whose body is truncated JSON. */
  | { type: 'malformed-json' }
  /** The socket is destroyed without any answer (the client sees a connection reset). */
  | { type: 'reset' }
  /** No answer at all, until the client goes away or the emulator closes. */
  | { type: 'hang' }
  /** 401 `InvalidApiKey` (`invalid_api_key` on compatible-mode), as if the key had been revoked. */
  | { type: 'invalid-api-key' }
  /**
   * On a streaming request: the stream starts normally, sends `afterChunks` content frames
   * (default 1), then an error frame (`event:error` natively, a `data: {"error":…}` chunk on
   * compatible-mode) and ends. On a non-streaming request: a plain error answer.
   * `status` defaults to 500 and `code` to `SystemError`.
   */
  | { type: 'stream-error'; afterChunks?: number; status?: number; code?: string; message?: string }
  /**
   * On a streaming request: the stream starts normally, sends `afterChunks` content frames
   * (default 1), then the socket is destroyed mid-stream. On a non-streaming request: like `reset`.
   */
  | { type: 'stream-cut'; afterChunks?: number }
  /** Any other answer: `body` is sent as JSON unless it is a string (sent as-is, `text/plain` unless `headers` say otherwise). */
  | { type: 'status'; status: number; body: unknown; headers?: Record<string, string> };

/** What a recorded request was routed to: an {@link EmulatorRoute}, a control route, or nothing known. */
export type RecordedRoute = Exclude<EmulatorRoute, '*'> | 'control' | 'unknown';

/** One request as the emulator received it. */
export interface RecordedRequest {
  /** The request id the emulator answered with (`x-request-id` header and `request_id`). */
  id: string;
  /** HTTP method, upper-case. */
  method: string;
  /** Path including the query string, as received. */
  path: string;
  /**
   * Headers as received, with lower-case names, INCLUDING `authorization` and `cookie`, so
   * tests can assert what reached "upstream". Over `GET /__emulator/requests` permanent keys
   * (`sk-…`) are masked.
   */
  headers: Record<string, string | string[]>;
  /** The first 64 KiB of the body, decoded as UTF-8. */
  body: string;
  /** When the request was received: local `Date.now()` in ms. */
  receivedAt: number;
  /** What the request was routed to. */
  route: RecordedRoute;
  /** `true` when the client went away before the answer ended (e.g. an aborted stream). */
  clientClosedEarly: boolean;
  /** When the client went away before the answer ended: local `Date.now()` in ms. */
  closedAt?: number;
  /** HTTP status answered, once the answer has started (absent for `reset`/`hang`). */
  status?: number;
  /** WebSocket routes: the subprotocol the emulator selected, if any. */
  protocol?: string;
  /** WebSocket routes: messages (text and binary) received from the client so far. */
  messagesReceived?: number;
  /** WebSocket routes: payload bytes received from the client so far. */
  bytesReceived?: number;
  /**
   * WebSocket routes: the close code of the session once it ended (what the client sent, or
   * echoed when the emulator closed first; 1005 = no code, 1006 = the connection dropped).
   * `clientClosedEarly` is `true` when the client ended the session.
   */
  closeCode?: number;
  /** WebSocket routes: the close reason, once the session ended. */
  closeReason?: string;
}

/** Counters returned by {@link Emulator.stats}. */
export interface EmulatorStats {
  /** Temporary keys minted since start. */
  tokensIssued: number;
  /** Requests received per route (`tokens`, `generation`, `chat`, `embeddings`, `models`, `control`, `unknown`). */
  requests: Record<string, number>;
  /** TCP connections currently open. */
  openConnections: number;
  /** WebSocket sessions currently open (`/api-ws/v1/…`). */
  openWebSockets: number;
}

/** A running emulator, returned by {@link startEmulator}. */
export interface Emulator {
  /** Base URL, e.g. `http://127.0.0.1:41234` (no trailing slash). Use it as the DashScope base URL. */
  readonly url: string;
  /** The port actually listened on. */
  readonly port: number;
  /** The permanent API keys currently accepted. */
  readonly apiKeys: readonly string[];
  /**
   * The next `times` calls to `route` answer with `fault` instead of the normal answer.
   * Faults are queued FIFO; `'*'` matches any route. `times` may be `Infinity`.
   * @param times how many calls the fault applies to. @default 1
   */
  fault(route: EmulatorRoute, fault: EmulatorFault, times?: number): void;
  /** Removes every queued fault. */
  clearFaults(): void;
  /**
   * Closes every open WebSocket session from the emulator's side with `code` (1000..1014 or
   * 3000..4999) and `reason` (at most 123 bytes), as Model Studio ending sessions would.
   * Returns how many sessions were open.
   * @param code @default 1000
   * @param reason @default ''
   */
  closeWebSockets(code?: number, reason?: string): number;
  /** Changes the latency added before every answer, in ms. */
  setLatency(ms: number): void;
  /** Changes the delay between streamed chunks, in ms. */
  setChunkDelay(ms: number): void;
  /** Sets the emulator's clock offset from the local clock, in seconds (may be negative). */
  setClockOffset(seconds: number): void;
  /** The emulator's clock: UNIX seconds, fractional. */
  now(): number;
  /** A copy of every recorded request, oldest first (control routes are not recorded). */
  readonly requests: RecordedRequest[];
  /** Forgets the recorded requests. */
  clearRequests(): void;
  /** Counters: tokens issued, requests per route, open connections. */
  stats(): EmulatorStats;
  /**
   * Accepts one more permanent key. With `workspace`, the key belongs to that workspace (added
   * to the known ones): a call with another `X-DashScope-WorkSpace` is refused, and temporary
   * keys it mints inherit the binding.
   * @param options.workspace @default not bound (any known workspace)
   */
  addApiKey(key: string, options?: { workspace?: string }): void;
  /**
   * Stops accepting a permanent key (minting and inference answer 401). Temporary keys it
   * minted stay valid until they expire: Model Studio documents that they cannot be revoked.
   */
  revokeApiKey(key: string): void;
  /**
   * Resolves with the first recorded request (already received or future) that matches
   * `pred`; the predicate is evaluated again when a request's client goes away, so
   * `r => r.clientClosedEarly` works. Rejects after `timeoutMs` or when the emulator closes.
   * @param timeoutMs @default 5000
   */
  waitForRequest(
    pred: (r: RecordedRequest) => boolean,
    timeoutMs?: number,
  ): Promise<RecordedRequest>;
  /** `request`: a request was recorded. `request-closed`: its client went away before the answer ended. */
  on(event: 'request' | 'request-closed', fn: (r: RecordedRequest) => void): void;
  /** Removes a listener added with {@link Emulator.on}. */
  off(event: 'request' | 'request-closed', fn: (r: RecordedRequest) => void): void;
  /**
   * Stops the emulator: closes every connection (including hanging requests and open
   * streams) and clears every timer. Idempotent.
   */
  close(): Promise<void>;
}
