/** Options, defaults and the per-emulator state of the emulated PAI-EAS. */
import { randomBytes } from 'node:crypto';
import { NonceStore } from './nonces.js';
import { WorkbenchLogins } from './workbench-logins.js';

/** The two EAS OpenAPI operations the emulator serves. */
export type EmulatedEasAction = 'DescribeService' | 'CreateServiceInstanceToken';

/** An AccessKey pair (or STS triple) the emulator accepts. */
export interface EmulatorAccessKey {
  accessKeyId: string;
  accessKeySecret: string;
  /** Set for STS credentials: requests must carry it as `x-acs-security-token`. */
  securityToken?: string;
  /**
   * The operations a RAM policy allows this key; others answer 403 `Forbidden.RAM`.
   * @default both
   */
  allow?: readonly EmulatedEasAction[];
}

/** A deployed EAS service the emulator pretends to run. */
export interface EmulatorEasService {
  /** Service name (lowercase letters, digits, `_`). */
  name: string;
  /** Instance (pod) names. @default one, `<name with - for _>-7b56869574-44nq9` */
  instances?: readonly string[];
  /** Container names in each instance. @default ['worker0'] */
  workers?: readonly string[];
  /** The service token `DescribeService` returns and the service checks. @default random */
  token?: string;
}

/** `paiEas` options of `startEmulator`. */
export interface EmulatorPaiEasOptions {
  /**
   * AccessKeys the OpenAPI accepts (V3 signatures are verified strictly).
   * @default [DEFAULT_EMULATOR_ACCESS_KEY, DEFAULT_EMULATOR_STS_CREDENTIALS]
   */
  accessKeys?: readonly EmulatorAccessKey[];
  /** The region, which is the `ClusterId` in paths. @default 'cn-shanghai' */
  region?: string;
  /** The deployed services. @default [{ name: DEFAULT_EMULATOR_EAS_SERVICE }] */
  services?: readonly EmulatorEasService[];
  /** Seconds a Workbench URL can be used (once) after it was issued. @default 300 */
  workbenchUrlTtlSeconds?: number;
}

/** The AccessKey pair the emulator accepts by default. Obviously fake. */
export const DEFAULT_EMULATOR_ACCESS_KEY: Readonly<EmulatorAccessKey> = Object.freeze({
  accessKeyId: 'LTAI-emulator-access-key-id',
  accessKeySecret: 'emulator-access-key-secret-do-not-use',
});

/** The STS triple the emulator accepts by default. Obviously fake. */
export const DEFAULT_EMULATOR_STS_CREDENTIALS: Readonly<EmulatorAccessKey> = Object.freeze({
  accessKeyId: 'STS.emulator-sts-access-key-id',
  accessKeySecret: 'emulator-sts-access-key-secret-do-not-use',
  securityToken: 'emulator-sts-security-token-do-not-use-0000',
});

/** The EAS service the emulator runs by default. */
export const DEFAULT_EMULATOR_EAS_SERVICE = 'emulator_llm';

/** The region (`ClusterId`) of the emulated EAS by default. */
export const DEFAULT_EMULATOR_EAS_REGION = 'cn-shanghai';

/** A service as the emulator keeps it. */
export interface ServiceRecord {
  name: string;
  instances: readonly string[];
  workers: readonly string[];
  token: string;
}

/** Everything the emulated PAI-EAS keeps for one emulator. */
export interface PaiEasState {
  region: string;
  accessKeys: ReadonlyMap<string, EmulatorAccessKey>;
  services: ReadonlyMap<string, ServiceRecord>;
  nonces: NonceStore;
  logins: WorkbenchLogins;
}

const SERVICE_NAME = /^[a-z][a-z0-9_]{0,63}$/;
const NAME = /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/;

function nonEmpty(value: unknown, what: string): string {
  if (typeof value !== 'string' || value === '' || /\s/.test(value)) {
    throw new TypeError(`${what} must be a non-empty string without whitespace`);
  }
  return value;
}

/** Checks `options` and builds the state. @throws TypeError / RangeError */
export function createPaiEasState(options: EmulatorPaiEasOptions = {}): PaiEasState {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError('paiEas must be an object');
  }
  const region = options.region ?? DEFAULT_EMULATOR_EAS_REGION;
  if (!/^[a-z]{2,}(-[a-z0-9]+){1,4}$/.test(region)) {
    throw new TypeError('paiEas.region must be a region id such as cn-shanghai');
  }
  const accessKeys = new Map<string, EmulatorAccessKey>();
  for (const key of options.accessKeys ?? [
    DEFAULT_EMULATOR_ACCESS_KEY,
    DEFAULT_EMULATOR_STS_CREDENTIALS,
  ]) {
    const id = nonEmpty(key?.accessKeyId, 'paiEas.accessKeys[].accessKeyId');
    nonEmpty(key.accessKeySecret, 'paiEas.accessKeys[].accessKeySecret');
    if (key.securityToken !== undefined) {
      nonEmpty(key.securityToken, 'paiEas.accessKeys[].securityToken');
    }
    accessKeys.set(id, { ...key });
  }
  const services = new Map<string, ServiceRecord>();
  for (const service of options.services ?? [{ name: DEFAULT_EMULATOR_EAS_SERVICE }]) {
    if (!SERVICE_NAME.test(service?.name ?? '')) {
      throw new TypeError(
        'paiEas.services[].name must be lowercase letters, digits and _, starting with a letter',
      );
    }
    const instances = service.instances ?? [`${service.name.replace(/_/g, '-')}-7b56869574-44nq9`];
    const workers = service.workers ?? ['worker0'];
    for (const name of [...instances, ...workers]) {
      if (!NAME.test(name)) throw new TypeError(`invalid instance or worker name: ${name}`);
    }
    services.set(service.name, {
      name: service.name,
      instances: [...instances],
      workers: [...workers],
      token: service.token ?? `eas-emulator-${randomBytes(16).toString('hex')}`,
    });
  }
  const ttl = options.workbenchUrlTtlSeconds ?? 300;
  if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl <= 0) {
    throw new RangeError('paiEas.workbenchUrlTtlSeconds must be a number of seconds > 0');
  }
  return {
    region,
    accessKeys,
    services,
    nonces: new NonceStore(),
    logins: new WorkbenchLogins(ttl),
  };
}
