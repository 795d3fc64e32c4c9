/** Options every PAI-EAS call shares, and how they are checked and filled in. */
import { DashScopeError, type RetryOptions } from '@dashscope-token/core/neutral';
import type { CredentialsOption } from './credentials.js';

/** Options shared by {@link createServiceInstanceToken}, {@link describeService} and the cache. */
export interface PaiEasClientOptions {
  /** Region id, which is also the EAS `ClusterId`, e.g. `cn-shanghai`. Required. */
  region: string;
  /**
   * OpenAPI endpoint (origin, optionally with a base path), e.g. the emulator's URL.
   * @default `https://pai-eas.${region}.aliyuncs.com`
   */
  endpoint?: string;
  /**
   * The AccessKey: explicit `{ accessKeyId, accessKeySecret, securityToken? }`, or a provider
   * with `getCredential()` such as `@alicloud/credentials`' `Client`, asked before every attempt.
   * @default ALIBABA_CLOUD_ACCESS_KEY_ID / ALIBABA_CLOUD_ACCESS_KEY_SECRET / ALIBABA_CLOUD_SECURITY_TOKEN
   */
  credentials?: CredentialsOption;
  /** Milliseconds one attempt may take (connect, answer, body). @default 10000 */
  timeoutMs?: number;
  /**
   * Retries of retryable failures (throttling, 5xx, network, timeouts, clock skew, a reused
   * nonce), each signed anew; `false` for a single attempt.
   * @default { maxAttempts: 3, baseDelayMs: 200, maxDelayMs: 5000, maxElapsedMs: 15000 }
   */
  retry?: RetryOptions | false;
  /** The `fetch` to send requests with. @default globalThis.fetch */
  fetch?: typeof fetch;
  /**
   * Receives one line per attempt (operation, HTTP status or error code, request id, attempt).
   * Never a header, a URL with a token, a credential or a signature. @default no logging
   */
  log?: (line: string) => void;
}

/** Per-call options. */
export interface CallOptions {
  /** Cancels the call (also between retries). */
  signal?: AbortSignal;
}

/** The checked, filled-in form of {@link PaiEasClientOptions}. */
export interface ResolvedClientOptions {
  region: string;
  endpoint: URL;
  credentials: CredentialsOption | undefined;
  timeoutMs: number;
  retry: RetryOptions | false | undefined;
  fetch: typeof fetch;
  log: ((line: string) => void) | undefined;
}

/** Default attempt timeout. */
export const DEFAULT_TIMEOUT_MS = 10_000;

const REGION = /^[a-z]{2,}(-[a-z0-9]+){1,4}$/;

function invalid(message: string): DashScopeError {
  return new DashScopeError({ code: 'InvalidParameter', status: 400, retryable: false, message });
}

/** The public OpenAPI endpoint of `region`. */
export function defaultEndpoint(region: string): string {
  return `https://pai-eas.${region}.aliyuncs.com`;
}

/**
 * Checks and fills in `options`.
 * @throws DashScopeError `InvalidParameter`
 */
export function resolveClientOptions(options: PaiEasClientOptions): ResolvedClientOptions {
  if (typeof options !== 'object' || options === null) {
    throw invalid('Missing options: expected { region, … }.');
  }
  const { region } = options;
  if (typeof region !== 'string' || !REGION.test(region)) {
    throw invalid('Invalid region: expected a region id such as cn-shanghai.');
  }
  let endpoint: URL;
  try {
    endpoint = new URL(options.endpoint ?? defaultEndpoint(region));
  } catch {
    throw invalid('Invalid endpoint: expected an http(s) URL.');
  }
  if (
    (endpoint.protocol !== 'https:' && endpoint.protocol !== 'http:') ||
    endpoint.search !== '' ||
    endpoint.hash !== '' ||
    endpoint.username !== '' ||
    endpoint.password !== ''
  ) {
    throw invalid('Invalid endpoint: expected an http(s) URL without query or credentials.');
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw invalid('Invalid timeoutMs: expected a number of milliseconds > 0.');
  }
  const fetchImpl = options.fetch ?? globalThis.fetch;
  if (typeof fetchImpl !== 'function') {
    throw invalid('No fetch: pass the fetch option in a runtime without globalThis.fetch.');
  }
  if (options.log !== undefined && typeof options.log !== 'function') {
    throw invalid('Invalid log: expected a function.');
  }
  return {
    region,
    endpoint,
    credentials: options.credentials,
    timeoutMs,
    retry: options.retry,
    fetch: fetchImpl,
    log: options.log,
  };
}
