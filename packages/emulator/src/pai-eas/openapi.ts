/**
 * The EAS OpenAPI (`/api/v2/…`, version 2021-07-01): `DescribeService` and
 * `CreateServiceInstanceToken`, each V3-verified before it answers.
 */
import type { Exchange } from '../exchange.js';
import { sendEasError, sendEasJson } from './answers.js';
import type { EmulatedEasAction, ServiceRecord } from './options.js';
import { verifySignature } from './verify-signature.js';

/** Path of a Workbench login page (the token is in the query). */
export const WORKBENCH_LOGIN_PATH = '/ecs-workbench/disposable/login';

/** Base path of the emulated services' endpoints. */
export const PREDICT_PREFIX = '/api/predict/';

/** The origin the client used to reach the emulator. */
export function originOf(ex: Exchange): string {
  return `http://${ex.req.headers.host ?? '127.0.0.1'}`;
}

function decodeSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

/** A parsed OpenAPI path. */
type Operation =
  | { action: 'DescribeService'; cluster: string; service: string }
  | {
      action: 'CreateServiceInstanceToken';
      cluster: string;
      service: string;
      instance: string;
    };

/** The operation at `pathname` (under `/api/v2/services/`), if any. */
export function operationAt(pathname: string): Operation | undefined {
  const parts = pathname.split('/').slice(1).map(decodeSegment);
  if (parts.some((p) => p === undefined || p === '')) return undefined;
  const [api, v2, services, cluster, service, instances, instance, token] = parts as string[];
  if (api !== 'api' || v2 !== 'v2' || services !== 'services' || !cluster || !service) {
    return undefined;
  }
  if (parts.length === 5) return { action: 'DescribeService', cluster, service };
  if (parts.length === 8 && instances === 'instances' && instance && token === 'token') {
    return { action: 'CreateServiceInstanceToken', cluster, service, instance };
  }
  return undefined;
}

function serviceNotFound(ex: Exchange): void {
  sendEasError(ex, {
    status: 404,
    code: 'InvalidService.NotFound',
    message: 'The specified service does not exist in this region.',
  });
}

function describe(ex: Exchange, service: ServiceRecord): void {
  const origin = originOf(ex);
  sendEasJson(ex, 200, {
    ServiceName: service.name,
    ServiceId: `eas-m-${service.name.replace(/_/g, '')}`,
    Region: ex.state.paiEas.region,
    Status: 'Running',
    RunningInstance: service.instances.length,
    TotalInstance: service.instances.length,
    InternetEndpoint: `${origin}${PREDICT_PREFIX}${service.name}`,
    IntranetEndpoint: `${origin}${PREDICT_PREFIX}${service.name}`,
    AccessToken: service.token,
    ServiceConfig: JSON.stringify({
      metadata: { name: service.name, instance: service.instances.length },
      containers: [{ image: 'emulated/vllm-openai', port: 8000 }],
    }),
  });
}

function instanceToken(
  ex: Exchange,
  service: ServiceRecord,
  op: Extract<Operation, { action: 'CreateServiceInstanceToken' }>,
): void {
  const actionType = ex.query.get('ActionType');
  if (actionType !== null && actionType !== 'WorkBench') {
    sendEasError(ex, {
      status: 400,
      code: 'InvalidParameter',
      message: 'ActionType must be WorkBench.',
    });
    return;
  }
  if (!service.instances.includes(op.instance)) {
    sendEasError(ex, {
      status: 404,
      code: 'InvalidInstance.NotFound',
      message: 'The specified instance does not exist in this service.',
    });
    return;
  }
  const worker = ex.query.get('WorkerName') ?? undefined;
  if (worker !== undefined && !service.workers.includes(worker)) {
    sendEasError(ex, {
      status: 404,
      code: 'InvalidWorker.NotFound',
      message: 'The specified worker does not exist in this instance.',
    });
    return;
  }
  const token = ex.state.paiEas.logins.issue(
    { service: service.name, instance: op.instance, worker },
    ex.state.clock.now(),
  );
  sendEasJson(ex, 200, {
    Token: '***',
    Url: '***',
    StreamlogUrl: '***',
    WorkbenchUrl: `${originOf(ex)}${WORKBENCH_LOGIN_PATH}?token=${token}`,
  });
}

/** Serves `GET /api/v2/services/…`. */
export function openApiRoute(ex: Exchange): void {
  const op = operationAt(ex.pathname);
  if (!op) {
    sendEasError(ex, {
      status: 404,
      code: 'InvalidApi.NotFound',
      message: 'Specified api is not found, please check your url and method.',
    });
    return;
  }
  const raw = ex.req.url ?? '/';
  const q = raw.indexOf('?');
  const verdict = verifySignature(
    ex.state.paiEas,
    {
      method: ex.req.method ?? 'GET',
      rawPath: q === -1 ? raw : raw.slice(0, q),
      rawQuery: q === -1 ? '' : raw.slice(q + 1),
      headers: ex.req.headers,
      body: ex.body,
    },
    op.action as EmulatedEasAction,
    ex.state.clock.now(),
  );
  if ('failure' in verdict) {
    sendEasError(ex, verdict.failure);
    return;
  }
  const service = ex.state.paiEas.services.get(op.service);
  if (op.cluster !== ex.state.paiEas.region || !service) {
    serviceNotFound(ex);
    return;
  }
  if (op.action === 'DescribeService') describe(ex, service);
  else instanceToken(ex, service, op);
}
