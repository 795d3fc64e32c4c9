/**
 * `createPaiEas(...)`: the `paiEas` option of every dashscope-token front door. It binds the
 * EAS operations the routes call (Workbench URLs, the service cache) to the client options, so
 * that the core (which does not depend on this package) gets them as plain functions.
 */
import {
  DashScopeError,
  type PaiEasOperations,
  type PaiEasRoutesOptions,
  type WorkbenchAuthorizer,
} from '@dashscope-token/core/neutral';
import type { PaiEasClientOptions } from './client-options.js';
import { createServiceInstanceToken } from './instance-token.js';
import { checkEasName, parseWorkbenchTarget } from './names.js';
import { createServiceCache, type ServiceCacheOptions } from './service-cache.js';

/** Options of {@link createPaiEas}: the client's, the cache's, and the routes'. */
export interface PaiEasOptions<Ctx>
  extends PaiEasClientOptions,
    Pick<ServiceCacheOptions, 'refreshSeconds' | 'maxStaleSeconds' | 'network' | 'explicit'> {
  /**
   * The services the routes reach (Workbench URLs and service calls). Required: a service not
   * listed is refused 403 before anything is signed.
   */
  services: readonly string[];
  /**
   * Who may get a Workbench URL (shell access to a container): `true` allows; `{ status: 401 }`
   * answers 401; anything else, or a throw, 403.
   * @default none: every Workbench request is refused 403
   */
  authorizeWorkbench?: WorkbenchAuthorizer<Ctx>;
  /** Largest body of `POST {prefix}/pai-eas/workbench`, bytes. @default 4096 */
  maxWorkbenchBodyBytes?: number;
  /** Milliseconds the client may take to send that body. @default 10000 */
  workbenchBodyTimeoutMs?: number;
}

/**
 * The `paiEas` option of `createDashScopeHandler`, `createFetchHandler` and the adapters:
 * `POST {prefix}/pai-eas/workbench` (one-time Workbench URLs, deny by default) and
 * `{prefix}/pai-eas/services/{service}/…` (calls to deployed services with their token
 * injected). Endpoints and tokens come from `DescribeService` (cached, re-fetched once after a
 * 401) unless given in `explicit`.
 *
 * @throws DashScopeError `InvalidParameter` for a bad option or service name.
 * @example
 * const dashscope = createDashScopeHandler({
 *   paiEas: createPaiEas({
 *     region: 'cn-shanghai',
 *     services: ['my_llm'],
 *     authorizeWorkbench: (req) => req.user?.role === 'operator',
 *   }),
 * });
 */
export function createPaiEas<Ctx>(options: PaiEasOptions<Ctx>): PaiEasRoutesOptions<Ctx> {
  const {
    services,
    authorizeWorkbench,
    maxWorkbenchBodyBytes,
    workbenchBodyTimeoutMs,
    refreshSeconds,
    maxStaleSeconds,
    network,
    explicit,
    ...client
  } = options;
  if (!Array.isArray(services) || services.length === 0) {
    throw new DashScopeError({
      code: 'InvalidParameter',
      status: 400,
      retryable: false,
      message: 'Invalid services: expected a non-empty array of EAS service names.',
    });
  }
  for (const service of services) checkEasName('service', service);
  const cache = createServiceCache({
    ...client,
    ...(refreshSeconds !== undefined && { refreshSeconds }),
    ...(maxStaleSeconds !== undefined && { maxStaleSeconds }),
    ...(network !== undefined && { network }),
    ...(explicit !== undefined && { explicit }),
  });
  const operations: PaiEasOperations = {
    parseWorkbenchTarget,
    async workbenchUrl(target, signal) {
      const result = await createServiceInstanceToken({
        ...client,
        ...target,
        ...(signal !== undefined && { signal }),
      });
      return result;
    },
    async serviceEndpoint(service, lookup = {}) {
      if (lookup.rejected !== undefined) cache.invalidate(service, lookup.rejected);
      return cache.get(service, lookup.signal !== undefined ? { signal: lookup.signal } : {});
    },
  };
  return {
    services: [...services],
    ...(authorizeWorkbench !== undefined && { authorizeWorkbench }),
    ...(maxWorkbenchBodyBytes !== undefined && { maxWorkbenchBodyBytes }),
    ...(workbenchBodyTimeoutMs !== undefined && { workbenchBodyTimeoutMs }),
    operations,
  };
}
