/**
 * The endpoint and token of each EAS service, from `DescribeService`, cached and refreshed,
 * one lookup in flight per service; what a proxy in front of EAS services needs.
 */
import { DashScopeError, SingleFlight, waitWithSignal } from '@dashscope-token/core/neutral';
import type { PaiEasClientOptions } from './client-options.js';
import { describeService } from './describe-service.js';
import { checkEasName } from './names.js';

/** Where to send a service's calls and the token to send with them. */
export interface ServiceEndpoint {
  /** The service's base URL (`…/api/predict/{service}`), without a trailing slash. */
  endpoint: string;
  /** Sent as `Authorization: <token>`; absent for a service without a token. A secret. */
  token: string | undefined;
}

/** Options of {@link createServiceCache}. */
export interface ServiceCacheOptions extends PaiEasClientOptions {
  /** Seconds a description is used before it is fetched again. @default 300 */
  refreshSeconds?: number;
  /**
   * Seconds a description may still be used, after `refreshSeconds`, when fetching it again
   * fails with a retryable error. @default 3600
   */
  maxStaleSeconds?: number;
  /** Which endpoint to use. @default 'internet' */
  network?: 'internet' | 'intranet';
  /**
   * Services whose endpoint and token are given, never described (no AccessKey needed for
   * them). @default {}
   */
  explicit?: Readonly<Record<string, { endpoint: string; token?: string }>>;
  /** Millisecond clock. @default Date.now */
  clock?: () => number;
}

/** Per-lookup options. */
export interface ServiceLookupOptions {
  /** Stops waiting (the shared lookup carries on for other callers). */
  signal?: AbortSignal;
  /** Describe the service again even if the cached description is fresh. */
  forceRefresh?: boolean;
}

/** The cache returned by {@link createServiceCache}. */
export interface ServiceCache {
  /** The endpoint and token of `service`. @throws DashScopeError */
  get(service: string, options?: ServiceLookupOptions): Promise<ServiceEndpoint>;
  /**
   * Forgets `service`'s description, e.g. after the service answered 401. With `token`, only
   * if the cached token is that one, so many concurrent 401s cause one lookup.
   */
  invalidate(service: string, token?: string): void;
  /** Forgets every description. */
  clear(): void;
  /** Counters: descriptions fetched, cache hits, failed lookups, services cached. */
  stats(): { lookups: number; hits: number; errors: number; size: number };
}

interface Entry {
  value: ServiceEndpoint;
  fetchedAt: number;
}

function invalid(message: string): DashScopeError {
  return new DashScopeError({ code: 'InvalidParameter', status: 400, retryable: false, message });
}

function seconds(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    throw invalid(`Invalid ${name}: expected a number of seconds >= 0.`);
  }
  return v;
}

function abortedLookup(): DashScopeError {
  return new DashScopeError({
    code: 'Aborted',
    status: 499,
    retryable: false,
    message: 'The service lookup was aborted.',
  });
}

function normaliseEndpoint(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalid('Invalid service endpoint: expected an http(s) URL.');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw invalid('Invalid service endpoint: expected an http(s) URL.');
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

/**
 * A cache of service endpoints and tokens over `DescribeService`.
 *
 * @example
 * const services = createServiceCache({ region: 'cn-shanghai' });
 * const { endpoint, token } = await services.get('my_llm');
 * const res = await fetch(`${endpoint}/v1/chat/completions`, { headers: { Authorization: token } … });
 * if (res.status === 401) services.invalidate('my_llm', token); // then retry once
 */
export function createServiceCache(options: ServiceCacheOptions): ServiceCache {
  const refreshMs = seconds('refreshSeconds', options.refreshSeconds, 300) * 1000;
  const maxStaleMs = seconds('maxStaleSeconds', options.maxStaleSeconds, 3600) * 1000;
  const network = options.network ?? 'internet';
  if (network !== 'internet' && network !== 'intranet') {
    throw invalid("Invalid network: expected 'internet' or 'intranet'.");
  }
  const clock = options.clock ?? Date.now;
  const explicit = new Map<string, ServiceEndpoint>();
  for (const [name, value] of Object.entries(options.explicit ?? {})) {
    checkEasName('service', name);
    explicit.set(name, { endpoint: normaliseEndpoint(value.endpoint), token: value.token });
  }
  const {
    refreshSeconds: _r,
    maxStaleSeconds: _m,
    network: _n,
    explicit: _e,
    clock: _c,
    ...client
  } = options;
  const entries = new Map<string, Entry>();
  const flights = new SingleFlight<ServiceEndpoint>();
  const counters = { lookups: 0, hits: 0, errors: 0 };

  const describe = async (service: string): Promise<ServiceEndpoint> => {
    counters.lookups += 1;
    const description = await describeService({ ...client, service });
    const raw =
      network === 'internet' ? description.internetEndpoint : description.intranetEndpoint;
    if (raw === undefined) {
      throw new DashScopeError({
        code: 'BadGateway',
        status: 502,
        retryable: false,
        message: `PAI-EAS reported no ${network} endpoint for the service.`,
        ...(description.requestId === undefined ? {} : { requestId: description.requestId }),
      });
    }
    const value = { endpoint: normaliseEndpoint(raw), token: description.accessToken };
    entries.set(service, { value, fetchedAt: clock() });
    return value;
  };

  const lookup = (service: string, signal: AbortSignal | undefined): Promise<ServiceEndpoint> => {
    const flight = flights.get(service) ?? flights.start(service, false, () => describe(service));
    return signal ? waitWithSignal(flight.promise, signal, abortedLookup) : flight.promise;
  };

  return {
    async get(service, lookupOptions = {}) {
      checkEasName('service', service);
      const given = explicit.get(service);
      if (given) return given;
      const entry = entries.get(service);
      const age = entry ? clock() - entry.fetchedAt : Number.POSITIVE_INFINITY;
      if (entry && !lookupOptions.forceRefresh && age < refreshMs) {
        counters.hits += 1;
        return entry.value;
      }
      try {
        if (lookupOptions.signal?.aborted) throw abortedLookup();
        return await lookup(service, lookupOptions.signal);
      } catch (error) {
        if (lookupOptions.signal?.aborted) throw error;
        counters.errors += 1;
        const retryable = (error as { retryable?: unknown }).retryable === true;
        if (entry && retryable && age < refreshMs + maxStaleMs) return entry.value;
        throw error;
      }
    },
    invalidate(service, token) {
      const entry = entries.get(service);
      if (!entry) return;
      if (token === undefined || entry.value.token === token) entries.delete(service);
    },
    clear() {
      entries.clear();
    },
    stats() {
      return { ...counters, size: entries.size };
    },
  };
}
