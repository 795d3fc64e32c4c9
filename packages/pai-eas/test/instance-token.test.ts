import { createRequire } from 'node:module';
import { DEFAULT_EMULATOR_STS_CREDENTIALS } from '@dashscope-token/emulator';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type CredentialProvider, createServiceInstanceToken } from '../src/index.js';
import { INSTANCE, KEY, on, openApiCalls, SERVICE, start } from './fixture.js';

// As Node loads it: a CommonJS module whose `default` export is the Client class.
const Credential = (
  createRequire(import.meta.url)('@alicloud/credentials') as typeof import('@alicloud/credentials')
).default;

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('createServiceInstanceToken', () => {
  it('returns a one-time Workbench URL that logs in once', async () => {
    const emulator = await start();
    const { workbenchUrl, requestId } = await createServiceInstanceToken({
      ...on(emulator),
      service: SERVICE,
      instance: INSTANCE,
      worker: 'worker0',
    });
    expect(requestId).toMatch(/^[0-9A-F-]{36}$/);
    expect((await fetch(workbenchUrl)).status).toBe(200);
    expect((await fetch(workbenchUrl)).status).toBe(403);
    const [call] = openApiCalls(emulator);
    expect(call!.method).toBe('GET');
    expect(call!.path).toBe(
      `/api/v2/services/cn-shanghai/${SERVICE}/instances/${INSTANCE}/token?ActionType=WorkBench&WorkerName=worker0`,
    );
    expect(call!.headers['x-acs-action']).toBe('CreateServiceInstanceToken');
    expect(call!.headers['x-acs-version']).toBe('2021-07-01');
  });

  it('signs with STS credentials, the security token included', async () => {
    const emulator = await start();
    const result = await createServiceInstanceToken({
      ...on(emulator),
      credentials: DEFAULT_EMULATOR_STS_CREDENTIALS as Required<
        typeof DEFAULT_EMULATOR_STS_CREDENTIALS
      >,
      service: SERVICE,
      instance: INSTANCE,
    });
    expect(result.workbenchUrl).toContain('/ecs-workbench/');
    expect(openApiCalls(emulator)[0]!.headers['x-acs-security-token']).toBe(
      DEFAULT_EMULATOR_STS_CREDENTIALS.securityToken,
    );
  });

  it('reads the AccessKey from the environment by default', async () => {
    const emulator = await start();
    vi.stubEnv('ALIBABA_CLOUD_ACCESS_KEY_ID', DEFAULT_EMULATOR_STS_CREDENTIALS.accessKeyId);
    vi.stubEnv('ALIBABA_CLOUD_ACCESS_KEY_SECRET', DEFAULT_EMULATOR_STS_CREDENTIALS.accessKeySecret);
    vi.stubEnv('ALIBABA_CLOUD_SECURITY_TOKEN', DEFAULT_EMULATOR_STS_CREDENTIALS.securityToken!);
    const { credentials: _c, ...noCredentials } = on(emulator);
    await createServiceInstanceToken({ ...noCredentials, service: SERVICE, instance: INSTANCE });
    expect(openApiCalls(emulator)[0]!.headers.authorization).toContain(
      `Credential=${DEFAULT_EMULATOR_STS_CREDENTIALS.accessKeyId},`,
    );
  });

  it('fails with MissingCredentials, before any request, when none are configured', async () => {
    const emulator = await start();
    vi.stubEnv('ALIBABA_CLOUD_ACCESS_KEY_ID', '');
    vi.stubEnv('ALIBABA_CLOUD_ACCESS_KEY_SECRET', '');
    const { credentials: _c, ...noCredentials } = on(emulator);
    await expect(
      createServiceInstanceToken({ ...noCredentials, service: SERVICE, instance: INSTANCE }),
    ).rejects.toMatchObject({ code: 'MissingCredentials', status: 500, retryable: false });
    expect(openApiCalls(emulator)).toHaveLength(0);
  });

  it('asks a provider before every call, so rotated credentials are used', async () => {
    const emulator = await start();
    const rotation = [KEY, DEFAULT_EMULATOR_STS_CREDENTIALS, KEY];
    let calls = 0;
    const provider: CredentialProvider = {
      async getCredential() {
        return { ...rotation[calls++ % rotation.length]! };
      },
    };
    for (let i = 0; i < 3; i++) {
      await createServiceInstanceToken({
        ...on(emulator),
        credentials: provider,
        service: SERVICE,
        instance: INSTANCE,
      });
    }
    expect(calls).toBe(3);
    const ids = openApiCalls(emulator).map(
      (r) => /Credential=([^,]+)/.exec(String(r.headers.authorization))![1],
    );
    expect(ids).toEqual([
      KEY.accessKeyId,
      DEFAULT_EMULATOR_STS_CREDENTIALS.accessKeyId,
      KEY.accessKeyId,
    ]);
  });

  it("takes @alicloud/credentials' Client unchanged", async () => {
    const emulator = await start();
    const client = new Credential({
      type: 'sts',
      accessKeyId: DEFAULT_EMULATOR_STS_CREDENTIALS.accessKeyId,
      accessKeySecret: DEFAULT_EMULATOR_STS_CREDENTIALS.accessKeySecret,
      securityToken: DEFAULT_EMULATOR_STS_CREDENTIALS.securityToken,
    } as never);
    const { workbenchUrl } = await createServiceInstanceToken({
      ...on(emulator),
      credentials: client,
      service: SERVICE,
      instance: INSTANCE,
    });
    expect((await fetch(workbenchUrl)).status).toBe(200);
  });

  it('percent-encodes path segments and refuses names EAS does not allow before signing', async () => {
    const emulator = await start();
    for (const [service, instance, worker] of [
      ['../admin', INSTANCE, undefined],
      [SERVICE, 'a/b', undefined],
      [SERVICE, INSTANCE, 'worker 0'],
      ['Upper', INSTANCE, undefined],
      ['', INSTANCE, undefined],
    ] as const) {
      await expect(
        createServiceInstanceToken({
          ...on(emulator),
          service,
          instance,
          ...(worker ? { worker } : {}),
        }),
      ).rejects.toMatchObject({ code: 'InvalidParameter', status: 400 });
    }
    expect(openApiCalls(emulator)).toHaveLength(0);
  });

  it('answers 404 for an instance the service does not have', async () => {
    const emulator = await start();
    await expect(
      createServiceInstanceToken({ ...on(emulator), service: SERVICE, instance: 'other-0' }),
    ).rejects.toMatchObject({ code: 'InvalidInstance.NotFound', status: 404, retryable: false });
  });
});
