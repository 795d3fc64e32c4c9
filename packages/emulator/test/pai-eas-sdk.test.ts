/**
 * The official Alibaba Cloud OpenAPI client (`@alicloud/openapi-core`, V3 signing, as the
 * generated EAS SDK uses it) against the emulator: users' own V3 clients work unchanged.
 */
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_EMULATOR_ACCESS_KEY,
  DEFAULT_EMULATOR_STS_CREDENTIALS,
  type Emulator,
  type EmulatorAccessKey,
} from '../src/index.js';
import { start } from './helpers.js';
import { INSTANCE, SERVICE } from './pai-eas-helpers.js';

const sdk = createRequire(import.meta.url)(
  '@alicloud/openapi-core',
) as typeof import('@alicloud/openapi-core');
const dara = createRequire(createRequire(import.meta.url).resolve('@alicloud/openapi-core'))(
  '@darabonba/typescript',
) as { RuntimeOptions: new (m: object) => unknown; URL: { percentEncode(s: string): string } };

function client(emulator: Emulator, key: EmulatorAccessKey) {
  const OpenApiClient = sdk.default as unknown as new (
    config: unknown,
  ) => {
    callApi(
      params: unknown,
      request: unknown,
      runtime: unknown,
    ): Promise<{ statusCode: number; body: Record<string, unknown> }>;
  };
  return new OpenApiClient(
    new sdk.$OpenApiUtil.Config({
      accessKeyId: key.accessKeyId,
      accessKeySecret: key.accessKeySecret,
      ...(key.securityToken ? { securityToken: key.securityToken } : {}),
      endpoint: new URL(emulator.url).host,
      protocol: 'http',
      regionId: 'cn-shanghai',
    }),
  );
}

function params(action: string, pathname: string) {
  return new sdk.$OpenApiUtil.Params({
    action,
    version: '2021-07-01',
    protocol: 'HTTP',
    pathname,
    method: 'GET',
    authType: 'AK',
    style: 'ROA',
    reqBodyType: 'json',
    bodyType: 'json',
  });
}

const enc = (s: string) => dara.URL.percentEncode(s);
const runtime = () => new dara.RuntimeOptions({ autoretry: false });

describe('the official OpenAPI client against the emulated PAI-EAS', () => {
  it('calls DescribeService and CreateServiceInstanceToken with an AccessKey and with STS', async () => {
    const emulator = await start();
    for (const key of [DEFAULT_EMULATOR_ACCESS_KEY, DEFAULT_EMULATOR_STS_CREDENTIALS]) {
      const c = client(emulator, key);
      const described = await c.callApi(
        params('DescribeService', `/api/v2/services/${enc('cn-shanghai')}/${enc(SERVICE)}`),
        new sdk.$OpenApiUtil.OpenApiRequest({}),
        runtime(),
      );
      expect(described.statusCode).toBe(200);
      expect(described.body.InternetEndpoint).toBe(`${emulator.url}/api/predict/${SERVICE}`);
      const token = await c.callApi(
        params(
          'CreateServiceInstanceToken',
          `/api/v2/services/${enc('cn-shanghai')}/${enc(SERVICE)}/instances/${enc(INSTANCE)}/token`,
        ),
        new sdk.$OpenApiUtil.OpenApiRequest({
          query: { ActionType: 'WorkBench', WorkerName: 'worker0' },
        }),
        runtime(),
      );
      expect((await fetch(String(token.body.WorkbenchUrl))).status).toBe(200);
    }
  });

  it('surfaces the emulator refusal of a wrong secret as the SDK error with its code', async () => {
    const emulator = await start();
    const c = client(emulator, {
      ...DEFAULT_EMULATOR_ACCESS_KEY,
      accessKeySecret: 'wrong-secret-value',
    });
    await expect(
      c.callApi(
        params('DescribeService', `/api/v2/services/cn-shanghai/${SERVICE}`),
        new sdk.$OpenApiUtil.OpenApiRequest({}),
        runtime(),
      ),
    ).rejects.toMatchObject({ code: 'SignatureDoesNotMatch', statusCode: 400 });
  });
});
