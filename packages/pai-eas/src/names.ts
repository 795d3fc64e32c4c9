/**
 * The names EAS accepts for services, instances and workers, checked before anything is
 * signed so a route can answer 400 without calling Alibaba Cloud.
 */
import { DashScopeError } from '@dashscope-token/core/neutral';

/** What a name names. */
export type EasNameKind = 'service' | 'instance' | 'worker';

/**
 * - service: a lowercase letter, then lowercase letters, digits or `_`; at most 64 characters
 *   (the rule of the EAS console).
 * - instance: a Kubernetes pod name (RFC 1123 subdomain): lowercase letters, digits, `-` and
 *   `.`, starting and ending with a letter or digit; at most 253 characters.
 * - worker: a container name (RFC 1123 label): lowercase letters, digits and `-`, starting and
 *   ending with a letter or digit; at most 63 characters.
 */
export const EAS_NAME_PATTERNS: Readonly<Record<EasNameKind, RegExp>> = Object.freeze({
  service: /^[a-z][a-z0-9_]{0,63}$/,
  instance: /^(?=.{1,253}$)[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/,
  worker: /^(?=.{1,63}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?$/,
});

/** Whether `value` is a name EAS allows for `kind`. */
export function isValidEasName(kind: EasNameKind, value: unknown): value is string {
  return typeof value === 'string' && EAS_NAME_PATTERNS[kind].test(value);
}

function invalid(message: string): DashScopeError {
  return new DashScopeError({ code: 'InvalidParameter', status: 400, retryable: false, message });
}

/**
 * Returns `value` when it is a name EAS allows for `kind`.
 * @throws DashScopeError `InvalidParameter` (400)
 */
export function checkEasName(kind: EasNameKind, value: unknown): string {
  if (isValidEasName(kind, value)) return value;
  if (typeof value !== 'string' || value === '') {
    throw invalid(`Missing ${kind}: expected a non-empty string.`);
  }
  throw invalid(`Invalid ${kind} name: it has characters or a length that EAS does not allow.`);
}

/** Which container a Workbench login opens. */
export interface WorkbenchTarget {
  /** EAS service name, e.g. `my_llm`. */
  service: string;
  /** Instance (pod) name, e.g. `my-llm-7b56869574-44nq9`. */
  instance: string;
  /** Container in the instance, e.g. `worker0`. @default the instance's main container */
  worker?: string;
}

/**
 * Checks a parsed request body `{ service, instance, worker? }` (what `POST …/pai-eas/workbench`
 * receives) and returns the target; extra fields are refused.
 * @throws DashScopeError `InvalidParameter` (400)
 */
export function parseWorkbenchTarget(body: unknown): WorkbenchTarget {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw invalid('The request body must be a JSON object { service, instance, worker? }.');
  }
  const record = body as Record<string, unknown>;
  const extra = Object.keys(record).filter(
    (k) => k !== 'service' && k !== 'instance' && k !== 'worker',
  );
  if (extra.length > 0) throw invalid('Unknown field in the request body.');
  const target: WorkbenchTarget = {
    service: checkEasName('service', record.service),
    instance: checkEasName('instance', record.instance),
  };
  if (record.worker !== undefined) target.worker = checkEasName('worker', record.worker);
  return target;
}
