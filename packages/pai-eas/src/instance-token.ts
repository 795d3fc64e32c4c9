/** `CreateServiceInstanceToken`: a one-time Workbench login URL for a container. */
import {
  type CallOptions,
  type PaiEasClientOptions,
  resolveClientOptions,
} from './client-options.js';
import { malformedAnswer } from './eas-errors.js';
import { checkEasName } from './names.js';
import { callOpenApi } from './openapi-call.js';

/** Options of {@link createServiceInstanceToken}. */
export interface CreateServiceInstanceTokenOptions extends PaiEasClientOptions, CallOptions {
  /** EAS service name. */
  service: string;
  /** Instance (pod) name, e.g. from the EAS console or `ListServiceInstances`. */
  instance: string;
  /** Container in the instance (`WorkerName`), e.g. `worker0`. @default the main container */
  worker?: string;
}

/** A Workbench login. */
export interface ServiceInstanceToken {
  /**
   * One-time URL that logs a browser into the container's terminal. A bearer secret: hand it
   * to the one user it was made for, never log or cache it.
   */
  workbenchUrl: string;
  /** Alibaba Cloud's request id, for support. */
  requestId: string | undefined;
}

/**
 * Calls `GET /api/v2/services/{ClusterId}/{ServiceName}/instances/{InstanceName}/token` with
 * `ActionType=WorkBench`, signed with Alibaba Cloud V3, and returns the Workbench URL.
 * Names are checked before anything is signed.
 *
 * @throws DashScopeError `InvalidParameter` (400) for a bad name or option; EAS errors keep
 * their code (`Forbidden.RAM`, `SignatureDoesNotMatch`, …), see the README.
 */
export async function createServiceInstanceToken(
  options: CreateServiceInstanceTokenOptions,
): Promise<ServiceInstanceToken> {
  const resolved = resolveClientOptions(options);
  const service = checkEasName('service', options.service);
  const instance = checkEasName('instance', options.instance);
  const worker = options.worker === undefined ? undefined : checkEasName('worker', options.worker);
  const action = 'CreateServiceInstanceToken';
  const query: Record<string, string> = { ActionType: 'WorkBench' };
  if (worker !== undefined) query.WorkerName = worker;
  const answer = await callOpenApi(
    resolved,
    {
      action,
      method: 'GET',
      segments: ['api', 'v2', 'services', resolved.region, service, 'instances', instance, 'token'],
      query,
    },
    options.signal,
  );
  const url = answer.body.WorkbenchUrl;
  if (typeof url !== 'string' || !/^https?:\/\/[^\s]+$/.test(url)) {
    throw malformedAnswer(action, 'a WorkbenchUrl', answer.requestId);
  }
  return { workbenchUrl: url, requestId: answer.requestId };
}
