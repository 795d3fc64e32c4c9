/**
 * The PAI-EAS routes' decisions, the same in every runtime: which targets are
 * `{prefix}/pai-eas/workbench` and `{prefix}/pai-eas/services/{service}/…`, the allow-list,
 * deny-by-default for Workbench URLs, the 400/403/404/405 answers, and the answer that carries a
 * Workbench URL. The EAS operations themselves (V3-signed calls) come from
 * `@dashscope-token/pai-eas` through {@link PaiEasOperations}: core never imports it.
 */
import { isDashScopeError } from '../errors.js';
import { invalidOption } from '../token/errors.js';
import { type Admitted, admit, type Refused } from './admission.js';
import {
  type Answer,
  type ErrorAnswer,
  failureAnswer,
  INTERNAL_ERROR,
  newRequestId,
  noStoreAnswer,
  payloadTooLargeAnswer,
} from './answers.js';
import type { Budgets } from './budgets.js';
import { admitWithinLimits, type ClientFacts, type Limits } from './limits.js';
import type { AuthorizeResult } from './options.js';

/** The instance (and container) a Workbench URL logs into. */
export interface PaiEasWorkbenchTarget {
  service: string;
  instance: string;
  worker?: string;
}

/** A one-time Workbench login URL and EAS's request id. */
export interface WorkbenchLogin {
  workbenchUrl: string;
  requestId?: string | undefined;
}

/** Where a deployed EAS service answers, and its service token. */
export interface PaiEasServiceEndpoint {
  /** `http(s)://host/api/predict/{service}` (no trailing `/`). */
  endpoint: string;
  /** The raw service token, sent as `Authorization: <token>`; `undefined` for an open service. */
  token: string | undefined;
}

/**
 * The EAS operations the routes call. `createPaiEas(...)` from `@dashscope-token/pai-eas`
 * builds them (V3 signing, `CreateServiceInstanceToken`, the `DescribeService` cache).
 */
export interface PaiEasOperations {
  /**
   * Checks a parsed JSON body `{ service, instance, worker? }`.
   * @throws DashScopeError `InvalidParameter` (400) for a missing field or a name EAS refuses.
   */
  parseWorkbenchTarget(body: unknown): PaiEasWorkbenchTarget;
  /** A one-time Workbench login URL (a bearer secret: never log it). */
  workbenchUrl(target: PaiEasWorkbenchTarget, signal?: AbortSignal): Promise<WorkbenchLogin>;
  /**
   * The endpoint and token of `service` (cached). With `rejected`, the token the service just
   * answered 401 to: the cached description is dropped and fetched again (once for concurrent
   * callers).
   */
  serviceEndpoint(
    service: string,
    options?: { signal?: AbortSignal; rejected?: string | undefined },
  ): Promise<PaiEasServiceEndpoint>;
}

/**
 * Decides whether `ctx` may get a Workbench URL for `target`. Only `true` allows;
 * `{ status: 401 }` answers 401; anything else (`false`, `undefined`, a thrown error) 403.
 */
export type WorkbenchAuthorizer<Ctx> = (
  ctx: Ctx,
  target: PaiEasWorkbenchTarget,
) => AuthorizeResult | Promise<AuthorizeResult>;

/** The `paiEas` option of every front door: what `createPaiEas(...)` returns. */
export interface PaiEasRoutesOptions<Ctx> {
  /** Services reachable through the routes (both of them). Required; others are refused 403. */
  services: readonly string[];
  /**
   * Who may get a Workbench URL (shell access to a container).
   * @default none: `POST {prefix}/pai-eas/workbench` is refused 403 for everyone
   */
  authorizeWorkbench?: WorkbenchAuthorizer<Ctx>;
  /** The EAS calls (from `createPaiEas` of `@dashscope-token/pai-eas`). */
  operations: PaiEasOperations;
  /**
   * Largest body of `POST {prefix}/pai-eas/workbench`, bytes. @default 4096
   */
  maxWorkbenchBodyBytes?: number;
  /** Milliseconds the client may take to send that body. @default 10000 */
  workbenchBodyTimeoutMs?: number;
}

/** `paiEas` resolved once. */
export interface PaiEasConfig<Ctx> {
  services: ReadonlySet<string>;
  authorizeWorkbench: WorkbenchAuthorizer<Ctx> | undefined;
  operations: PaiEasOperations;
  maxBodyBytes: number;
  bodyTimeoutMs: number;
}

/** Default largest Workbench request body, bytes. */
export const DEFAULT_WORKBENCH_BODY_BYTES = 4096;
/** Default milliseconds to receive a Workbench request body. */
export const DEFAULT_WORKBENCH_BODY_TIMEOUT_MS = 10_000;

function positiveInteger(value: unknown, fallback: number, name: string): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
    throw invalidOption(`Invalid paiEas.${name} ${String(v)}: expected a positive integer.`);
  }
  return v;
}

/**
 * Resolves the `paiEas` option once.
 * @throws DashScopeError `InvalidParameter` when it is not what `createPaiEas` returns, or
 *   `services` is missing or empty.
 */
export function resolvePaiEasConfig<Ctx>(
  option: PaiEasRoutesOptions<Ctx> | undefined,
): PaiEasConfig<Ctx> | undefined {
  if (option === undefined) return undefined;
  const ops = (option as Partial<PaiEasRoutesOptions<Ctx>>).operations;
  if (
    typeof ops !== 'object' ||
    ops === null ||
    typeof ops.workbenchUrl !== 'function' ||
    typeof ops.serviceEndpoint !== 'function' ||
    typeof ops.parseWorkbenchTarget !== 'function'
  ) {
    throw invalidOption(
      "Invalid paiEas: pass createPaiEas({ region, services, authorizeWorkbench, ... }) from '@dashscope-token/pai-eas'.",
    );
  }
  const services = option.services;
  if (
    !Array.isArray(services) ||
    services.length === 0 ||
    services.some((s) => typeof s !== 'string' || s === '')
  ) {
    throw invalidOption('Invalid paiEas.services: expected a non-empty array of service names.');
  }
  if (option.authorizeWorkbench !== undefined && typeof option.authorizeWorkbench !== 'function') {
    throw invalidOption('Invalid paiEas.authorizeWorkbench: expected a function.');
  }
  return {
    services: new Set(services),
    authorizeWorkbench: option.authorizeWorkbench,
    operations: ops,
    maxBodyBytes: positiveInteger(
      option.maxWorkbenchBodyBytes,
      DEFAULT_WORKBENCH_BODY_BYTES,
      'maxWorkbenchBodyBytes',
    ),
    bodyTimeoutMs: positiveInteger(
      option.workbenchBodyTimeoutMs,
      DEFAULT_WORKBENCH_BODY_TIMEOUT_MS,
      'workbenchBodyTimeoutMs',
    ),
  };
}

/** What a target under `{prefix}/pai-eas/` means. */
export type PaiEasRoute =
  /** `{prefix}/pai-eas/workbench`. */
  | { kind: 'pai-eas-workbench' }
  /** `{prefix}/pai-eas/services/{service}/…`; `target` is the path + query after the service. */
  | { kind: 'pai-eas-service'; service: string; target: string; query: string };

/** The path every PAI-EAS route starts with (after the prefix). */
export const PAI_EAS_PREFIX = '/pai-eas/';
const WORKBENCH_PATH = '/pai-eas/workbench';
const SERVICES_PREFIX = '/pai-eas/services/';

/**
 * Matches `rest` (the checked path after the prefix, starting with `/pai-eas/`), `undefined`
 * when it is none of the routes (404). The service name is taken as sent: the allow-list
 * decides, so an encoded or odd name is simply not listed.
 */
export function matchPaiEasRoute(rest: string, query: string): PaiEasRoute | undefined {
  if (rest === WORKBENCH_PATH) return WORKBENCH_ROUTE;
  if (!rest.startsWith(SERVICES_PREFIX)) return undefined;
  const after = rest.slice(SERVICES_PREFIX.length);
  const slash = after.indexOf('/');
  const service = slash < 0 ? after : after.slice(0, slash);
  if (service === '') return undefined;
  const path = slash < 0 ? '' : after.slice(slash);
  return {
    kind: 'pai-eas-service',
    service,
    target: query === '' ? path : `${path}?${query}`,
    query,
  };
}

const WORKBENCH_ROUTE: PaiEasRoute = Object.freeze({ kind: 'pai-eas-workbench' });

/** `Allow` of the Workbench route. */
export const WORKBENCH_ROUTE_ALLOW = 'POST, OPTIONS';

/** 405 for the Workbench route. */
export const WORKBENCH_METHOD_NOT_ALLOWED: ErrorAnswer = Object.freeze({
  status: 405,
  code: 'MethodNotAllowed',
  message: 'Use POST with { service, instance, worker? } to get a Workbench URL.',
  headers: { allow: WORKBENCH_ROUTE_ALLOW },
});

/** 403 for a service not in `paiEas.services`. */
export function serviceNotAllowed(service: string): ErrorAnswer {
  return {
    status: 403,
    code: 'AccessDenied',
    message: `PAI-EAS service ${JSON.stringify(service.slice(0, 64))} is not allowed here.`,
  };
}

const WORKBENCH_DENIED: ErrorAnswer = Object.freeze({
  status: 403,
  code: 'AccessDenied',
  message: 'Workbench URLs are refused unless the app configures paiEas.authorizeWorkbench.',
});

const BAD_JSON: ErrorAnswer = Object.freeze({
  status: 400,
  code: 'InvalidParameter',
  message: 'The request body must be JSON { service, instance, worker? }.',
});

/** 408 when the Workbench body does not arrive in time. */
export const WORKBENCH_BODY_TIMEOUT: ErrorAnswer = Object.freeze({
  status: 408,
  code: 'RequestTimeout',
  message: 'The request body did not arrive in time.',
  headers: { connection: 'close' },
});

/**
 * Refuses a Workbench request by its framing before its body is read: 400 for an invalid
 * `Content-Length` (or one given with `Transfer-Encoding`), 413 for one over the limit.
 */
export function checkWorkbenchFraming<Ctx>(
  paiEas: PaiEasConfig<Ctx>,
  contentLength: string | undefined,
  transferEncoding: string | undefined,
): ErrorAnswer | undefined {
  if (contentLength === undefined) return undefined;
  if (!/^\d{1,15}$/.test(contentLength) || transferEncoding !== undefined) {
    return INVALID_FRAMING;
  }
  if (Number(contentLength) > paiEas.maxBodyBytes)
    return payloadTooLargeAnswer(paiEas.maxBodyBytes);
  return undefined;
}

const INVALID_FRAMING: ErrorAnswer = Object.freeze({
  status: 400,
  code: 'InvalidParameter',
  message: 'Invalid Content-Length.',
  headers: { connection: 'close' },
});

/**
 * The target of a Workbench request from its body (bytes read within the limit, or the value a
 * body parser produced): 400 for bad JSON, missing fields or names EAS refuses; 403 for a
 * service not on the allow-list.
 */
export function workbenchTarget<Ctx>(
  paiEas: PaiEasConfig<Ctx>,
  body: { bytes: Uint8Array } | { value: unknown },
): PaiEasWorkbenchTarget | Refused {
  let value: unknown;
  if ('value' in body) value = body.value;
  else {
    try {
      value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body.bytes));
    } catch {
      return { refused: BAD_JSON };
    }
  }
  let target: PaiEasWorkbenchTarget;
  try {
    target = paiEas.operations.parseWorkbenchTarget(value);
  } catch (error) {
    if (isDashScopeError(error) && error.status === 400) {
      return { refused: { status: 400, code: 'InvalidParameter', message: error.message } };
    }
    return { refused: BAD_JSON };
  }
  if (!paiEas.services.has(target.service)) return { refused: serviceNotAllowed(target.service) };
  return target;
}

const WORKBENCH_REFUSED = Object.freeze({
  status: 403 as const,
  message: 'This request may not get a Workbench URL.',
});

/** Stands in for a permanent key when only `authorize` matters (the PAI-EAS routes need none). */
const NO_KEY = Object.freeze({ apiKey: '-' });

/**
 * Runs the app's `authorize` hook alone (the PAI-EAS routes need no Model Studio key), with
 * the same answers as everywhere else.
 */
export async function authorizeOnly<Ctx>(
  authorize: ((ctx: Ctx) => AuthorizeResult | Promise<AuthorizeResult>) | undefined,
  ctx: Ctx,
): Promise<Refused | undefined> {
  if (authorize === undefined) return undefined;
  const admitted = await admit({ apiKey: NO_KEY.apiKey, authorize, hookTimeoutMs: 0 }, ctx);
  return 'refused' in admitted ? admitted : undefined;
}

/**
 * A PAI-EAS service call's admission: the app's `authorize` (no Model Studio key is needed),
 * then the client's proxy budget of the per-client `limits`, as for Model Studio calls.
 */
export function admitServiceCall<Ctx>(
  access: {
    authorize: ((ctx: Ctx) => AuthorizeResult | Promise<AuthorizeResult>) | undefined;
    limits: Limits<Ctx> | undefined;
    budgets?: Budgets<Ctx> | undefined;
    hookTimeoutMs: number;
  },
  ctx: Ctx,
  client: ClientFacts,
): Admitted | Refused | Promise<Admitted | Refused> {
  return admitWithinLimits(
    {
      apiKey: NO_KEY.apiKey,
      authorize: access.authorize,
      limits: access.limits,
      budgets: access.budgets,
      hookTimeoutMs: access.hookTimeoutMs,
    },
    'proxy',
    ctx,
    client,
  );
}

/**
 * `authorizeWorkbench` for `target`, deny by default: no authorizer, or any answer but `true`
 * (or `{ status: 401 }`, which answers 401), refuses.
 */
export async function authorizeWorkbench<Ctx>(
  paiEas: PaiEasConfig<Ctx>,
  ctx: Ctx,
  target: PaiEasWorkbenchTarget,
): Promise<Refused | undefined> {
  const authorizer = paiEas.authorizeWorkbench;
  if (authorizer === undefined) return { refused: WORKBENCH_DENIED };
  const strict = async (c: Ctx): Promise<AuthorizeResult> => {
    const result = await authorizer(c, { ...target });
    if (result === true) return true;
    if (typeof result === 'object' && result !== null) return result;
    return WORKBENCH_REFUSED;
  };
  return authorizeOnly(strict, ctx);
}

/**
 * The Workbench URL for `target`, or the answer for the failure (EAS errors keep their code,
 * status and request id; the AccessKey and signatures are redacted by the client).
 */
export async function fetchWorkbenchUrl<Ctx>(
  paiEas: PaiEasConfig<Ctx>,
  target: PaiEasWorkbenchTarget,
  signal?: AbortSignal,
): Promise<WorkbenchLogin | EasRefused> {
  try {
    return await paiEas.operations.workbenchUrl(target, signal);
  } catch (error) {
    return easRefusal(error, 'create a Workbench URL');
  }
}

/**
 * The answer carrying a Workbench URL: `{"workbench_url", "request_id"}`,
 * `Cache-Control: no-store`. The URL is a bearer secret: nothing else sees it.
 */
export function workbenchAnswer(result: WorkbenchLogin): Answer {
  const requestId =
    result.requestId !== undefined && result.requestId !== '' ? result.requestId : newRequestId();
  const body = JSON.stringify({ workbench_url: result.workbenchUrl, request_id: requestId });
  return noStoreAnswer(body, requestId, NO_REFERRER);
}

const NO_REFERRER = Object.freeze({ 'referrer-policy': 'no-referrer' });

/** A refused PAI-EAS call, with EAS's `RequestId` when EAS answered. */
export interface EasRefused extends Refused {
  requestId?: string;
}

/**
 * The answer for a failed EAS call: the client's error keeps its status (403 `Forbidden.RAM`,
 * 404 unknown service or instance, 429 throttling with `Retry-After`, 502 for the server's
 * AccessKey, 504 timeouts), code and EAS request id; its message was redacted by the client and
 * is redacted again. Anything that is no DashScopeError answers 500 without details.
 */
function easRefusal(error: unknown, what: string): EasRefused {
  const answer = failureAnswer(error, 'hook');
  // EAS's own message text is not relayed: it is free text from the gateway, which may echo
  // what the request carried. The code, status and request id say what happened.
  const refused: ErrorAnswer = {
    ...answer,
    message:
      answer === INTERNAL_ERROR ? answer.message : `PAI-EAS could not ${what} (${answer.code}).`,
  };
  const requestId = isDashScopeError(error) ? error.requestId : undefined;
  return requestId !== undefined && requestId !== '' ? { refused, requestId } : { refused };
}

const BAD_ENDPOINT: ErrorAnswer = Object.freeze({
  status: 502,
  code: 'BadGateway',
  message: 'The PAI-EAS service endpoint is not a URL.',
});

/**
 * The proxy config for EAS service calls: the same limits, timeouts and header rules, without
 * Model Studio's base path and `allowModels` (a model list of Model Studio's; the allow-list of
 * services decides here).
 */
export function paiEasProxyConfig<C extends { basePath: string; allowModels: unknown }>(
  config: C,
): C {
  return { ...config, basePath: '', allowModels: undefined };
}

/** Where a proxied EAS call goes and the token it carries. */
export interface PaiEasGrant {
  origin: string;
  /** Path + query on `origin`: the endpoint's path, then the client's path after the service. */
  path: string;
  /** The raw service token, or `undefined` for a service without one. */
  token: string | undefined;
}

function grantOf(endpoint: PaiEasServiceEndpoint, target: string): PaiEasGrant | Refused {
  let url: URL;
  try {
    url = new URL(endpoint.endpoint);
  } catch {
    return { refused: BAD_ENDPOINT };
  }
  const base = url.pathname.replace(/\/+$/, '');
  return { origin: url.origin, path: base + target, token: endpoint.token };
}

/**
 * The upstream of a call to `service` (`DescribeService` through the cache, or the explicit
 * endpoint); with `rejected`, after the service answered 401 to that token.
 */
export async function serviceGrant<Ctx>(
  paiEas: PaiEasConfig<Ctx>,
  service: string,
  target: string,
  signal?: AbortSignal,
  rejected?: PaiEasGrant,
): Promise<PaiEasGrant | EasRefused> {
  try {
    const endpoint = await paiEas.operations.serviceEndpoint(service, {
      ...(signal !== undefined && { signal }),
      ...(rejected !== undefined && { rejected: rejected.token ?? '' }),
    });
    return grantOf(endpoint, target);
  } catch (error) {
    return easRefusal(error, 'look up the service endpoint');
  }
}

/**
 * The upstream headers of an EAS call: the proxy's headers (the last one the injected
 * `authorization`), with the raw service token instead, or without `authorization` for a
 * service without a token.
 */
export function withServiceToken(headers: readonly string[], token: string | undefined): string[] {
  const copy = headers.slice(0, -2);
  if (token !== undefined) copy.push('authorization', token);
  return copy;
}

/**
 * A failure of a service call (the proxy's answer names Model Studio), told about the PAI-EAS
 * service instead: same status; a refused token is `InvalidServiceToken`.
 */
export function serviceFailureAnswer(answer: ErrorAnswer): ErrorAnswer {
  if (answer.code === 'Timeout') {
    return { ...answer, message: 'The PAI-EAS service did not answer in time.' };
  }
  if (answer.code === 'NetworkError') {
    return { ...answer, message: 'The PAI-EAS service could not be reached.' };
  }
  if (answer.code === 'InvalidApiKey') {
    return {
      ...answer,
      code: 'InvalidServiceToken',
      message:
        'The PAI-EAS service refused its service token, also after it was fetched again ' +
        "(the client's credentials are not the problem); check the service.",
    };
  }
  return answer;
}
