/** `DescribeService`: where a deployed service answers and the token it expects. */
import {
  type CallOptions,
  type PaiEasClientOptions,
  resolveClientOptions,
} from './client-options.js';
import { malformedAnswer } from './eas-errors.js';
import { checkEasName } from './names.js';
import { callOpenApi } from './openapi-call.js';

/** Options of {@link describeService}. */
export interface DescribeServiceOptions extends PaiEasClientOptions, CallOptions {
  /** EAS service name. */
  service: string;
}

/**
 * The parts of a service's description a caller needs. The rest of the answer (service
 * configuration, which may hold environment values) is deliberately not returned.
 */
export interface ServiceDescription {
  /** The service name as EAS reports it. */
  serviceName: string;
  /** e.g. `Running`. */
  status: string | undefined;
  /** Public endpoint, e.g. `http://123….cn-shanghai.pai-eas.aliyuncs.com/api/predict/my_llm`. */
  internetEndpoint: string | undefined;
  /** VPC endpoint. */
  intranetEndpoint: string | undefined;
  /**
   * The service token callers send as `Authorization: <token>`. A secret: never send it to a
   * browser, never log it.
   */
  accessToken: string | undefined;
  /** Alibaba Cloud's request id. */
  requestId: string | undefined;
}

function optionalString(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/**
 * Calls `GET /api/v2/services/{ClusterId}/{ServiceName}`, signed with Alibaba Cloud V3.
 * @throws DashScopeError (see {@link createServiceInstanceToken})
 */
export async function describeService(
  options: DescribeServiceOptions,
): Promise<ServiceDescription> {
  const resolved = resolveClientOptions(options);
  const service = checkEasName('service', options.service);
  const action = 'DescribeService';
  const answer = await callOpenApi(
    resolved,
    { action, method: 'GET', segments: ['api', 'v2', 'services', resolved.region, service] },
    options.signal,
  );
  const { body } = answer;
  const internetEndpoint = optionalString(body.InternetEndpoint);
  const intranetEndpoint = optionalString(body.IntranetEndpoint);
  if (internetEndpoint === undefined && intranetEndpoint === undefined) {
    throw malformedAnswer(action, 'an endpoint', answer.requestId);
  }
  return {
    serviceName: optionalString(body.ServiceName) ?? service,
    status: optionalString(body.Status),
    internetEndpoint,
    intranetEndpoint,
    accessToken: optionalString(body.AccessToken),
    requestId: answer.requestId,
  };
}
